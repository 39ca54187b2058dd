# Sourced by scripts/sanitize.sh and scripts/fuzz.sh: how the ASan + UBSan
# builds run. A finding stops the process with a stack trace; LSan skips the
# leaks tests/lsan.supp names (libraries' own, at exit).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"

#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (scripts/build_sanitized.sh),
# replays every saved finding of tests/fuzz/regressions/TARGET/, then fuzzes
# each target for SECONDS (default 60) from its seeds in
# tests/fuzz/corpus/TARGET/. New inputs go to build-sanitize/fuzz/corpus/,
# a crashing input to build-sanitize/fuzz/findings/ (copy it into
# regressions/ once fixed). Prints seconds and executions per target; exits
# non-zero on the first finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
bash scripts/build_sanitized.sh
source scripts/sanitizer_env.sh

work=build-sanitize/fuzz
mkdir -p "$work/findings"
for dir in tests/fuzz/corpus/*/; do
  target="$(basename "$dir")"
  binary="build-sanitize/tests/fuzz/$target"
  regressions=(tests/fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    "$binary" "${regressions[@]}" >"$work/$target.regressions.log" 2>&1 ||
      { cat "$work/$target.regressions.log"; echo "fuzz: $target: a saved finding fails again"; exit 1; }
  fi
  mkdir -p "$work/corpus/$target"
  log="$work/$target.log"
  if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/findings/$target-" "$work/corpus/$target" "$dir" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target: finding in $work/findings/ (log $log)"
    exit 1
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  echo "fuzz: $target: ${seconds} s, ${runs} executions, no finding"
done

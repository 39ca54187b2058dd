#!/usr/bin/env bash
# Builds, with clang, ASan + UBSan and -O1 (enough to keep the run fast,
# little enough to keep the build short), under build-sanitize/: the
# sanitizer subset of the tests (kvrag_sanitizer_tests) and the libFuzzer
# targets of tests/fuzz. Only those targets and the libraries they link are
# compiled: not the CLI, the bench or the rest of the tests. Safe to run
# again; -j defaults to the number of cores (KVRAG_JOBS overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=clang++ cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" -DKVRAG_SANITIZE=address,undefined \
  -DKVRAG_BUILD_FUZZERS=ON -DKVRAG_BUILD_BENCHMARKS=OFF >/dev/null
fuzzers=()
for dir in tests/fuzz/corpus/*/; do fuzzers+=("$(basename "$dir")"); done
cmake --build build-sanitize -j "${KVRAG_JOBS:-$(nproc)}" \
  --target kvrag_sanitizer_tests "${fuzzers[@]}"

#!/usr/bin/env bash
# Builds the sanitizer subset of the tests (scripts/build_sanitized.sh) and
# runs it under ASan + UBSan: store (the PostgreSQL one on the local cluster,
# scripts/with_cluster.sh), file readers, server and engine
# (KVRAG_SANITIZER_TEST_SOURCES in tests/CMakeLists.txt). Arguments go to
# the test binary (e.g. --gtest_filter=KvBlob.*).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build_sanitized.sh
source scripts/sanitizer_env.sh
bash scripts/with_cluster.sh build-sanitize/tests/kvrag_sanitizer_tests --gtest_brief=1 "$@"

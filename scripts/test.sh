#!/usr/bin/env bash
# The README's test command: set up and build, then run every test with CTest,
# the tests labelled `cluster` on a local cluster (scripts/with_cluster.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/with_cluster.sh ctest --test-dir build --output-on-failure -j "$(nproc)"

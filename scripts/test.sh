#!/usr/bin/env bash
# The README's test command: set up and build, then run every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The tests labelled `cluster` use the cluster of scripts/cluster.sh when one
# is up (`up` on a running cluster only prints its URI); they skip otherwise.
if bash scripts/cluster.sh status >/dev/null 2>&1; then
  uri=$(bash scripts/cluster.sh up | tail -n 1)
  export KVRAG_TEST_POSTGRES=${KVRAG_TEST_POSTGRES:-${uri%%\?*}}
fi
ctest --test-dir build --output-on-failure -j "$(nproc)"

#!/usr/bin/env bash
# The README's test command: set up and build, then run every test with CTest,
# the tests labelled `cluster` on a local cluster (scripts/cluster.sh) that is
# started here and taken down on exit. A cluster that was fully up already
# (another checkout's, in the same KVRAG_CLUSTER_DIR) is used and left as it
# is; one partly up (a killed run's) is started afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if ! bash scripts/cluster.sh status >/dev/null 2>&1; then
  trap 'bash scripts/cluster.sh down' EXIT
fi
# The last line of `up` is the index URI; its blobs= part names the Redis
# Cluster's nodes, the part before ? the PostgreSQL database.
index_uri=$(bash scripts/cluster.sh up | tail -n 1)
export KVRAG_TEST_REDIS=${index_uri#*blobs=}
export KVRAG_TEST_POSTGRES=${index_uri%%\?*}
ctest --test-dir build --output-on-failure -j "$(nproc)"

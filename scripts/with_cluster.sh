#!/usr/bin/env bash
# Runs a command (from the repository root) with the local cluster of
# scripts/cluster.sh up and KVRAG_TEST_POSTGRES and KVRAG_TEST_REDIS naming
# it: started here and taken down on exit. A cluster that was fully up
# already (another checkout's, in the same KVRAG_CLUSTER_DIR) is used and
# left as it is; one partly up (a killed run's) is started afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! bash scripts/cluster.sh status >/dev/null 2>&1; then
  trap 'bash scripts/cluster.sh down' EXIT
fi
# The last line of `up` is the index URI; its blobs= part names the Redis
# Cluster's nodes, the part before ? the PostgreSQL database.
index_uri=$(bash scripts/cluster.sh up | tail -n 1)
export KVRAG_TEST_REDIS=${index_uri#*blobs=}
export KVRAG_TEST_POSTGRES=${index_uri%%\?*}
"$@"

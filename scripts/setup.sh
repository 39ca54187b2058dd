#!/usr/bin/env bash
# Installs the Debian packages kvrag builds and tests with (only those
# missing), then configures and builds everything in Release under build/.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/packages.sh --for-tests
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${KVRAG_CMAKE_ARGS:-}
cmake --build build -j "$(nproc)"

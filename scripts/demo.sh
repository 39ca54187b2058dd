#!/usr/bin/env bash
# The README's main command: install the packages the build needs (only
# those missing), build the kvrag command alone (not the tests), index the
# bundled sample corpus with the bundled demo model, and serve it on
# 127.0.0.1:8080 (KVRAG_PORT to change). Each step says how long it is
# expected to take and shows its progress. Safe to run again: what is built
# and the documents already indexed are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

index="${KVRAG_DEMO_INDEX:-build/demo-index}"
port="${KVRAG_PORT:-8080}"
jobs=$(nproc)
demo_start=$SECONDS

# step NUMBER TITLE EXPECTED: announces a step and when it should be done.
step() {
  step_start=$SECONDS
  echo
  echo "== [$1/4] $2 (expected: $3)"
}
step_done() { echo "== done in $((SECONDS - step_start)) s"; }

step 1 "Debian packages" "under 2 min when missing, a second otherwise"
bash scripts/packages.sh
step_done

step 2 "build the kvrag command" "2-3 min on 2 free cores from scratch (138 s measured; 9.9 min with both cores busy), seconds when up to date"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${KVRAG_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$jobs" --target kvrag  # prints [ NN%] per file
step_done

step 3 "index data/sample/corpus.jsonl with models/kvrag-demo" \
  "10-30 s on 2 cores (11 s measured), seconds when already indexed"
build/cli/kvrag index --model models/kvrag-demo --index "$index" data/sample/corpus.jsonl
step_done

step 4 "serve on http://127.0.0.1:${port}/" "ready in a few seconds; Ctrl-C stops it"
cat <<MSG
Ready $((SECONDS - demo_start)) s after the start of this script.

Ask from a browser: http://127.0.0.1:${port}/
Or with curl:
  curl -s http://127.0.0.1:${port}/v1/ask -H 'Content-Type: application/json' \\
    -d '{"question": "On which river does Tithford lie?", "k": 5}'

MSG
exec build/cli/kvrag serve --index "$index" --host 127.0.0.1 --port "$port"

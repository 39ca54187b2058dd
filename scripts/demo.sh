#!/usr/bin/env bash
# The README's main command: set up and build (only what is missing or
# changed), index the bundled sample corpus with the bundled demo model, and
# serve it on 127.0.0.1:8080 (KVRAG_PORT to change). Safe to run again: the
# documents already indexed are left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

index="${KVRAG_DEMO_INDEX:-build/demo-index}"
port="${KVRAG_PORT:-8080}"
build/cli/kvrag index --model models/kvrag-demo --index "$index" data/sample/corpus.jsonl

cat <<MSG

Ask from a browser: http://127.0.0.1:${port}/
Or with curl:
  curl -s http://127.0.0.1:${port}/v1/ask -H 'Content-Type: application/json' \\
    -d '{"question": "Which river flows through Heirkford?", "k": 5}'

MSG
exec build/cli/kvrag serve --index "$index" --host 127.0.0.1 --port "$port"

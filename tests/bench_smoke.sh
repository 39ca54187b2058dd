#!/usr/bin/env bash
# CTest smoke test of `kvrag bench`: a tiny index of the demo model (4
# documents), 2 questions, k 1 and 2, one repeat. It checks that the run
# succeeds and writes its report files; the figures are not asserted.
# usage: bench_smoke.sh KVRAG_EXECUTABLE SOURCE_DIR
set -euo pipefail
kvrag=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/kvrag_bench_smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

head -n 4 "$src/data/sample/corpus.jsonl" > "$work/corpus.jsonl"
head -n 2 "$src/data/sample/questions-train.jsonl" > "$work/questions.jsonl"
"$kvrag" index --model "$src/models/kvrag-demo" --index "$work/index" "$work/corpus.jsonl" > /dev/null
"$kvrag" bench --index "$work/index" --questions "$work/questions.jsonl" --k 1,2 --repeat 1 \
  --warmup 0 --threads 1 --max-new-tokens 8 --out "$work/out"

for file in report.md results.csv speedup_vs_k.svg first_token_vs_k-kvrag-demo-c64.svg \
  latency_vs_k-kvrag-demo-c64.svg; do
  [ -s "$work/out/$file" ] || { echo "bench_smoke: $file was not written" >&2; exit 1; }
done
# Header plus 2 k x 4 variants.
rows=$(wc -l < "$work/out/results.csv")
[ "$rows" -eq 9 ] || { echo "bench_smoke: results.csv has $rows lines, expected 9" >&2; exit 1; }
grep -q "^## kvrag-demo, chunks of 64 tokens" "$work/out/report.md" ||
  { echo "bench_smoke: report.md lacks the model's section" >&2; exit 1; }
echo "bench_smoke: ok"

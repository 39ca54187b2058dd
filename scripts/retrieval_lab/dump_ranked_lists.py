#!/usr/bin/env python3
"""Dumps each retriever's ranked chunk list (with scores) for every question of a file.

  python3 scripts/retrieval_lab/dump_ranked_lists.py --url http://127.0.0.1:PORT --questions Q.jsonl \
      --out lists.jsonl [--k 100] [--retrievers dense,bm25]

against a running `kvrag serve --index PATH --port PORT`. Writes one line per question:
  {"question", "document_id", "dense": [[chunk_id, document_id, score], ...], "bm25": [...]}
best first, up to --k each (the API's maximum is 100). Used to prototype fusion offline
(scripts/retrieval_lab/fusion_lab.py). Standard library only.
"""
import argparse
import json
import sys
import urllib.request


def search(url, query, k, retriever):
    body = json.dumps({"query": query, "k": k, "retriever": retriever}).encode()
    request = urllib.request.Request(url + "/v1/search", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        reply = json.load(response)
    items = reply.get("results", reply.get("chunks", reply.get("sources")))
    return [[c["chunk_id"], c["document_id"], c["score"]] for c in items]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--questions", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--retrievers", default="dense,bm25")
    args = parser.parse_args()
    retrievers = args.retrievers.split(",")
    with open(args.questions, encoding="utf-8") as f:
        questions = [json.loads(l) for l in f if l.strip()]
    with open(args.out, "w", encoding="utf-8") as out:
        for i, q in enumerate(questions):
            row = {"question": q["question"], "document_id": q.get("document_id")}
            for r in retrievers:
                row[r] = search(args.url, q["question"], args.k, r)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            if (i + 1) % 200 == 0:
                print(f"{i + 1}/{len(questions)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Check that the training chunker (`text.chunk_document`) makes the same chunks as the C++
chunker, so that the reader is trained on exactly the passages the toolkit caches.

Input: a JSONL file written by the C++ test (tests/test_chunker_parity.cpp), one line per
document: {"id": ..., "chunks": [chunk text, ...]}, made from a corpus JSONL with the given
tokenizer and 64 tokens per chunk. Prints the first difference and exits 1 on any mismatch.
Needs only the Python standard library and Debian's `sentencepiece` tools.

Usage: /usr/bin/python3 training/check_chunker.py CPP_CHUNKS.jsonl [--corpus data/sample/corpus.jsonl]
       [--tokenizer models/kvrag-demo/spiece.model]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from text import ROOT, SPM, chunk_document, words_of  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cpp_chunks")
    ap.add_argument("--corpus", default=os.path.join(ROOT, "data", "sample", "corpus.jsonl"))
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "models", "kvrag-demo", "spiece.model"))
    args = ap.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    with open(args.cpp_chunks, encoding="utf-8") as f:
        cpp = {row["id"]: row["chunks"] for row in map(json.loads, f)}
    spm = SPM(args.tokenizer)
    spm.encode([w for d in docs for w in words_of(d["text"])[0]])
    chunks = 0
    for d in docs:
        mine = chunk_document(spm, d["text"])
        theirs = cpp.get(d["id"])
        if mine != theirs:
            print(f"document {d['id']}: training chunker {mine!r}\n  C++ chunker {theirs!r}")
            return 1
        chunks += len(mine)
    print(f"chunker parity OK: {len(docs)} documents, {chunks} chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())

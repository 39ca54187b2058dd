#!/usr/bin/python3
"""Write the SentencePiece training text (one sentence-ish per line) for the demo tokenizer.

Contents: the train-split documents and train questions in the exact prompt formats the model
sees (so `question:`, `title:` and `context:` become pieces), plus 3,000 freshly invented names
drawn from the same syllable generator as the corpus (different seed). The extra names keep the
unigram model from learning each corpus name as one piece, so names of unseen (dev) documents
are spelt with pieces the model has seen in training. Dev documents are left out.

Usage: /usr/bin/python3 training/make_spm_input.py > /tmp/spm_input.txt
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_corpus import Names  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SAMPLE = os.path.join(ROOT, "data", "sample")

train_docs = {json.loads(l)["document_id"] for l in open(os.path.join(SAMPLE, "questions-train.jsonl"))}
out = []
for l in open(os.path.join(SAMPLE, "corpus.jsonl")):
    d = json.loads(l)
    if d["id"] in train_docs:
        out.append(f"title: {d['title']} context: {d['text']}")
for l in open(os.path.join(SAMPLE, "questions-train.jsonl")):
    q = json.loads(l)
    out.append(f"question: {q['question']}")
    out.append(q["answers"][0])
names = Names(random.Random(7))
for i in range(3000):
    out.append([names.person, names.town, names.word][i % 3]())
sys.stdout.write("\n".join(out) + "\n")

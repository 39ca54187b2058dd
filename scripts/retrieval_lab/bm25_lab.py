#!/usr/bin/env python3
"""BM25 variants over an index's chunk texts, in SQLite FTS5 through Python's sqlite3.

  python3 scripts/retrieval_lab/bm25_lab.py INDEX/store.sqlite QUESTIONS.jsonl [--ks 5,20]

Copies the chunk texts (read-only) into an in-memory database once per tokenizer, and
prints document recall@k of kvrag's query construction (every run of ASCII letters/digits
or bytes >= 0x80 quoted and OR-ed, as data/sqlite_metadata_store.cpp fts_query) against
variants: porter stemming, unicode61 remove_diacritics 2, and dropping English stop words
from the query.
FTS5's bm25() uses k1 = 1.2, b = 0.75 (not settable through SQL). Standard library only.
"""
import argparse
import json
import sqlite3
import sys
import time

# A short English stop-word list (the usual function words; question words included).
STOP = set("""a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in into is
it its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves""".split())


def words(text):
    out, word = [], []
    for ch in text:
        if (ch.isascii() and ch.isalnum()) or not ch.isascii():
            word.append(ch)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return out


def fts_query(text, drop_stop=False):
    ws = words(text)
    if drop_stop:
        kept = [w for w in ws if w.lower() not in STOP]
        ws = kept or ws  # a query of stop words only keeps them
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in ws)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("questions")
    parser.add_argument("--ks", default="5,20")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    src = sqlite3.connect(f"file:{args.store}?mode=ro", uri=True)
    rows = src.execute("SELECT c.id, d.external_id, c.text FROM chunks c "
                       "JOIN documents d ON d.id = c.document_id").fetchall()
    doc = {cid: ext for cid, ext, _ in rows}
    with open(args.questions, encoding="utf-8") as f:
        qs = [json.loads(l) for l in f if l.strip()]
    qs = [q for q in qs if q.get("document_id")]
    tokenizers = {
        "unicode61 (current)": "unicode61",
        "unicode61 remove_diacritics 2": "unicode61 remove_diacritics 2",
        "porter unicode61": "porter unicode61",
        "porter unicode61 rd2": "porter unicode61 remove_diacritics 2",
    }
    print("variant".ljust(44) + "".join(f"@{k}".rjust(8) for k in ks) + "   ms/query")
    for tname, tok in tokenizers.items():
        db = sqlite3.connect(":memory:")
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(text, tokenize = '{tok}')")
        db.executemany("INSERT INTO t(rowid, text) VALUES(?, ?)",
                       [(cid, text) for cid, _, text in rows])
        for drop in (False, True):
            hits = {k: 0 for k in ks}
            start = time.time()
            for q in qs:
                match = fts_query(q["question"], drop)
                ids = [r[0] for r in db.execute(
                    "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t), rowid LIMIT ?",
                    (match, max(ks)))] if match else []
                for k in ks:
                    hits[k] += any(doc.get(c) == q["document_id"] for c in ids[:k])
            ms = 1000 * (time.time() - start) / len(qs)
            name = tname + (" + drop stop words" if drop else "")
            print(name.ljust(44) + "".join(f"{100 * hits[k] / len(qs):8.1f}" for k in ks)
                  + f"   {ms:.1f}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

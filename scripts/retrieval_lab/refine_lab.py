#!/usr/bin/env python3
"""Refinements of the agreement-gated robust z fusion (fusion_lab.py's agree_rz), offline.

  python3 scripts/retrieval_lab/refine_lab.py lists-sample.jsonl=INDEX/store.sqlite=Q.jsonl \
      lists-squad.jsonl lists-debian.jsonl [--ks 5,20]

over lists dumped by dump_ranked_lists.py. Prints document recall@k for every file and, for
a file given as LISTS=STORE=QUESTIONS, answer-bearing-chunk recall@k too (column -ans).
Variants: the gate at BM25's first 1 or 3 documents; "+slot-dense": the fused top k decides
which document holds each place, and a document's places take its chunks in dense order
(what retriever/fusion.h implements); "+doc-group": the same, a document's chunks adjacent.
Standard library only."""
import argparse, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fusion_lab as L


def base_scores(d, b, n_agree=1, w_lo=0.5, w_hi=4.0, depth=100):
    zd, fd = L.robust_zs(d, depth)
    zb, fb = L.robust_zs(b, depth)
    dd = L.first_docs(d, 1)
    wd = w_hi if dd and dd[0] in set(L.first_docs(b, n_agree)) else w_lo
    return {c: wd * (zd.get(c, fd) - fd) + (zb.get(c, fb) - fb) for c in set(zd) | set(zb)}


def ranked(scores):
    return sorted(scores, key=lambda c: (-scores[c], c))


def agree(n_agree=1, w_hi=4.0):
    def f(d, b, k):
        return ranked(base_scores(d, b, n_agree, w_hi=w_hi))[:k]
    return f


def slot_dense(n_agree=1, w_hi=4.0):
    """Fused order decides which document holds each slot; a document's slots are
    filled with its chunks in dense order (chunks dense did not return: after, fused order)."""
    def f(d, b, k):
        s = base_scores(d, b, n_agree, w_hi=w_hi)
        order = ranked(s)
        dense_rank = {c: r for r, (c, _) in enumerate(d)}
        by_doc = {}
        for c in order:
            by_doc.setdefault(L.DOC.get(c, c), []).append(c)
        for doc, cs in by_doc.items():
            cs.sort(key=lambda c: (dense_rank.get(c, 10**9), -s[c], c))
        used = {doc: 0 for doc in by_doc}
        out = []
        for c in order[:k]:
            doc = L.DOC.get(c, c)
            out.append(by_doc[doc][used[doc]])
            used[doc] += 1
        return out
    return f


def doc_level(n_agree=1, w_hi=4.0):
    """Documents ranked by their best fused chunk; each document contributes its chunks in
    dense order, as many as the fused ranking gives it slots (= slot_dense), but the
    slots are grouped: a document's chunks follow each other."""
    def f(d, b, k):
        s = base_scores(d, b, n_agree, w_hi=w_hi)
        order = ranked(s)[:k]
        dense_rank = {c: r for r, (c, _) in enumerate(d)}
        docs, count = [], {}
        allc = {}
        for c in ranked(s):
            allc.setdefault(L.DOC.get(c, c), []).append(c)
        for c in order:
            doc = L.DOC.get(c, c)
            if doc not in count:
                docs.append(doc)
            count[doc] = count.get(doc, 0) + 1
        out = []
        for doc in docs:
            cs = sorted(allc[doc], key=lambda c: (dense_rank.get(c, 10**9), -s[c], c))
            out += cs[: count[doc]]
        return out[:k]
    return f


def main():
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("--ks", default="5,20")
    a = p.parse_args()
    ks = [int(k) for k in a.ks.split(",")]
    ms = {"dense": L.only("dense"), "bm25": L.only("bm25"),
          "current rrf 7:1 c2 d4k": L.rrf(7, 1, 2, lambda k: 4 * k)}
    for n in (1, 3):
        for hi in (4.0,):
            ms[f"agree n{n} hi{hi:g}"] = agree(n, hi)
            ms[f"agree n{n} hi{hi:g} +slot-dense"] = slot_dense(n, hi)
            ms[f"agree n{n} hi{hi:g} +doc-group"] = doc_level(n, hi)
    data = []
    for spec in a.files:
        path, *extra = spec.split("=")
        rows = L.load(path)
        for r in rows:
            r["_doc"] = L.doc_of(r)
        name = os.path.basename(path).replace("lists-", "").replace(".jsonl", "")
        data.append((name, rows, False))
        if extra:
            store, qfile = extra
            qs = [json.loads(l) for l in open(qfile, encoding="utf-8") if l.strip()]
            qs = [q for q in qs if q.get("document_id")]
            for r, q in zip(rows, qs):
                assert r["question"] == q["question"]
                r["answers"] = q["answers"]
            L.answer_chunks(rows, store)
            data.append((name + "-ans", rows, True))
    print("method".ljust(34) + "".join(f"{n[:12]}@{k}".rjust(16) for n, _, _ in data for k in ks))
    for mname, fn in ms.items():
        cells = []
        for name, rows, ans in data:
            L.ANSWER = ans
            for k in ks:
                cells.append(f"{L.recall(rows, fn, k):16.1f}")
        print(mname.ljust(34) + "".join(cells), flush=True)


if __name__ == "__main__":
    main()

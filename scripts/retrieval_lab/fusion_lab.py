#!/usr/bin/env python3
"""Offline fusion experiments over ranked lists dumped by scripts/retrieval_lab/dump_ranked_lists.py.

  python3 scripts/retrieval_lab/fusion_lab.py lists-A.jsonl [lists-B.jsonl ...] [--ks 5,20] [--grid]

Prints document recall@k (a chunk of the question's gold document among the fused top k
chunks) for dense, BM25, the current hybrid (RRF 7:1, rank constant 2, depth 4k) and the
candidate fusions below, one column per (file, k). Standard library only.
"""
import argparse
import json
import math
import sqlite3
import string
import sys


def load(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("document_id"):
                rows.append(r)
    return rows


def normalize_answer(text):
    """kvrag's (= SQuAD's) answer normalisation: ASCII-lower, drop string.punctuation,
    drop the words a / an / the, collapse whitespace."""
    out = []
    for word in "".join(c for c in text if c not in string.punctuation).split():
        word = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in word)
        if word not in ("a", "an", "the"):
            out.append(word)
    return " ".join(out)


def answer_chunks(rows, store):
    """Adds row["_ans"]: the chunk ids (of any list) of the gold document whose text
    contains a normalised answer as whole words, as kvrag eval's answer recall."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    cache = {}
    for row in rows:
        answers = [" " + normalize_answer(a) + " " for a in row.get("answers", [])]
        ans = set()
        for name in ("dense", "bm25"):
            for cid, doc, _ in row[name]:
                if doc != row["document_id"]:
                    continue
                if cid not in cache:
                    t = db.execute("SELECT text FROM chunks WHERE id = ?", (cid,)).fetchone()
                    cache[cid] = " " + normalize_answer(t[0] if t else "") + " "
                if any(a in cache[cid] for a in answers):
                    ans.add(cid)
        row["_ans"] = ans


def doc_of(row):
    m = {}
    for name in ("dense", "bm25"):
        for cid, doc, _ in row[name]:
            m[cid] = doc
    return m


def top(fused, k):
    fused.sort(key=lambda x: (-x[1], x[0]))
    return [cid for cid, _ in fused[:k]]


# --------------------------------------------------------------- fusions
# each: fn(dense, bm25, k) -> list of chunk ids (best first, k long)
# dense / bm25: [(chunk id, score)] best first, 100 long (or shorter)

def only(name):
    def f(d, b, k):
        return [c for c, _ in (d if name == "dense" else b)[:k]]
    return f


def rrf(wd=1.0, wb=1.0, c=60.0, depth=None):
    def f(d, b, k):
        n = depth(k) if callable(depth) else (depth or 100)
        s = {}
        for w, lst in ((wd, d), (wb, b)):
            for r, (cid, _) in enumerate(lst[:n]):
                s[cid] = s.get(cid, 0.0) + w / (c + r + 1)
        return top(list(s.items()), k)
    return f


def stats(scores):
    n = len(scores)
    mu = sum(scores) / n
    var = sum((x - mu) ** 2 for x in scores) / n
    return mu, math.sqrt(var)


def zs(lst, n):
    """z-scores of a list's top n scores, over those n."""
    sc = [s for _, s in lst[:n]]
    if len(sc) < 2:
        return {cid: 0.0 for cid, _ in lst[:n]}, 0.0
    mu, sd = stats(sc)
    sd = sd if sd > 1e-12 else 1.0
    z = {cid: (s - mu) / sd for cid, s in lst[:n]}
    return z, (sc[-1] - mu) / sd  # the floor: z of the last kept score


def robust_zs(lst, n, center="median", scale="mad", tail_from=0):
    """Robust z of a list's top n scores: (s - median) / (1.4826 MAD) over ranks
    tail_from..n (the tail = the background), the floor is the last kept score's value."""
    sc = [s for _, s in lst[:n]]
    if len(sc) < 3:
        return {cid: 0.0 for cid, _ in lst[:n]}, 0.0
    bg = sorted(sc[tail_from:]) if len(sc) - tail_from >= 3 else sorted(sc)
    med = bg[len(bg) // 2] if len(bg) % 2 else 0.5 * (bg[len(bg) // 2 - 1] + bg[len(bg) // 2])
    if scale == "mad":
        dev = sorted(abs(x - med) for x in bg)
        mad = dev[len(dev) // 2] if len(dev) % 2 else 0.5 * (dev[len(dev) // 2 - 1] + dev[len(dev) // 2])
        sd = 1.4826 * mad
        mu = med if center == "median" else sum(bg) / len(bg)
    else:
        mu, sd = stats(bg)
    sd = sd if sd > 1e-12 else 1.0
    z = {cid: (s - mu) / sd for cid, s in lst[:n]}
    return z, (sc[-1] - mu) / sd


def comb_rz(wd=1.0, wb=1.0, depth=100, tail_from=0, scale="mad", clip=None):
    def f(d, b, k):
        zd, fd = robust_zs(d, depth, scale=scale, tail_from=tail_from)
        zb, fb = robust_zs(b, depth, scale=scale, tail_from=tail_from)
        out = []
        for cid in set(zd) | set(zb):
            a = zd.get(cid, fd) - fd
            c = zb.get(cid, fb) - fb
            if clip is not None:
                a = max(0.0, zd.get(cid, fd) - clip)
                c = max(0.0, zb.get(cid, fb) - clip)
            out.append((cid, wd * a + wb * c))
        return top(out, k)
    return f


def comb_z(wd=1.0, wb=1.0, depth=100, missing="floor"):
    def f(d, b, k):
        zd, fd = zs(d, depth)
        zb, fb = zs(b, depth)
        ids = set(zd) | set(zb)
        out = []
        for cid in ids:
            a = zd.get(cid, fd if missing == "floor" else 0.0)
            c = zb.get(cid, fb if missing == "floor" else 0.0)
            out.append((cid, wd * a + wb * c))
        return top(out, k)
    return f


def comb_minmax(wd=1.0, wb=1.0, depth=100):
    def f(d, b, k):
        def mm(lst):
            sc = [s for _, s in lst[:depth]]
            if not sc:
                return {}
            lo, hi = min(sc), max(sc)
            r = hi - lo if hi > lo else 1.0
            return {cid: (s - lo) / r for cid, s in lst[:depth]}
        md, mb = mm(d), mm(b)
        ids = set(md) | set(mb)
        return top([(cid, wd * md.get(cid, 0.0) + wb * mb.get(cid, 0.0)) for cid in ids], k)
    return f


def sharp_top(lst, depth=100, m=1):
    """How far the top m scores stand above the rest: (mean(top m) - mean(rest)) / sd(rest)."""
    sc = [s for _, s in lst[:depth]]
    if len(sc) < m + 2:
        return 0.0
    mu, sd = stats(sc[m:])
    return (sum(sc[:m]) / m - mu) / (sd if sd > 1e-12 else 1.0)


def sharp_gap(lst, depth=100):
    """(s1 - s2) / sd(top depth)."""
    sc = [s for _, s in lst[:depth]]
    if len(sc) < 3:
        return 0.0
    _, sd = stats(sc)
    return (sc[0] - sc[1]) / (sd if sd > 1e-12 else 1.0)


def entropy_sharp(lst, depth=100, temp=1.0):
    """1 - normalised entropy of softmax(z / temp) over the top depth."""
    sc = [s for _, s in lst[:depth]]
    if len(sc) < 2:
        return 0.0
    mu, sd = stats(sc)
    sd = sd if sd > 1e-12 else 1.0
    z = [(s - mu) / sd / temp for s in sc]
    mx = max(z)
    e = [math.exp(x - mx) for x in z]
    tot = sum(e)
    p = [x / tot for x in e]
    h = -sum(x * math.log(x) for x in p if x > 0)
    return 1.0 - h / math.log(len(sc))


def rrf_sharp(measure, c=60.0, depth=100, power=1.0, floor=0.0):
    """RRF whose list weights are measure(list) ** power (per query)."""
    def f(d, b, k):
        wd = max(measure(d), floor) ** power
        wb = max(measure(b), floor) ** power
        if wd + wb <= 0:
            wd = wb = 1.0
        return rrf(wd, wb, c, depth)(d, b, k)
    return f


def z_sharp(measure, depth=100, power=1.0, floor=0.0):
    def f(d, b, k):
        wd = max(measure(d), floor) ** power
        wb = max(measure(b), floor) ** power
        if wd + wb <= 0:
            wd = wb = 1.0
        return comb_z(wd, wb, depth)(d, b, k)
    return f


def agree_rrf(c=60.0, depth=100, m=10, lo=0.25):
    """Agreement-aware RRF: when the two lists share documents in their top m, equal
    weights; when they share none, the sharper list (sharp_top) gets weight 1 and the
    other `lo`."""
    def f(d, b, k):
        # chunk ids are per-chunk; agreement measured on chunk ids here
        sd_ = {cid for cid, _ in d[:m]}
        sb_ = {cid for cid, _ in b[:m]}
        a = len(sd_ & sb_) / m
        td, tb = sharp_top(d), sharp_top(b)
        wd, wb = (1.0, lo) if td >= tb else (lo, 1.0)
        wd = a + (1 - a) * wd
        wb = a + (1 - a) * wb
        return rrf(wd, wb, c, depth)(d, b, k)
    return f


# ------------------------------------------------- corroboration (document level)
# A list's item is "corroborated" when its document is among the first n distinct
# documents of the other list. DOC maps chunk id -> document for the current row.
DOC = {}


def top_docs(lst, n):
    out = []
    seen = set()
    for cid, _ in lst:
        d = DOC.get(cid, cid)
        if d not in seen:
            seen.add(d)
            out.append(d)
            if len(out) == n:
                break
    return set(out)


def corr_z(beta=0.25, n=10, depth=100, wfn=None, chunk_level=False):
    """z-score CombSUM on shifted z (z - z of the list's last kept score, so >= 0 and 0
    when missing); a contribution whose document is not among the other list's first n
    documents is multiplied by beta."""
    def f(d, b, k):
        zd, fd = zs(d, depth)
        zb, fb = zs(b, depth)
        if chunk_level:
            cd, cb = {c for c, _ in d[:n]}, {c for c, _ in b[:n]}
            inb = lambda c: c in cb
            ind = lambda c: c in cd
        else:
            dd, db = top_docs(d, n), top_docs(b, n)
            inb = lambda c: DOC.get(c, c) in db
            ind = lambda c: DOC.get(c, c) in dd
        wd, wb = wfn(d, b) if wfn else (1.0, 1.0)
        out = []
        for cid in set(zd) | set(zb):
            s = 0.0
            if cid in zd:
                s += wd * (zd[cid] - fd) * (1.0 if inb(cid) else beta)
            if cid in zb:
                s += wb * (zb[cid] - fb) * (1.0 if ind(cid) else beta)
            out.append((cid, s))
        return top(out, k)
    return f


def corr_rrf(beta=0.25, n=10, c=60.0, depth=100, wfn=None):
    """RRF whose per-item contribution is multiplied by beta when the item's document is
    not among the other list's first n documents."""
    def f(d, b, k):
        dd, db = top_docs(d, n), top_docs(b, n)
        wd, wb = wfn(d, b) if wfn else (1.0, 1.0)
        s = {}
        for w, lst, other in ((wd, d, db), (wb, b, dd)):
            for r, (cid, _) in enumerate(lst[:depth]):
                lam = 1.0 if DOC.get(cid, cid) in other else beta
                s[cid] = s.get(cid, 0.0) + w * lam / (c + r + 1)
        return top(list(s.items()), k)
    return f


def doc_best(z, floor):
    """document -> best shifted z of its chunks in one list."""
    best = {}
    for cid, v in z.items():
        d = DOC.get(cid, cid)
        best[d] = max(best.get(d, 0.0), v - floor)
    return best


def support_w(m=5, power=1.0, depth=100, eps=1e-3, mode="z", n=20):
    """Per-query list weights from how much the OTHER list supports this list's first m
    documents: mode z: mean over them of the other list's best shifted z for that
    document (0 when absent); mode hit: the share of them among the other list's first n
    documents."""
    def w(d, b):
        out = []
        for x, y in ((d, b), (b, d)):
            dx = []
            for cid, _ in x:
                dd = DOC.get(cid, cid)
                if dd not in dx:
                    dx.append(dd)
                if len(dx) == m:
                    break
            if mode == "z":
                zy, fy = zs(y, depth)
                by = doc_best(zy, fy)
                r = sum(by.get(dd, 0.0) for dd in dx) / max(1, len(dx))
            else:
                ty = top_docs(y, n)
                r = sum(1 for dd in dx if dd in ty) / max(1, len(dx))
            out.append(eps + r ** power)
        return tuple(out)
    return w


def first_docs(lst, n):
    out = []
    for cid, _ in lst:
        d = DOC.get(cid, cid)
        if d not in out:
            out.append(d)
            if len(out) == n:
                break
    return out


def arbiter(beta=0.1, n=10, m=5, depth=100, robust=True, per_item=True, rank=False, c=60.0):
    """Agreement-aware fusion with sharpness arbitration.
    u_X = robust z (or plain z) of list X's top `depth` scores, shifted to 0 at the last.
    The 'leader' is the list with the larger top z (per query). The leader's items count
    fully. per_item: the other list's items count fully when their document is among the
    leader's first n documents, else times beta. Not per_item: the other list's weight is
    max(beta, a), a = share of its first m documents among the leader's first n.
    rank: use 1/(c + rank) instead of u_X."""
    zfun = (lambda l: robust_zs(l, depth)) if robust else (lambda l: zs(l, depth))
    def f(d, b, k):
        zd, fd = zfun(d)
        zb, fb = zfun(b)
        topd = max(zd.values()) if zd else 0.0
        topb = max(zb.values()) if zb else 0.0
        lists = [(d, zd, fd), (b, zb, fb)]
        li = 0 if topd > topb else 1
        lead, other = lists[li], lists[1 - li]
        lead_docs = set(first_docs(lead[0], n))
        out = {}
        def val(z, fl, cid, r):
            return 1.0 / (c + r + 1) if rank else z[cid] - fl
        for r, (cid, _) in enumerate(lead[0][:depth]):
            out[cid] = out.get(cid, 0.0) + val(lead[1], lead[2], cid, r)
        if per_item:
            for r, (cid, _) in enumerate(other[0][:depth]):
                lam = 1.0 if DOC.get(cid, cid) in lead_docs else beta
                out[cid] = out.get(cid, 0.0) + lam * val(other[1], other[2], cid, r)
        else:
            om = first_docs(other[0], m)
            a = sum(1 for x in om if x in lead_docs) / max(1, len(om))
            w = max(beta, a)
            for r, (cid, _) in enumerate(other[0][:depth]):
                out[cid] = out.get(cid, 0.0) + w * val(other[1], other[2], cid, r)
        return top(list(out.items()), k)
    return f


def agree_rz(w_lo=0.5, w_hi=2.0, n=3, depth=100):
    """Robust-z CombSUM; BM25 weight 1; dense weight w_hi when dense's first document is
    among BM25's first n documents, else w_lo."""
    def f(d, b, k):
        zd, fd = robust_zs(d, depth)
        zb, fb = robust_zs(b, depth)
        dd = first_docs(d, 1)
        wd = w_hi if dd and dd[0] in set(first_docs(b, n)) else w_lo
        out = []
        for cid in set(zd) | set(zb):
            out.append((cid, wd * (zd.get(cid, fd) - fd) + (zb.get(cid, fb) - fb)))
        return top(out, k)
    return f


def wz(wfn, depth=100):
    """Shifted z-score CombSUM with per-query weights wfn(dense, bm25)."""
    def f(d, b, k):
        zd, fd = zs(d, depth)
        zb, fb = zs(b, depth)
        wd, wb = wfn(d, b)
        out = []
        for cid in set(zd) | set(zb):
            out.append((cid, wd * (zd.get(cid, fd) - fd) + wb * (zb.get(cid, fb) - fb)))
        return top(out, k)
    return f


def wrrf(wfn, c=60.0, depth=100):
    def f(d, b, k):
        wd, wb = wfn(d, b)
        return rrf(wd, wb, c, depth)(d, b, k)
    return f


def sharp_w(power=1.0, m=1, depth=100):
    def w(d, b):
        return (max(sharp_top(d, depth, m), 0.0) ** power,
                max(sharp_top(b, depth, m), 0.0) ** power)
    return w


# --------------------------------------------------------------- driver

ANSWER = False


def recall(rows, fn, k):
    global DOC
    hit = 0
    for row in rows:
        m = row["_doc"]
        DOC = m
        d = [(c, s) for c, _, s in row["dense"]]
        b = [(c, s) for c, _, s in row["bm25"]]
        ids = fn(d, b, k)
        if ANSWER:
            hit += any(c in row["_ans"] for c in ids)
        elif any(m.get(c) == row["document_id"] for c in ids):
            hit += 1
    return 100.0 * hit / len(rows)


def methods(grid):
    ms = {
        "dense": only("dense"),
        "bm25": only("bm25"),
        "current rrf 7:1 c2 d4k": rrf(7, 1, 2, lambda k: 4 * k),
        "rrf 1:1 c60 d4k": rrf(1, 1, 60, lambda k: 4 * k),
        "rrf 1:1 c60 d100": rrf(1, 1, 60, 100),
        "minmax 1:1 d100": comb_minmax(1, 1, 100),
        "z 1:1 d100": comb_z(1, 1, 100),
        "z 1:1 d100 miss0": comb_z(1, 1, 100, missing="zero"),
        "z 1:1 d50": comb_z(1, 1, 50),
        "z 1:1 d20": comb_z(1, 1, 20),
        "rrf sharp_top c60": rrf_sharp(sharp_top),
        "rrf sharp_top^2 c60": rrf_sharp(sharp_top, power=2),
        "rrf sharp_gap c60": rrf_sharp(sharp_gap),
        "rrf entropy c60": rrf_sharp(entropy_sharp),
        "z*sharp_top d100": z_sharp(sharp_top),
        "z*sharp_top^2 d100": z_sharp(sharp_top, power=2),
        "agree rrf c60": agree_rrf(),
    }
    for lo in (0.3, 0.5):
        for hi in (1, 2, 4, 7, 15, 30, 100):
            for n in (1, 3, 5):
                ms[f"agree_rz lo{lo} hi{hi} n{n}"] = agree_rz(lo, hi, n)
    for wd in (0.3, 0.5, 0.7):
        ms[f"rz mad d100 wd{wd}"] = comb_rz(wd, 1.0, 100)
    for beta in (0.0, 0.1, 0.25):
        for n in (1, 3, 5, 10, 20):
            ms[f"arb item b{beta} n{n}"] = arbiter(beta, n)
            ms[f"arb item plainz b{beta} n{n}"] = arbiter(beta, n, robust=False)
            ms[f"arb item rrf b{beta} n{n}"] = arbiter(beta, n, rank=True)
            for m in (1, 5):
                ms[f"arb list b{beta} n{n} m{m}"] = arbiter(beta, n, m, per_item=False)
    for dpt in (20, 50, 100):
        ms[f"rz mad d{dpt}"] = comb_rz(depth=dpt)
        ms[f"rz mad tail10 d{dpt}"] = comb_rz(depth=dpt, tail_from=10)
        ms[f"rz sd tail10 d{dpt}"] = comb_rz(depth=dpt, tail_from=10, scale="sd")
        ms[f"rz sd tail5 d{dpt}"] = comb_rz(depth=dpt, tail_from=5, scale="sd")
        for cl in (0, 1, 2, 3):
            ms[f"rz mad clip{cl} d{dpt}"] = comb_rz(depth=dpt, clip=cl)
    for beta in (0.0, 0.1, 0.25, 0.5):
        for n in (5, 10, 20):
            ms[f"corr_z b{beta} n{n}"] = corr_z(beta, n)
            ms[f"corr_rrf b{beta} n{n} c60"] = corr_rrf(beta, n)
            ms[f"corr_rrf b{beta} n{n} c10"] = corr_rrf(beta, n, c=10)
            ms[f"corr_rrf*sharp b{beta} n{n} c60"] = corr_rrf(beta, n, wfn=sharp_w())
    ms["corr_z chunk b0.25 n10"] = corr_z(0.25, 10, chunk_level=True)
    for m in (1, 3, 5, 10):
        for p in (1, 2, 4):
            ms[f"sup_z m{m} p{p}"] = wz(support_w(m, p))
            ms[f"sup_hit m{m} p{p} n20"] = wz(support_w(m, p, mode="hit", n=20))
            ms[f"sup_z-rrf m{m} p{p} c60"] = wrrf(support_w(m, p))
            ms[f"sup_z-rrf m{m} p{p} c10"] = wrrf(support_w(m, p), c=10)
    if grid:
        for c in (5, 10, 20, 60):
            for p in (1, 2, 3, 4):
                ms[f"rrf sharp_top^{p} c{c}"] = rrf_sharp(sharp_top, c=c, power=p)
        for p in (0.5, 1, 2, 3):
            for dpt in (20, 50, 100):
                ms[f"z*sharp_top^{p} d{dpt}"] = z_sharp(lambda l, dpt=dpt: sharp_top(l, dpt),
                                                       depth=dpt, power=p)
    return ms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--ks", default="5,20")
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated method-name substrings")
    parser.add_argument("--answer", action="store_true",
                        help="answer recall instead of document recall; FILE must be given as "
                             "lists.jsonl=store.sqlite=questions.jsonl")
    args = parser.parse_args()
    global ANSWER
    ANSWER = args.answer
    ks = [int(k) for k in args.ks.split(",")]
    data = []
    for spec in args.files:
        path, *extra = spec.split("=")
        rows = load(path)
        for r in rows:
            r["_doc"] = doc_of(r)
        if args.answer:
            store, qfile = extra
            with open(qfile, encoding="utf-8") as f:
                qs = [json.loads(l) for l in f if l.strip()]
            qs = [q for q in qs if q.get("document_id")]
            for r, q in zip(rows, qs):
                assert r["question"] == q["question"]
                r["answers"] = q["answers"]
            answer_chunks(rows, store)
        data.append((path.split("/")[-1].replace("lists-", "").replace(".jsonl", ""), rows))
    ms = methods(args.grid)
    if args.only:
        keep = args.only.split(",")
        ms = {n: f for n, f in ms.items() if n in ("dense", "bm25") or any(x in n for x in keep)}
    header = "method".ljust(30) + "".join(f"{name[:8]}@{k}".rjust(12) for name, _ in data for k in ks)
    print(header + "   worst(best-hyb)")
    best = {}
    for name, rows in data:
        for k in ks:
            best[(name, k)] = max(recall(rows, ms["dense"], k), recall(rows, ms["bm25"], k))
    for mname, fn in ms.items():
        cells, worst = [], -1e9
        for name, rows in data:
            for k in ks:
                r = recall(rows, fn, k)
                cells.append(f"{r:12.1f}")
                worst = max(worst, best[(name, k)] - r)
        print(mname.ljust(30) + "".join(cells) + f"   {worst:6.1f}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

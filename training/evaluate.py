"""Evaluation of the demo reader in Python: the probes logged during training and the dev report.

Scoring is the SQuAD exact match / F1 with the normalisation of the C++ `pipeline/qa_metrics.cpp`
(ASCII lower case, punctuation dropped, articles dropped, whitespace split), so Python and
`kvrag eval` count the same answers as right. The official numbers come from `kvrag eval`.
"""
import collections
import random
import string
import time

import torch


from objectives import answer_ce, copy_spans, shuffled_chunks
from t5_model import encode_each, join_memory, pad_batch

MAX_NEW_TOKENS = 24
_PUNCT = set(string.punctuation)
_SPACE = set(" \t\n\r\f\v")


def answer_tokens(text):
    words, word = [], ""
    for c in text + " ":
        if c in _SPACE:
            if word and word not in ("a", "an", "the"):
                words.append(word)
            word = ""
        elif c not in _PUNCT:
            word += c.lower() if "A" <= c <= "Z" else c
    return words


def f1_of(pred, gold):
    p, g = answer_tokens(pred), answer_tokens(gold)
    if not p or not g:
        return float(p == g)
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def score(preds, qs):
    """Percent exact match and F1 of predictions against each question's answers."""
    em = sum(max(float(answer_tokens(p) == answer_tokens(a)) for a in q["answers"]) for p, q in zip(preds, qs))
    f1 = sum(max(f1_of(p, a) for a in q["answers"]) for p, q in zip(preds, qs))
    return 100 * em / len(qs), 100 * f1 / len(qs)


@torch.no_grad()
def copy_accuracy(model, corpus, chunk_ids, span=8, seed=0):
    """Share of chunks (words shuffled, see objectives.shuffled_chunks) whose `span` tokens after a
    3-token prefix the reader writes exactly (greedy), each chunk encoded alone. Measured on chunks
    of documents never trained on."""
    model.eval()
    rng = random.Random(seed)
    prompts, texts = shuffled_chunks(rng, corpus, chunk_ids)
    spans = copy_spans(rng, texts, prefix_tokens=(3, 3), span_tokens=(span, span))
    enc, _ = encode_each(model, prompts, batch=64)
    mem, mask = join_memory([[e] for e in enc])
    ids = torch.tensor([[0] + p for p, _ in spans])
    for _ in range(span):
        ids = torch.cat([ids, model.decode(ids, mem, mask)[:, -1].argmax(-1, keepdim=True)], 1)
    got = ids[:, 4:].tolist()
    model.train()
    return 100 * sum(g[:len(c)] == c for g, (_, c) in zip(got, spans)) / len(spans)


@torch.no_grad()
def passage_use(model, corpus, qs):
    """Answer loss per token (cached mode, teacher forced) with the question alone and with the
    question + gold chunk: their gap is how much the reader reads its passage."""
    model.eval()
    q_enc, _ = encode_each(model, [q["ids"] for q in qs], batch=64)
    g_enc, _ = encode_each(model, [corpus.chunks[q["gold"]]["ids"] for q in qs], batch=64)
    answers = [q["ans_ids"] for q in qs]
    out = {}
    for name, parts in (("q_only", [[e] for e in q_enc]), ("q_gold", [[e, g] for e, g in zip(q_enc, g_enc)])):
        mem, mask = join_memory(parts)
        ce, n = answer_ce(model, mem, mask, answers)
        out[name] = ce.item() / n
    model.train()
    return out


def _memory(model, corpus, mode, qs, idx, q_enc, c_enc, passages):
    if mode == "cached":
        return join_memory([[q_enc[i]] + [c_enc[c] for c in passages[i]] for i in idx])
    if mode == "fid":
        return join_memory([encode_each(model, [corpus.fid_ids(qs[i], c) for c in passages[i]])[0] for i in idx])
    ids, mask = pad_batch([corpus.concat_ids(qs[i], passages[i]) for i in idx])
    return model.encode(ids, mask), mask


@torch.no_grad()
def evaluate(model, corpus, spm, qs, ks=(5,), modes=("cached", "fid", "concat"), bs=32):
    """Dense retrieval over every chunk of the corpus with the reader's own embeddings (encoded
    once), then each mode answers greedily from the top k, for each k in `ks`. Returns recall and
    EM/F1 (percent) under keys like "cached_em@5"."""
    model.eval()
    t0 = time.time()
    c_enc, c_emb = encode_each(model, [c["ids"] for c in corpus.chunks], batch=64)
    q_enc, q_emb = encode_each(model, [q["ids"] for q in qs], batch=64)
    top = (q_emb @ c_emb.t()).topk(max(*ks, 5), dim=1).indices.tolist()
    res = {"recall@1": 100 * sum(bool(set(t[:1]) & q["pos"]) for t, q in zip(top, qs)) / len(qs),
           "recall@5": 100 * sum(bool(set(t[:5]) & q["pos"]) for t, q in zip(top, qs)) / len(qs)}
    for k in ks:
        passages = [t[:k] for t in top]
        for mode in modes:
            preds = []
            for s in range(0, len(qs), bs):
                idx = list(range(s, min(s + bs, len(qs))))
                mem, mask = _memory(model, corpus, mode, qs, idx, q_enc, c_enc, passages)
                out = model.greedy(mem, mask, max_new_tokens=MAX_NEW_TOKENS)
                preds.extend(spm.decode([o[1:].tolist() for o in out]))
            res[f"{mode}_em@{k}"], res[f"{mode}_f1@{k}"] = score(preds, qs)
            res[f"{mode}_examples@{k}"] = [(q["question"], q["answers"][0], p) for q, p in zip(qs[:3], preds[:3])]
    res["eval_seconds"] = time.time() - t0
    model.train()
    return res


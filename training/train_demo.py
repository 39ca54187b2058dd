#!/usr/bin/python3
"""Train the kvrag demo model: a small T5 v1.1 reader + dense retriever, on CPU, one thread.

The training task is exactly how the C++ toolkit uses the model at question time (the prompt
formats below are a contract with the C++ pipeline; they are repeated in the model card):

  question prompt (encoded alone)   QUESTION_PROMPT + eos
  chunk (encoded alone, cached)     CHUNK_PROMPT + eos
  cached mode memory                [question ; chunk_1 ; ... ; chunk_k] encoder outputs, concatenated on time
  fid mode                          each chunk encoded as FID_PROMPT + eos, outputs concatenated
  concat mode                       one encoding of CONCAT_PROMPT (passages joined by CONCAT_PASSAGE) + eos
  answer                            decoder start 0, answer tokens, eos 1
  embedding                         mean over positions of the encoder output (after the final
                                    layer norm) of the question prompt / chunk prompt, L2-normalised

Chunks: the document text split into windows of at most CHUNK_TOKENS SentencePiece tokens of the
chunk text, packing whole sentences greedily (a sentence longer than the window is split at words).

Loss: teacher-forced cross-entropy on the answer (cached on every example of a batch, fid and concat
on a share of them) + in-batch InfoNCE between question and gold-chunk embeddings.

Usage (see training/README.md):
  nice -n 15 /usr/bin/python3 training/train_demo.py --minutes 45
  nice -n 15 /usr/bin/python3 training/train_demo.py --minutes 1 --smoke   # pipeline check
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import string  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_corpus  # noqa: E402
from t5_model import T5, load_safetensors, save_safetensors  # noqa: E402

# ---------------------------------------------------------------- the contract with the C++ pipeline
QUESTION_PROMPT = "question: {question}"
CHUNK_PROMPT = "title: {title} context: {text}"
FID_PROMPT = "question: {question} title: {title} context: {text}"
CONCAT_PROMPT = "question: {question} context: {passages}"
CONCAT_PASSAGE = "{title}: {text}"          # joined with single spaces
CHUNK_TOKENS = 64                           # max SentencePiece tokens of chunk text per chunk
PAD, EOS, DECODER_START = 0, 1, 0
MAX_NEW_TOKENS = 24

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SAMPLE = os.path.join(ROOT, "data", "sample")
OUT = os.path.join(ROOT, "models", "kvrag-demo")
CKPT = os.path.join(ROOT, "training", "ckpt", "last.pt")

CONFIG = {
    "architectures": ["T5ForConditionalGeneration"],
    "d_ff": 512, "d_kv": 32, "d_model": 256, "decoder_start_token_id": 0,
    "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": True,
    "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5",
    "num_decoder_layers": 3, "num_heads": 8, "num_layers": 3, "pad_token_id": 0,
    "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": True,
    "vocab_size": None,   # set from spiece.model
}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------- tokenizer (spm_encode / spm_decode)
class SPM:
    def __init__(self, model):
        self.model = model
        self.cache = {}
        out = subprocess.run(["spm_export_vocab", f"--model={model}"], capture_output=True,
                             text=True, check=True).stdout
        self.vocab_size = len(out.strip("\n").split("\n"))

    def encode(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            for t in todo:
                assert "\n" not in t
            res = subprocess.run(["spm_encode", f"--model={self.model}", "--output_format=id"],
                                 input="\n".join(todo) + "\n", capture_output=True, text=True, check=True)
            lines = res.stdout.split("\n")
            for t, l in zip(todo, lines):
                self.cache[t] = [int(x) for x in l.split()]
        return [self.cache[t] for t in texts]

    def decode(self, id_lists):
        lines = [" ".join(str(i) for i in ids if i not in (PAD, EOS)) for ids in id_lists]
        res = subprocess.run(["spm_decode", f"--model={self.model}", "--input_format=id"],
                             input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
        out = res.stdout.split("\n")
        return [out[i] if i < len(out) else "" for i in range(len(lines))]


# ---------------------------------------------------------------- data
def split_sentences(text):
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def chunk_document(spm, text, max_tokens=CHUNK_TOKENS):
    """Pack whole sentences greedily into windows of <= max_tokens tokens; split long sentences at words."""
    pieces = []
    for s in split_sentences(text):
        (ids,) = spm.encode([s])
        if len(ids) <= max_tokens:
            pieces.append((s, len(ids)))
            continue
        words, cur = s.split(), []
        for w in words:
            cand = " ".join(cur + [w])
            if cur and len(spm.encode([cand])[0]) > max_tokens:
                c = " ".join(cur)
                pieces.append((c, len(spm.encode([c])[0])))
                cur = [w]
            else:
                cur.append(w)
        if cur:
            c = " ".join(cur)
            pieces.append((c, len(spm.encode([c])[0])))
    chunks, cur, n = [], [], 0
    for s, k in pieces:
        if cur and n + k > max_tokens:
            chunks.append(" ".join(cur))
            cur, n = [], 0
        cur.append(s)
        n += k
    if cur:
        chunks.append(" ".join(cur))
    return chunks


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def synthetic_shard(spm, seed):
    """A fresh fictional encyclopedia (same generator as data/sample, another seed): 300 new
    documents with every question phrasing. Training mostly on never-repeating documents makes
    memorising facts useless, so the reader has to learn to copy answers from its passages."""
    _, corpus, qas = make_corpus.build(seed)
    pre = f"syn{seed}-"
    for d in corpus:
        d["id"] = pre + d["id"]
    qs = [{"question": q, "answers": [ans], "document_id": pre + did}
          for did, qa in qas for phr, ans in qa for q in phr]
    return Data(spm, corpus, qs, [])


class Data:
    """Documents chunked and tokenized, with train (and dev) questions. By default the sample
    corpus; synthetic shards pass freshly generated documents and questions instead."""

    def __init__(self, spm, docs=None, train_q=None, dev_q=None):
        self.spm = spm
        self.docs = docs if docs is not None else read_jsonl(os.path.join(SAMPLE, "corpus.jsonl"))
        self.train_q = train_q if train_q is not None else read_jsonl(os.path.join(SAMPLE, "questions-train.jsonl"))
        self.dev_q = dev_q if dev_q is not None else read_jsonl(os.path.join(SAMPLE, "questions-dev.jsonl"))
        # pre-tokenize every sentence in one call
        spm.encode([s for d in self.docs for s in split_sentences(d["text"])])
        self.chunks = []      # dicts
        self.doc_chunks = {}  # doc id -> chunk indices
        for d in self.docs:
            idx = []
            for ci, text in enumerate(chunk_document(spm, d["text"])):
                idx.append(len(self.chunks))
                self.chunks.append({"doc": d["id"], "title": d["title"], "text": text, "pos": ci,
                                    "topic": d["metadata"]["topic"]})
            self.doc_chunks[d["id"]] = idx
        prompts = [CHUNK_PROMPT.format(title=c["title"], text=c["text"]) for c in self.chunks]
        cps = [CONCAT_PASSAGE.format(title=c["title"], text=c["text"]) for c in self.chunks]
        texts_ids = spm.encode([c["text"] for c in self.chunks])
        for c, p, cp, t in zip(self.chunks, spm.encode(prompts), spm.encode(cps), texts_ids):
            c["ids"], c["concat_ids"], c["ntok"] = p, cp, len(t)
        self.context_ids = spm.encode(["context:"])[0]
        for qs in (self.train_q, self.dev_q):
            qids = spm.encode([QUESTION_PROMPT.format(question=q["question"]) for q in qs])
            aids = spm.encode([q["answers"][0] for q in qs])
            for q, a, b in zip(qs, qids, aids):
                q["ids"], q["ans_ids"] = a, b + [EOS]
                pos = [i for i in self.doc_chunks[q["document_id"]]
                       if any(ans in self.chunks[i]["text"] for ans in q["answers"])]
                assert pos, q
                q["pos"], q["gold"] = set(pos), pos[0]
        self.train_docs = sorted({q["document_id"] for q in self.train_q})
        self.dev_docs = sorted({q["document_id"] for q in self.dev_q})
        assert not set(self.train_docs) & set(self.dev_docs)
        self.q_by_doc = collections.defaultdict(list)
        for q in self.train_q:
            self.q_by_doc[q["document_id"]].append(q)
        train_set = set(self.train_docs)
        self.topic_chunks = collections.defaultdict(list)
        for i, c in enumerate(self.chunks):
            if c["doc"] in train_set:
                self.topic_chunks[c["topic"]].append(i)
        self.train_chunk_ids = [i for i, c in enumerate(self.chunks) if c["doc"] in train_set]

    def fid_ids(self, q, ci):
        return q["ids"] + self.chunks[ci]["ids"]

    def concat_ids(self, q, cis):
        out = q["ids"] + self.context_ids
        for ci in cis:
            out = out + self.chunks[ci]["concat_ids"]
        return out

    def verify_prompt_concatenation(self, rng, n=30):
        """The fid/concat prompts are built from token pieces; check they equal encoding the string."""
        bad = 0
        for _ in range(n):
            q = rng.choice(self.train_q + self.dev_q)
            cis = rng.sample(range(len(self.chunks)), 3)
            c = self.chunks[cis[0]]
            s = FID_PROMPT.format(question=q["question"], title=c["title"], text=c["text"])
            bad += self.spm.encode([s])[0] != self.fid_ids(q, cis[0])
            passages = " ".join(CONCAT_PASSAGE.format(title=self.chunks[i]["title"], text=self.chunks[i]["text"])
                                for i in cis)
            s = CONCAT_PROMPT.format(question=q["question"], passages=passages)
            bad += self.spm.encode([s])[0] != self.concat_ids(q, cis)
        return bad


def pad_batch(seqs, eos=True):
    seqs = [s + [EOS] if eos else s for s in seqs]
    t = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), t, dtype=torch.long)
    mask = torch.zeros(len(seqs), t, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def encode_padded(model, seqs, bs=None):
    """Encode sequences (each gets eos) -> list of [n_i, d] tensors (valid rows only) and embeddings."""
    outs, embs = [], []
    bs = bs or len(seqs)
    for s in range(0, len(seqs), bs):
        part = seqs[s:s + bs]
        order = sorted(range(len(part)), key=lambda i: len(part[i]))
        ids, mask = pad_batch([part[i] for i in order])
        h = model.encode(ids, mask)
        m = mask.unsqueeze(-1).float()
        e = F.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        res = [None] * len(part)
        eres = [None] * len(part)
        for j, i in enumerate(order):
            res[i] = h[j, :int(mask[j].sum())]
            eres[i] = e[j]
        outs.extend(res)
        embs.extend(eres)
    return outs, torch.stack(embs)


def build_memory(parts_per_example):
    """parts_per_example: list of lists of [n, d] tensors -> padded memory [b, T, d] and mask."""
    mems = [torch.cat(p, 0) for p in parts_per_example]
    t = max(m.shape[0] for m in mems)
    d = mems[0].shape[1]
    out = mems[0].new_zeros(len(mems), t, d)
    mask = torch.zeros(len(mems), t, dtype=torch.long)
    for i, m in enumerate(mems):
        out[i, :m.shape[0]] = m
        mask[i, :m.shape[0]] = 1
    return out, mask


def decoder_io(answers):
    u = max(len(a) for a in answers)
    dec_in = torch.zeros(len(answers), u, dtype=torch.long)
    tgt = torch.full((len(answers), u), -100, dtype=torch.long)
    for i, a in enumerate(answers):
        dec_in[i, 0] = DECODER_START
        dec_in[i, 1:len(a)] = torch.tensor(a[:-1])
        tgt[i, :len(a)] = torch.tensor(a)
    return dec_in, tgt


# ---------------------------------------------------------------- training step
def train_step(model, data, rng, args, k_range):
    docs = rng.sample(data.train_docs, args.batch)
    qs = [rng.choice(data.q_by_doc[d]) for d in docs]
    pool, pool_index = [], {}

    def add(ci):
        if ci not in pool_index:
            pool_index[ci] = len(pool)
            pool.append(ci)
        return pool_index[ci]

    hard = []
    for q in qs:
        add(q["gold"])
    for q in qs:
        same = [i for i in data.doc_chunks[q["document_id"]] if i not in q["pos"]]
        if same and rng.random() < 0.5:
            h = rng.choice(same)
        else:
            topic = data.chunks[q["gold"]]["topic"]
            while True:
                h = rng.choice(data.topic_chunks[topic])
                if data.chunks[h]["doc"] != q["document_id"]:
                    break
        hard.append(add(h))
    # encode questions and the chunk pool (each alone, padded batch)
    q_enc, q_emb = encode_padded(model, [q["ids"] for q in qs])
    c_enc, c_emb = encode_padded(model, [data.chunks[ci]["ids"] for ci in pool])
    # InfoNCE: question -> gold chunk among the pool (other answer-bearing chunks masked out)
    sim = q_emb @ c_emb.t() / args.temperature
    gold_idx = torch.tensor([pool_index[q["gold"]] for q in qs])
    for i, q in enumerate(qs):
        for ci in q["pos"]:
            if ci in pool_index and ci != q["gold"]:
                sim[i, pool_index[ci]] = -1e4
    loss_nce = F.cross_entropy(sim, gold_idx)
    nce_acc = (sim.argmax(1) == gold_idx).float().mean().item()

    # passages per example: gold at a random position among k-1 distractors
    passages = []
    for i, q in enumerate(qs):
        k = rng.randint(*k_range)
        cand = [j for j in range(len(pool)) if pool[j] not in q["pos"] and j != hard[i]]
        distract = ([hard[i]] + rng.sample(cand, max(0, k - 2)))[:k - 1]
        distract.insert(rng.randint(0, k - 1), pool_index[q["gold"]])
        passages.append(distract)

    losses = {}
    # cached mode: every example
    mem, mask = build_memory([[q_enc[i]] + [c_enc[j] for j in passages[i]] for i in range(len(qs))])
    dec_in, tgt = decoder_io([q["ans_ids"] for q in qs])
    logits = model.decode(dec_in, mem, mask)
    ce_sum = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100, reduction="sum")
    ntok = int((tgt != -100).sum())
    losses["cached"] = ce_sum.item() / ntok
    total_ce, total_tok = ce_sum, ntok
    # fid and concat modes on a share of the examples
    nf = args.fid_examples
    sel_f = list(range(nf))
    sel_c = list(range(nf, nf + args.concat_examples))
    if sel_f:
        seqs, owner = [], []
        for i in sel_f:
            for j in passages[i]:
                seqs.append(data.fid_ids(qs[i], pool[j]))
                owner.append(i)
        enc, _ = encode_padded(model, seqs)
        parts = collections.defaultdict(list)
        for e, i in zip(enc, owner):
            parts[i].append(e)
        mem, mask = build_memory([parts[i] for i in sel_f])
        dec_in, tgt = decoder_io([qs[i]["ans_ids"] for i in sel_f])
        logits = model.decode(dec_in, mem, mask)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100, reduction="sum")
        n = int((tgt != -100).sum())
        losses["fid"] = ce.item() / n
        total_ce, total_tok = total_ce + ce, total_tok + n
    if sel_c:
        seqs = [data.concat_ids(qs[i], [pool[j] for j in passages[i]]) for i in sel_c]
        ids, m = pad_batch(seqs)
        mem = model.encode(ids, m)
        dec_in, tgt = decoder_io([qs[i]["ans_ids"] for i in sel_c])
        logits = model.decode(dec_in, mem, m)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100, reduction="sum")
        n = int((tgt != -100).sum())
        losses["concat"] = ce.item() / n
        total_ce, total_tok = total_ce + ce, total_tok + n
    loss = total_ce / total_tok + args.nce_weight * loss_nce
    losses["nce"] = loss_nce.item()
    losses["nce_acc"] = nce_acc
    return loss, losses


# ---------------------------------------------------------------- evaluation
def normalize_answer(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(pred, gold):
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def score(preds, qs):
    em = sum(max(float(normalize_answer(p) == normalize_answer(a)) for a in q["answers"]) for p, q in zip(preds, qs))
    f1 = sum(max(f1_score(p, a) for a in q["answers"]) for p, q in zip(preds, qs))
    return 100 * em / len(qs), 100 * f1 / len(qs)


@torch.no_grad()
def evaluate(model, data, spm, qs, k=4, modes=("cached", "fid", "concat", "cached-retrieved"), bs=32):
    model.eval()
    t0 = time.time()
    c_enc, c_emb = encode_padded(model, [c["ids"] for c in data.chunks], bs=64)
    q_enc, q_emb = encode_padded(model, [q["ids"] for q in qs], bs=64)
    sim = q_emb @ c_emb.t()
    top = sim.topk(max(k, 5), dim=1).indices.tolist()
    res = {}
    hits1 = sum(bool(set(t[:1]) & q["pos"]) for t, q in zip(top, qs))
    hits5 = sum(bool(set(t[:5]) & q["pos"]) for t, q in zip(top, qs))
    doc5 = sum(any(data.chunks[c]["doc"] == q["document_id"] for c in t[:5]) for t, q in zip(top, qs))
    res["recall@1"] = 100 * hits1 / len(qs)
    res["recall@5"] = 100 * hits5 / len(qs)
    res["doc_recall@5"] = 100 * doc5 / len(qs)
    retrieved = [t[:k] for t in top]
    with_gold = []
    for t, q in zip(retrieved, qs):
        t = list(t)
        if not set(t) & q["pos"]:
            t[-1] = q["gold"]
        with_gold.append(t)
    for mode in modes:
        preds = []
        for s in range(0, len(qs), bs):
            idx = list(range(s, min(s + bs, len(qs))))
            if mode in ("cached", "cached-retrieved"):
                P = with_gold if mode == "cached" else retrieved
                mem, mask = build_memory([[q_enc[i]] + [c_enc[c] for c in P[i]] for i in idx])
            elif mode == "fid":
                parts = []
                for i in idx:
                    enc, _ = encode_padded(model, [data.fid_ids(qs[i], c) for c in with_gold[i]])
                    parts.append(enc)
                mem, mask = build_memory(parts)
            else:
                ids, mask = pad_batch([data.concat_ids(qs[i], with_gold[i]) for i in idx])
                mem = model.encode(ids, mask)
            out = model.greedy(mem, mask, max_new_tokens=MAX_NEW_TOKENS)
            preds.extend(spm.decode([o[1:].tolist() for o in out]))
        em, f1 = score(preds, qs)
        res[f"{mode}_em"], res[f"{mode}_f1"] = em, f1
        res[f"{mode}_examples"] = [(q["question"], q["answers"][0], p) for q, p in zip(qs[:3], preds[:3])]
    res["eval_seconds"] = time.time() - t0
    model.train()
    return res


# ---------------------------------------------------------------- export
def init_weights(model, cfg):
    """Hugging Face T5 initialisation (factor 1.0)."""
    d, dkv, h, ff = cfg["d_model"], cfg["d_kv"], cfg["num_heads"], cfg["d_ff"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.fill_(1.0)
            elif name == "shared.weight":
                p.normal_(0, 1.0)
            elif name == "lm_head.weight":
                p.normal_(0, d ** -0.5)
            elif name.endswith(".q.weight"):
                p.normal_(0, (d * dkv) ** -0.5)
            elif name.endswith(".k.weight") or name.endswith(".v.weight"):
                p.normal_(0, d ** -0.5)
            elif name.endswith(".o.weight"):
                p.normal_(0, (h * dkv) ** -0.5)
            elif name.endswith("wi_0.weight") or name.endswith("wi_1.weight") or name.endswith(".wi.weight"):
                p.normal_(0, d ** -0.5)
            elif name.endswith("wo.weight"):
                p.normal_(0, ff ** -0.5)
            elif name.endswith("relative_attention_bias.weight"):
                p.normal_(0, d ** -0.5)
            else:
                raise KeyError(name)


def export_model(model, cfg, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    tmp = os.path.join(out_dir, "model.safetensors.tmp")
    save_safetensors(tmp, {k: v.float() for k, v in model.state_dict().items()}, {"format": "pt"})
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))


@torch.no_grad()
def export_reference(model, data, out_dir):
    """Inputs and this code's outputs for the C++ parity test (cached-mode memory)."""
    model.eval()
    q = data.dev_q[0]
    c_enc, c_emb = encode_padded(model, [c["ids"] for c in data.chunks], bs=64)
    _, q_emb = encode_padded(model, [q["ids"]])
    top = (q_emb @ c_emb.t())[0].topk(3).indices.tolist()
    if q["gold"] not in top:
        top[-1] = q["gold"]
    t = {"input_ids": torch.tensor([q["ids"] + [EOS]])}
    for i, ci in enumerate(top):
        t[f"passage_ids.p{i}"] = torch.tensor([data.chunks[ci]["ids"] + [EOS]])
    enc_q = model.encode(t["input_ids"])
    t["encoder_last_hidden_state"] = enc_q
    mem = torch.cat([enc_q] + [model.encode(t[f"passage_ids.p{i}"]) for i in range(3)], 1)
    t["decoder_input_ids"] = torch.tensor([[DECODER_START] + q["ans_ids"][:-1]])
    t["logits"] = model.decode(t["decoder_input_ids"], mem)
    t["greedy_ids"] = model.greedy(mem, max_new_tokens=MAX_NEW_TOKENS)
    save_safetensors(os.path.join(out_dir, "reference.safetensors"), t,
                     {"format": "pt", "question": q["question"],
                      "passages": json.dumps([data.chunks[ci]["doc"] + "#" + str(data.chunks[ci]["pos"]) for ci in top]),
                      "memory": "cached: [input_ids ; p0 ; p1 ; p2] encoder outputs concatenated on time",
                      "greedy": f"max_new_tokens={MAX_NEW_TOKENS}, column 0 = decoder start 0"})
    model.train()


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=45.0, help="training wall-time budget (then eval + export)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = time only)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--fid-examples", type=int, default=4)
    ap.add_argument("--concat-examples", type=int, default=4)
    ap.add_argument("--k-min", type=int, default=3)
    ap.add_argument("--k-max", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--nce-weight", type=float, default=0.5)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--ckpt-minutes", type=float, default=6.0)
    ap.add_argument("--probe", type=int, default=64, help="dev questions for the periodic quick eval")
    ap.add_argument("--sample-share", type=float, default=0.25,
                    help="share of steps drawn from the sample corpus's train split; the rest from synthetic shards")
    ap.add_argument("--shard-steps", type=int, default=30, help="steps per freshly generated synthetic shard")
    ap.add_argument("--curriculum-steps", type=int, default=0,
                    help="until this step, 1-2 passages per question (gold + at most one distractor)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny config, writes to /tmp/kvrag-demo-smoke")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--init-from", default="",
                    help="start from this model folder's weights (fresh optimizer and schedule)")
    ap.add_argument("--export-reference", action="store_true",
                    help="no training: load --out/model.safetensors and write --out/reference.safetensors")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t_start = time.time()

    spm = SPM(os.path.join(OUT, "spiece.model"))
    cfg = dict(CONFIG)
    cfg["vocab_size"] = spm.vocab_size
    if args.smoke:
        cfg.update(d_model=64, d_kv=16, num_heads=4, d_ff=128, num_layers=2, num_decoder_layers=2)
        args.out = "/tmp/kvrag-demo-smoke"
        global CKPT
        CKPT = "/tmp/kvrag-demo-smoke-ckpt/last.pt"
    cfg["dropout_rate"] = args.dropout
    data = Data(spm)
    ntoks = [c["ntok"] for c in data.chunks]
    log(f"data: {len(data.docs)} docs, {len(data.chunks)} chunks (tokens/chunk text min {min(ntoks)} "
        f"mean {sum(ntoks) / len(ntoks):.1f} max {max(ntoks)}), train q {len(data.train_q)} "
        f"({len(data.train_docs)} docs), dev q {len(data.dev_q)} ({len(data.dev_docs)} docs), "
        f"vocab {spm.vocab_size}; prep {time.time() - t_start:.1f}s")
    bad = data.verify_prompt_concatenation(random.Random(0))
    log(f"prompt concatenation check: {bad} mismatches")
    assert bad == 0

    model = T5(cfg, dropout=args.dropout)
    init_weights(model, cfg)
    if args.init_from:
        model.load_state_dict(load_safetensors(os.path.join(args.init_from, "model.safetensors")))
        log(f"initialised from {args.init_from}")
    if args.export_reference:
        # The committed model's run was cut off after its last periodic export, which writes
        # model.safetensors but not the reference; this recreates it from the weights alone.
        model.load_state_dict(load_safetensors(os.path.join(args.out, "model.safetensors")))
        export_reference(model, data, args.out)
        log(f"wrote {os.path.join(args.out, 'reference.safetensors')}")
        return
    nparam = sum(p.numel() for p in model.parameters())
    log(f"model: {nparam:,} parameters ({nparam * 4 / 1e6:.1f} MB F32); config {json.dumps({k: cfg[k] for k in ('d_model', 'd_kv', 'num_heads', 'd_ff', 'num_layers', 'num_decoder_layers', 'vocab_size')})}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "relative_attention_bias" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "relative_attention_bias" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    step, trained_s = 0, 0.0
    if args.resume and os.path.exists(CKPT):
        ck = torch.load(CKPT)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, trained_s = ck["step"], ck["trained_s"]
        rng.setstate(ck["rng"])
        torch.set_rng_state(ck["torch_rng"])
        log(f"resumed at step {step}, {trained_s / 60:.1f} min trained")
    budget = args.minutes * 60.0
    model.train()
    acc = collections.defaultdict(float)
    nacc = 0
    last_ckpt = time.time()
    seg_start, seg_trained = time.time(), trained_s
    probe_qs = random.Random(1).sample(data.dev_q, min(args.probe, len(data.dev_q)))
    shard = None
    while True:
        elapsed = seg_trained + (time.time() - seg_start)
        if elapsed >= budget or (args.max_steps and step >= args.max_steps):
            break
        frac = min(1.0, elapsed / budget)
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if step % args.shard_steps == 0 or shard is None:
            shard = synthetic_shard(spm, 1_000_000 + args.seed * 1000 + step // args.shard_steps)
        src = data if rng.random() < args.sample_share else shard
        k_range = (1, 2) if step < args.curriculum_steps else (args.k_min, args.k_max)
        loss, parts = train_step(model, src, rng, args, k_range)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        for k_, v in parts.items():
            acc[k_] += v
        acc["loss"] += loss.item()
        acc["gnorm"] += float(gn)
        nacc += 1
        if step % args.log_every == 0 or step == 1:
            el = seg_trained + (time.time() - seg_start)
            msg = " ".join(f"{k_} {v / nacc:.3f}" for k_, v in sorted(acc.items()))
            log(f"step {step} t {el / 60:.1f}m ({el / step:.2f}s/step) lr {lr:.2e} {msg}")
            acc.clear()
            nacc = 0
        if time.time() - last_ckpt > args.ckpt_minutes * 60:
            el = seg_trained + (time.time() - seg_start)
            os.makedirs(os.path.dirname(CKPT), exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "trained_s": el,
                        "rng": rng.getstate(), "torch_rng": torch.get_rng_state(), "config": cfg}, CKPT + ".tmp")
            os.replace(CKPT + ".tmp", CKPT)
            export_model(model, cfg, args.out)
            r = evaluate(model, data, spm, probe_qs, modes=("cached",))
            log(f"checkpoint step {step}: exported; probe dev ({len(probe_qs)} q) cached EM {r['cached_em']:.1f} "
                f"F1 {r['cached_f1']:.1f} recall@5 {r['recall@5']:.1f} ({r['eval_seconds']:.0f}s) {r['cached_examples']}")
            last_ckpt = time.time()
            seg_start, seg_trained = time.time(), el   # eval time does not count as training
    trained = seg_trained + (time.time() - seg_start)
    log(f"training done: {step} steps, {trained / 60:.1f} min of training")
    os.makedirs(os.path.dirname(CKPT), exist_ok=True)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "trained_s": trained,
                "rng": rng.getstate(), "torch_rng": torch.get_rng_state(), "config": cfg}, CKPT)
    model.eval()
    export_model(model, cfg, args.out)
    export_reference(model, data, args.out)
    log(f"exported to {args.out}")
    r = evaluate(model, data, spm, data.dev_q)
    log("DEV RESULTS (" + str(len(data.dev_q)) + " questions, documents unseen in training; "
        "k=4 chunks retrieved by the model's own embedding, gold chunk swapped in as 4th if missing, "
        "except cached-retrieved = pure top-4):")
    for key in ("recall@1", "recall@5", "doc_recall@5"):
        log(f"  {key}: {r[key]:.1f}")
    for mode in ("cached", "fid", "concat", "cached-retrieved"):
        log(f"  {mode}: EM {r[mode + '_em']:.1f} F1 {r[mode + '_f1']:.1f}  e.g. {r[mode + '_examples']}")
    log(f"  eval took {r['eval_seconds']:.0f}s")
    with open(os.path.join(os.path.dirname(CKPT), "dev_results.json"), "w") as f:
        json.dump({k_: v for k_, v in r.items() if not k_.endswith("_examples")} |
                  {"steps": step, "train_minutes": trained / 60, "parameters": nparam}, f, indent=2)
    log(f"total wall time {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    main()

"""A T5 v1.1-style encoder-decoder in plain PyTorch, with the math of Hugging Face
transformers' T5ForConditionalGeneration (4.33) and its parameter names, plus a safetensors
reader/writer (no third-party packages). Used by train.py, export.py and check_parity.py.

Math (what the C++ engine implements): RMS layer norm (no mean, no bias), no 1/sqrt(d_kv)
attention scaling, relative position bias from block 0 shared by all layers of a stack
(bidirectional buckets in the encoder, causal in the decoder), cross-attention without position
bias, gated-GELU (tanh) or ReLU FFN, pre-norm residual blocks, final layer norms, untied LM head
(or tied with the d_model**-0.5 rescale when tie_word_embeddings is true).
"""
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------- safetensors

_DT = {"F32": (torch.float32, 4), "I64": (torch.int64, 8), "F16": (torch.float16, 2),
       "BF16": (torch.bfloat16, 2), "I32": (torch.int32, 4)}
_DT_NAME = {v[0]: k for k, v in _DT.items()}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, _ = _DT[info["dtype"]]
        b, e = info["data_offsets"]
        buf = bytearray(data[base + b:base + e])
        t = torch.frombuffer(buf, dtype=dtype) if e > b else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def save_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> tensor (F32, F16, BF16, I32, I64). Entries ordered by dtype (I64 first) then name."""
    order = sorted(tensors, key=lambda k: (0 if tensors[k].dtype == torch.int64 else 1, k))
    header, blobs, off = {}, [], 0
    for name in order:
        t = tensors[name].detach().contiguous().cpu()
        a = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()  # numpy has no bf16
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DT_NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = metadata or {"format": "pt"}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for raw in blobs:
            f.write(raw)


# ----------------------------------------------------------------------------- model

def relative_position_bucket(rel, bidirectional, num_buckets, max_distance):
    ret = torch.zeros_like(rel)
    n = num_buckets
    if bidirectional:
        n //= 2
        ret = ret + (rel > 0).long() * n
        rel = rel.abs()
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = n // 2
    is_small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (n - max_exact)).long()
    large = torch.min(large, torch.full_like(large, n - 1))
    return ret + torch.where(is_small, rel, large)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class LayerNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


class Attention(nn.Module):
    def __init__(self, cfg, has_bias, bidirectional):
        super().__init__()
        d, inner = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"]
        self.h, self.dk = cfg["num_heads"], cfg["d_kv"]
        self.q = nn.Linear(d, inner, bias=False)
        self.k = nn.Linear(d, inner, bias=False)
        self.v = nn.Linear(d, inner, bias=False)
        self.o = nn.Linear(inner, d, bias=False)
        self.bidirectional = bidirectional
        self.kept = None  # a list while kept_cross_attention is active: the weights of each call
        self.nb = cfg["relative_attention_num_buckets"]
        self.md = cfg["relative_attention_max_distance"]
        if has_bias:
            self.relative_attention_bias = nn.Embedding(self.nb, self.h)

    def compute_bias(self, qlen, klen):
        ctx = torch.arange(qlen, dtype=torch.long)[:, None]
        mem = torch.arange(klen, dtype=torch.long)[None, :]
        buckets = relative_position_bucket(mem - ctx, self.bidirectional, self.nb, self.md)
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)  # [1,h,q,k]

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.dk).transpose(1, 2)

    def forward(self, x, kv=None, bias=None, dropout=0.0):
        """bias: additive [b or 1, h or 1, q, k] (position bias + mask)."""
        kv = x if kv is None else kv
        q, k, v = self.split(self.q(x)), self.split(self.k(kv)), self.split(self.v(kv))
        scores = torch.matmul(q, k.transpose(-1, -2))
        if bias is not None:
            scores = scores + bias
        w = F.softmax(scores.float(), dim=-1).type_as(scores)
        if self.kept is not None:
            self.kept.append(w)
        if dropout > 0:
            w = F.dropout(w, dropout, self.training)
        o = torch.matmul(w, v).transpose(1, 2).reshape(x.shape[0], x.shape[1], self.h * self.dk)
        return self.o(o)


class FFN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, ff = cfg["d_model"], cfg["d_ff"]
        self.gated = cfg.get("is_gated_act", cfg.get("feed_forward_proj") == "gated-gelu")
        if self.gated:
            self.wi_0 = nn.Linear(d, ff, bias=False)
            self.wi_1 = nn.Linear(d, ff, bias=False)
        else:
            self.wi = nn.Linear(d, ff, bias=False)
        self.wo = nn.Linear(ff, d, bias=False)

    def forward(self, x, dropout=0.0):
        h = gelu_tanh(self.wi_0(x)) * self.wi_1(x) if self.gated else F.relu(self.wi(x))
        if dropout > 0:
            h = F.dropout(h, dropout, self.training)
        return self.wo(h)


class SubLayer(nn.Module):
    """One `layer.{j}` entry: the op plus its layer_norm (HF names)."""

    def __init__(self, cfg, kind, has_bias=False, bidirectional=True):
        super().__init__()
        if kind == "self":
            self.SelfAttention = Attention(cfg, has_bias, bidirectional)
        elif kind == "cross":
            self.EncDecAttention = Attention(cfg, False, True)
        else:
            self.DenseReluDense = FFN(cfg)
        self.layer_norm = LayerNorm(cfg["d_model"], cfg["layer_norm_epsilon"])


class Block(nn.Module):
    def __init__(self, cfg, is_decoder, has_bias):
        super().__init__()
        layers = [SubLayer(cfg, "self", has_bias, not is_decoder)]
        if is_decoder:
            layers.append(SubLayer(cfg, "cross"))
        layers.append(SubLayer(cfg, "ffn"))
        self.layer = nn.ModuleList(layers)
        self.is_decoder = is_decoder

    def forward(self, h, self_bias, mem=None, cross_bias=None, p=0.0):
        dr = (lambda t: F.dropout(t, p, self.training)) if p > 0 else (lambda t: t)
        l0 = self.layer[0]
        h = h + dr(l0.SelfAttention(l0.layer_norm(h), bias=self_bias, dropout=p))
        if self.is_decoder:
            l1 = self.layer[1]
            h = h + dr(l1.EncDecAttention(l1.layer_norm(h), kv=mem, bias=cross_bias, dropout=p))
        lf = self.layer[-1]
        h = h + dr(lf.DenseReluDense(lf.layer_norm(h), dropout=p))
        return h


class Stack(nn.Module):
    def __init__(self, cfg, is_decoder, n_layers):
        super().__init__()
        self.block = nn.ModuleList([Block(cfg, is_decoder, i == 0) for i in range(n_layers)])
        self.final_layer_norm = LayerNorm(cfg["d_model"], cfg["layer_norm_epsilon"])
        self.is_decoder = is_decoder


class kept_cross_attention:
    """`with kept_cross_attention(model) as kept:` kept[layer] lists that decoder layer's
    cross-attention weights [b, h, u, T] of each forward pass inside the block."""

    def __init__(self, model):
        self.mods = [blk.layer[1].EncDecAttention for blk in model.decoder.block]

    def __enter__(self):
        for m in self.mods:
            m.kept = []
        return [m.kept for m in self.mods]

    def __exit__(self, *exc):
        for m in self.mods:
            m.kept = None


NEG = torch.finfo(torch.float32).min


class T5(nn.Module):
    def __init__(self, cfg, dropout=0.0):
        super().__init__()
        self.cfg = cfg
        self.p = dropout
        self.tied = cfg.get("tie_word_embeddings", True)
        self.shared = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.encoder = Stack(cfg, False, cfg["num_layers"])
        self.decoder = Stack(cfg, True, cfg.get("num_decoder_layers") or cfg["num_layers"])
        if not self.tied:
            self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)

    def _dr(self, x):
        return F.dropout(x, self.p, self.training) if self.p > 0 else x

    def encode(self, ids, mask=None):
        """ids [b, t] int64, mask [b, t] (1 = token). Returns [b, t, d] after final layer norm."""
        b, t = ids.shape
        h = self._dr(self.shared(ids))
        bias = self.encoder.block[0].layer[0].SelfAttention.compute_bias(t, t)
        if mask is not None:
            bias = bias + (1.0 - mask[:, None, None, :].float()) * NEG
        for blk in self.encoder.block:
            h = blk(h, bias, p=self.p)
        return self._dr(self.encoder.final_layer_norm(h))

    def decode_hidden(self, dec_ids, mem, mem_mask=None):
        b, u = dec_ids.shape
        h = self._dr(self.shared(dec_ids))
        bias = self.decoder.block[0].layer[0].SelfAttention.compute_bias(u, u)
        causal = torch.tril(torch.ones(u, u))
        bias = bias + (1.0 - causal)[None, None] * NEG
        cross = None
        if mem_mask is not None:
            cross = (1.0 - mem_mask[:, None, None, :].float()) * NEG
        for blk in self.decoder.block:
            h = blk(h, bias, mem, cross, p=self.p)
        return self._dr(self.decoder.final_layer_norm(h))

    def logits(self, hidden):
        if self.tied:
            return torch.matmul(hidden * (self.cfg["d_model"] ** -0.5), self.shared.weight.t())
        return self.lm_head(hidden)

    def decode(self, dec_ids, mem, mem_mask=None):
        return self.logits(self.decode_hidden(dec_ids, mem, mem_mask))

    @torch.no_grad()
    def greedy(self, mem, mem_mask=None, max_new_tokens=24, eos=1, start=0):
        """Greedy decoding of a batch (finished rows keep emitting pad 0), as HF generate."""
        b = mem.shape[0]
        ids = torch.full((b, 1), start, dtype=torch.long)
        done = torch.zeros(b, dtype=torch.bool)
        for _ in range(max_new_tokens):
            nxt = self.decode(ids, mem, mem_mask)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.zeros_like(nxt), nxt)
            ids = torch.cat([ids, nxt[:, None]], 1)
            done = done | (nxt == eos)
            if bool(done.all()):
                break
        return ids

    # --- Hugging Face state dict (names as save_pretrained writes them) -----------------
    def hf_state_dict(self):
        sd = {k: v for k, v in self.state_dict().items()}
        return sd

    def load_hf(self, tensors, strict=True):
        sd = dict(tensors)
        for alias in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
            if alias in sd:
                sd.setdefault("shared.weight", sd[alias])
                del sd[alias]
        if self.tied:
            sd.pop("lm_head.weight", None)
        missing, unexpected = self.load_state_dict(sd, strict=False)
        if strict and (missing or unexpected):
            raise KeyError(f"missing {missing} unexpected {unexpected}")


# ----------------------------------------------------------------------------- helpers for training

EOS = 1


def pad_batch(seqs, eos=True):
    """Token lists -> ids [b, t] and mask [b, t] (right-padded with PAD; eos appended if asked)."""
    seqs = [s + [EOS] if eos else s for s in seqs]
    t = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), t, dtype=torch.long)
    mask = torch.zeros(len(seqs), t, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask



def init_weights(model, cfg):
    """Hugging Face T5 initialisation (initializer_factor 1.0)."""
    d, dkv, h, ff = cfg["d_model"], cfg["d_kv"], cfg["num_heads"], cfg["d_ff"]
    std = {".q.weight": (d * dkv) ** -0.5, ".k.weight": d ** -0.5, ".v.weight": d ** -0.5,
           ".o.weight": (h * dkv) ** -0.5, "wi_0.weight": d ** -0.5, "wi_1.weight": d ** -0.5,
           ".wi.weight": d ** -0.5, "wo.weight": ff ** -0.5, "relative_attention_bias.weight": d ** -0.5,
           "shared.weight": 1.0, "lm_head.weight": d ** -0.5}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.fill_(1.0)
                continue
            suffix = next((s for s in std if name.endswith(s)), None)
            if suffix is None:
                raise KeyError(name)
            p.normal_(0, std[suffix])


def encode_each(model, seqs, eos=True, batch=None):
    """Encode token lists one per row (each gets eos, padded batch).
    Returns ([n_i, d] valid rows per sequence, embeddings [len(seqs), d] L2-normalised mean over positions)."""
    outs, embs = [None] * len(seqs), [None] * len(seqs)
    batch = batch or len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))   # similar lengths pad less
    for s in range(0, len(order), batch):
        part = order[s:s + batch]
        ids, mask = pad_batch([seqs[i] for i in part], eos=eos)
        h = model.encode(ids, mask)
        m = mask.unsqueeze(-1).float()
        e = F.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        for j, i in enumerate(part):
            outs[i] = h[j, :int(mask[j].sum())]
            embs[i] = e[j]
    return outs, torch.stack(embs)


def join_memory(parts_per_example):
    """Per example a list of [n, d] encodings -> memory [b, T, d] (concatenated on time, padded) and mask [b, T]."""
    mems = [torch.cat(p, 0) for p in parts_per_example]
    t = max(m.shape[0] for m in mems)
    out = mems[0].new_zeros(len(mems), t, mems[0].shape[1])
    mask = torch.zeros(len(mems), t, dtype=torch.long)
    for i, m in enumerate(mems):
        out[i, :m.shape[0]] = m
        mask[i, :m.shape[0]] = 1
    return out, mask

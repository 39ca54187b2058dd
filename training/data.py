"""Training data for the demo reader: the corpus (sample split or freshly generated shards),
chunked and tokenized as the C++ pipeline does (`text.py`), and teacher-forcing batches."""
import collections
import json
import os

import torch

import make_corpus
from text import (CHUNK_PROMPT, CONCAT_PASSAGE, CONCAT_PROMPT, DECODER_START, EOS, FID_PROMPT, SAMPLE,
                  QUESTION_PROMPT, chunk_document, words_of)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Corpus:
    """Documents chunked and tokenized, with their questions. `train_q` are the questions training
    may use; `dev_q` (sample corpus only) are about documents training never sees."""

    def __init__(self, spm, docs, train_q, dev_q=()):
        self.spm = spm
        self.docs, self.train_q, self.dev_q = docs, list(train_q), list(dev_q)
        spm.encode([w for d in docs for w in words_of(d["text"])[0]])
        self.chunks, self.doc_chunks = [], {}
        for d in docs:
            self.doc_chunks[d["id"]] = []
            for pos, text in enumerate(chunk_document(spm, d["text"])):
                self.doc_chunks[d["id"]].append(len(self.chunks))
                self.chunks.append({"doc": d["id"], "title": d["title"], "text": text, "pos": pos,
                                    "topic": d["metadata"]["topic"]})
        prompts = spm.encode([CHUNK_PROMPT.format(title=c["title"], text=c["text"]) for c in self.chunks])
        passages = spm.encode([CONCAT_PASSAGE.format(title=c["title"], text=c["text"]) for c in self.chunks])
        texts = spm.encode([c["text"] for c in self.chunks])
        for c, p, cp, t in zip(self.chunks, prompts, passages, texts):
            c["ids"], c["concat_ids"], c["text_ids"] = p, cp, t
        self.context_ids = spm.encode(["context:"])[0]
        # A question whose answer the chunker split across two chunks has no gold chunk; the
        # Python side leaves it out (kvrag eval still counts it).
        self.train_q = self._answerable(self.train_q)
        self.dev_q = self._answerable(self.dev_q)
        self.train_docs = sorted({q["document_id"] for q in self.train_q})
        self.q_by_doc = collections.defaultdict(list)
        for q in self.train_q:
            self.q_by_doc[q["document_id"]].append(q)
        train_set = set(self.train_docs)
        self.train_chunks = [i for i, c in enumerate(self.chunks) if c["doc"] in train_set]
        self.topic_chunks = collections.defaultdict(list)
        for i in self.train_chunks:
            self.topic_chunks[self.chunks[i]["topic"]].append(i)

    def _answerable(self, qs):
        qids = self.spm.encode([QUESTION_PROMPT.format(question=q["question"]) for q in qs])
        aids = self.spm.encode([q["answers"][0] for q in qs])
        out = []
        for q, a, b in zip(qs, qids, aids):
            pos = [i for i in self.doc_chunks[q["document_id"]]
                   if any(ans in self.chunks[i]["text"] for ans in q["answers"])]
            if pos:
                out.append({**q, "ids": a, "ans_ids": b + [EOS], "pos": set(pos), "gold": pos[0]})
        return out

    def fid_ids(self, q, ci):
        return q["ids"] + self.chunks[ci]["ids"]

    def concat_ids(self, q, cis):
        out = q["ids"] + self.context_ids
        for ci in cis:
            out = out + self.chunks[ci]["concat_ids"]
        return out

    def verify_prompt_concatenation(self, rng, n=30):
        """fid/concat prompts are built from token pieces; count those that differ from encoding the string."""
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


def sample_corpus(spm):
    return Corpus(spm, read_jsonl(os.path.join(SAMPLE, "corpus.jsonl")),
                  read_jsonl(os.path.join(SAMPLE, "questions-train.jsonl")),
                  read_jsonl(os.path.join(SAMPLE, "questions-dev.jsonl")))


def synthetic_shard(spm, seed):
    """A fresh fictional encyclopedia from the sample corpus's generator with another seed: 300
    documents that never repeat, with every question phrasing, so that facts cannot be memorised."""
    _, docs, qas = make_corpus.build(seed)
    for d in docs:
        d["id"] = f"syn{seed}-" + d["id"]
    qs = [{"question": q, "answers": [ans], "document_id": f"syn{seed}-" + did}
          for did, qa in qas for phrasings, ans in qa for q in phrasings]
    return Corpus(spm, docs, qs)


def decoder_io(targets, prefixes=None):
    """Teacher forcing. targets: token lists to score; prefixes: optional token lists fed to the
    decoder before them without loss. Returns decoder input ids [b, u] and labels [b, u] (-100 = no loss)."""
    prefixes = prefixes or [[] for _ in targets]
    u = max(len(p) + len(t) for p, t in zip(prefixes, targets))
    dec_in = torch.zeros(len(targets), u, dtype=torch.long)
    labels = torch.full((len(targets), u), -100, dtype=torch.long)
    for i, (p, t) in enumerate(zip(prefixes, targets)):
        seq = p + t
        dec_in[i, 0] = DECODER_START
        dec_in[i, 1:len(seq)] = torch.tensor(seq[:-1])
        labels[i, len(p):len(seq)] = torch.tensor(t)
    return dec_in, labels

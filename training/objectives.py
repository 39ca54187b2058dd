"""The training objectives of the demo reader.

copy_loss  stage 1 and throughout: the decoder continues a span of a chunk it reads through
           cross-attention. The chunk (its words shuffled) is encoded alone, as chunks are
           cached; the decoder is given the span's first tokens as a prefix without loss and must
           write the next ones. Every target token is a copy, and finding the prefix in the
           memory and stepping to the next position is the mechanism extractive answers need.
qa_loss    stage 2: the toolkit's real task. Cached mode (question encoded alone ++ k chunks
           encoded alone, the gold chunk at a random position among the chunks the model's own
           retrieval ranks highest, or among a hard negative and random others) on every
           example, fid and concat on a few, plus an InfoNCE retrieval loss between question and
           gold-chunk embeddings.
title_loss (inside qa_loss, --title-weight) the same memory with the question under another
           prompt, and the gold chunk's title as the target: the binding of the question's entity
           to its own chunk, which the answers at k > 1 lack (most wrong answers copy the same
           fact of another document among the k), trained directly as a copy of the title.
retrieval_loss  the InfoNCE part alone, trained beside copy_loss in stage 1 so that every
           checkpoint retrieves.
Each returns (loss tensor, dict of floats for the log).
"""
import collections

import torch
import torch.nn.functional as F

from data import decoder_io
from text import CHUNK_PROMPT, EOS
from t5_model import encode_each, join_memory, pad_batch


# Training only: the C++ pipeline never sees this prompt; it tells the decoder to name the passage
# that answers instead of answering.
WHICH_PASSAGE_PROMPT = "which passage: {question}"


def answer_ce(model, mem, mask, targets, prefixes=None):
    """Teacher-forced cross-entropy summed over target tokens; returns (sum, token count)."""
    dec_in, labels = decoder_io(targets, prefixes)
    logits = model.decode(dec_in, mem, mask)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100,
                         reduction="sum")
    return ce, int((labels != -100).sum())


def copy_spans(rng, texts, prefix_tokens=(2, 4), span_tokens=(4, 24)):
    """For each token list a (prefix, continuation) pair at a random place."""
    out = []
    for text in texts:
        p = min(rng.randint(*prefix_tokens), len(text) - 1)
        n = max(1, min(rng.randint(*span_tokens), len(text) - p))
        start = rng.randint(0, len(text) - p - n)
        out.append((text[start:start + p], text[start + p:start + p + n]))
    return out


def shuffled_chunks(rng, corpus, chunk_ids):
    """Each chunk with its words in random order: (prompt ids, text ids). In running text the
    decoder could continue a span from its own language model (templated sentences are
    predictable); in shuffled words only reading the memory tells what comes next."""
    prompts, texts = [], []
    for ci in chunk_ids:
        c = corpus.chunks[ci]
        words = c["text"].split()
        rng.shuffle(words)
        texts.append(" ".join(words))
        prompts.append(CHUNK_PROMPT.format(title=c["title"], text=texts[-1]))
    return corpus.spm.encode(prompts), corpus.spm.encode(texts)


def previous_token_loss(model, hidden, ids, mask):
    """Cross-entropy of reading each position's previous token from the encoder output through the
    LM head. Copying needs every memory position to carry its predecessor (the decoder finds the
    token it just wrote there and reads the next one); supervising that half directly breaks the
    chicken-and-egg plateau where neither half helps the loss until both exist."""
    logits = model.logits(hidden[:, 1:])
    labels = ids[:, :-1].masked_fill(mask[:, 1:] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def copy_loss(model, corpus, rng, batch, k_max=1, prev_weight=0.0):
    """Continue a span of one chunk (words shuffled); memory = that chunk plus up to k_max - 1 others."""
    pool = rng.sample(corpus.train_chunks, batch)
    prompts, texts = shuffled_chunks(rng, corpus, pool)
    ids, mask = pad_batch(prompts)
    hidden = model.encode(ids, mask)
    enc = [hidden[i, :int(mask[i].sum())] for i in range(batch)]
    parts = []
    for i in range(batch):
        k = rng.randint(1, k_max)
        others = [j for j in rng.sample(range(batch), min(batch, k + 1)) if j != i][:k - 1]
        others.insert(rng.randint(0, len(others)), i)
        parts.append([enc[j] for j in others])
    mem, mem_mask = join_memory(parts)
    spans = copy_spans(rng, texts)
    ce, n = answer_ce(model, mem, mem_mask, [c for _, c in spans], [p for p, _ in spans])
    log = {"copy": ce.item() / n}
    loss = ce / n
    if prev_weight:
        prev = previous_token_loss(model, hidden, ids, mask)
        log["prev_token"] = prev.item()
        loss = loss + prev_weight * prev
    return loss, log


def _hard_negative(rng, corpus, q):
    """Half the time another chunk of the same document, otherwise a chunk of the same topic."""
    same = [i for i in corpus.doc_chunks[q["document_id"]] if i not in q["pos"]]
    if same and rng.random() < 0.5:
        return rng.choice(same)
    topic = corpus.chunks[q["gold"]]["topic"]
    while True:
        h = rng.choice(corpus.topic_chunks[topic])
        if corpus.chunks[h]["doc"] != q["document_id"]:
            return h


@torch.no_grad()
def _chunk_embeddings(model, corpus, step, refresh_steps):
    """Embeddings of the corpus's train chunks, recomputed when older than refresh_steps (a
    shard lives shorter than that, so each shard is embedded once)."""
    if getattr(corpus, "emb_step", None) is None or step - corpus.emb_step >= refresh_steps:
        _, emb = encode_each(model, [corpus.chunks[ci]["ids"] for ci in corpus.train_chunks], batch=64)
        corpus.chunk_emb, corpus.emb_step = emb, step
    return corpus.chunk_emb


@torch.no_grad()
def _retrieved_negatives(model, corpus, qs, n, step, refresh_steps):
    """Per question the n chunks the model itself ranks highest that do not hold the answer: at
    question time the reader reads the retriever's top k, whose other chunks are the nearest
    neighbours of the gold one (the same relation in other documents of the topic, the same
    document's other chunks), not the random distractors of a batch."""
    chunk_emb = _chunk_embeddings(model, corpus, step, refresh_steps)
    _, q_emb = encode_each(model, [q["ids"] for q in qs])
    order = (q_emb @ chunk_emb.t()).argsort(dim=1, descending=True)
    out = []
    for q, row in zip(qs, order.tolist()):
        ranked = (corpus.train_chunks[j] for j in row)
        out.append([ci for ci, _ in zip((ci for ci in ranked if ci not in q["pos"]), range(n))])
    return out


def _question_batch(rng, corpus, batch, negatives_of=None):
    """Questions of distinct train documents and the pool of chunks to encode: their gold chunks,
    then per question the chunks `negatives_of(questions)` gives it, or one hard negative.
    Returns (questions, pool, index of chunk id in pool, per question its negatives' pool positions)."""
    docs = rng.sample(corpus.train_docs, batch)
    qs = [rng.choice(corpus.q_by_doc[d]) for d in docs]
    pool, index = [], {}

    def add(ci):
        if ci not in index:
            index[ci] = len(pool)
            pool.append(ci)
        return index[ci]

    for q in qs:
        add(q["gold"])
    negatives = negatives_of(qs) if negatives_of else [[_hard_negative(rng, corpus, q)] for q in qs]
    return qs, pool, index, [[add(ci) for ci in neg] for neg in negatives]


def _passages(rng, qs, pool, index, negatives, k_range):
    """Per question k pool positions: the gold chunk at a random place among its negatives, the
    rest (if it has fewer than k - 1) other questions' chunks."""
    out = []
    for i, q in enumerate(qs):
        k = rng.randint(*k_range)
        chosen = negatives[i][:k - 1]
        if len(chosen) < k - 1:
            cand = [j for j in range(len(pool)) if pool[j] not in q["pos"] and j not in chosen]
            chosen = chosen + rng.sample(cand, k - 1 - len(chosen))
        chosen.insert(rng.randint(0, len(chosen)), index[q["gold"]])
        out.append(chosen)
    return out


def _nce(q_emb, c_emb, qs, index, temperature):
    sim = q_emb @ c_emb.t() / temperature
    gold = torch.tensor([index[q["gold"]] for q in qs])
    for i, q in enumerate(qs):
        for ci in q["pos"]:           # other answer-bearing chunks are not negatives
            if ci in index and ci != q["gold"]:
                sim[i, index[ci]] = -1e4
    return F.cross_entropy(sim, gold), (sim.argmax(1) == gold).float().mean().item()


def retrieval_loss(model, corpus, rng, args):
    """InfoNCE alone (stage 1): question embeddings against their gold chunks and hard negatives."""
    qs, pool, index, _ = _question_batch(rng, corpus, args.batch)
    _, q_emb = encode_each(model, [q["ids"] for q in qs])
    _, c_emb = encode_each(model, [corpus.chunks[ci]["ids"] for ci in pool])
    loss, acc = _nce(q_emb, c_emb, qs, index, args.temperature)
    return args.nce_weight * loss, {"nce": loss.item(), "nce_acc": acc}


def qa_loss(model, corpus, rng, args, k_range, step):
    """Cached, fid and concat answer losses plus InfoNCE. On --mined-share of the steps the
    negatives are the model's own top-ranked wrong chunks (what retrieval will hand the reader)."""
    negatives_of = None
    if k_range[1] > 1 and rng.random() < args.mined_share:
        def negatives_of(qs):
            return _retrieved_negatives(model, corpus, qs, k_range[1] - 1, step, args.mined_refresh_steps)
    qs, pool, index, negatives = _question_batch(rng, corpus, args.batch, negatives_of)
    q_enc, q_emb = encode_each(model, [q["ids"] for q in qs])
    c_enc, c_emb = encode_each(model, [corpus.chunks[ci]["ids"] for ci in pool])
    loss_nce, nce_acc = _nce(q_emb, c_emb, qs, index, args.temperature)
    passages = _passages(rng, qs, pool, index, negatives, k_range)
    answers = [q["ans_ids"] for q in qs]
    log = {"nce": loss_nce.item(), "nce_acc": nce_acc}

    mem, mask = join_memory([[q_enc[i]] + [c_enc[j] for j in passages[i]] for i in range(len(qs))])
    ce, n = answer_ce(model, mem, mask, answers)
    log["cached"] = ce.item() / n
    total_ce, total_n = ce, n
    title = 0.0
    if args.title_weight:
        title = _title_loss(model, corpus, qs, passages, c_enc)
        log["title"] = title.item()

    fid = list(range(args.fid_examples))
    if fid:
        seqs, owner = [], []
        for i in fid:
            for j in passages[i]:
                seqs.append(corpus.fid_ids(qs[i], pool[j]))
                owner.append(i)
        enc, _ = encode_each(model, seqs)
        parts = collections.defaultdict(list)
        for e, i in zip(enc, owner):
            parts[i].append(e)
        mem, mask = join_memory([parts[i] for i in fid])
        ce, n = answer_ce(model, mem, mask, [answers[i] for i in fid])
        log["fid"] = ce.item() / n
        total_ce, total_n = total_ce + ce, total_n + n

    concat = list(range(args.fid_examples, args.fid_examples + args.concat_examples))
    if concat:
        ids, mask = pad_batch([corpus.concat_ids(qs[i], [pool[j] for j in passages[i]]) for i in concat])
        ce, n = answer_ce(model, model.encode(ids, mask), mask, [answers[i] for i in concat])
        log["concat"] = ce.item() / n
        total_ce, total_n = total_ce + ce, total_n + n

    return total_ce / total_n + args.nce_weight * loss_nce + args.title_weight * title, log


def _title_loss(model, corpus, qs, passages, c_enc):
    """Per token cross-entropy of writing the gold chunk's title from [question under
    WHICH_PASSAGE_PROMPT ; the same k chunks]."""
    ids = corpus.spm.encode([WHICH_PASSAGE_PROMPT.format(question=q["question"]) for q in qs])
    t_enc, _ = encode_each(model, ids)
    mem, mask = join_memory([[t_enc[i]] + [c_enc[j] for j in passages[i]] for i in range(len(qs))])
    titles = corpus.spm.encode([corpus.chunks[q["gold"]]["title"] for q in qs])
    ce, n = answer_ce(model, mem, mask, [t + [EOS] for t in titles])
    return ce / n

#!/usr/bin/python3
"""Train the kvrag demo reader: a small T5 v1.1 (gated-GELU) that answers by copying from the
chunks it cross-attends to, and embeds questions and chunks for dense retrieval. CPU, one thread.

Stage 1 (steps < --copy-steps): copy_loss (continue a span of a chunk encoded alone, plus the
previous-token loss on the chunk encodings) and retrieval_loss (InfoNCE).
Stage 2: qa_loss (cached on every example, fid and concat on a few, InfoNCE) with k passages
rising from 1 to --k-max over --k-ramp-steps, plus copy_loss on a smaller batch.
Data: 25 % of steps (--sample-share) from the train split of data/sample, the rest from synthetic
shards (fresh 300-document encyclopedias, replaced every --shard-steps). Dev documents are never used.

Everything of a run lives in training/runs/NAME/: ckpt.pt (resumable: model, optimizer, step,
RNG states), train.log, curve.jsonl (one JSON line per probe). The model is exported to --out at
every probe and at the end.

Usage (see training/README.md):
  nice -n 19 /usr/bin/python3 training/train.py --run demo --steps 12000 [--resume]
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
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import sample_corpus, synthetic_shard  # noqa: E402
from text import ROOT, SPM  # noqa: E402
from evaluate import copy_accuracy, evaluate, passage_use  # noqa: E402
from export import OUT, export_model, export_reference  # noqa: E402
from objectives import copy_loss, qa_loss, retrieval_loss  # noqa: E402
from t5_model import T5, init_weights, load_safetensors  # noqa: E402

RUNS = os.path.join(ROOT, "training", "runs")


def model_config(args, vocab_size):
    """The exported config.json: Hugging Face's T5 keys, and kvrag_retrieval_temperature, the
    InfoNCE temperature of the model's own embeddings, which kvrag's passage prior reads (absent
    for args without one, such as the README's random T5-base shape: untrained embeddings)."""
    cfg = {
        "architectures": ["T5ForConditionalGeneration"],
        "d_ff": args.d_ff, "d_kv": args.d_kv, "d_model": args.d_model, "decoder_start_token_id": 0,
        "dense_act_fn": "gelu_new", "dropout_rate": 0.0, "eos_token_id": 1,
        "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": True,
        "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5",
        "num_decoder_layers": args.layers, "num_heads": args.heads, "num_layers": args.layers,
        "pad_token_id": 0, "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
        "tie_word_embeddings": args.tied, "torch_dtype": "float32", "use_cache": True,
        "vocab_size": vocab_size,
    }
    if getattr(args, "temperature", None):
        cfg["kvrag_retrieval_temperature"] = args.temperature
    return cfg


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="demo", help="run name: training/runs/NAME holds its checkpoint and logs")
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--copy-steps", type=int, default=1000, help="stage 1 length")
    ap.add_argument("--k-ramp-steps", type=int, default=3000, help="stage 2: k rises from 1 to --k-max over these")
    ap.add_argument("--k-max", type=int, default=5)
    ap.add_argument("--k-min", type=int, default=1,
                    help="least passages per question once the ramp allows it (default: half of the most)")
    ap.add_argument("--batch", type=int, default=24, help="questions per step (stage 2)")
    ap.add_argument("--copy-batch", type=int, default=32, help="copy examples per step in stage 1")
    ap.add_argument("--copy-batch-qa", type=int, default=8, help="copy examples per step in stage 2")
    ap.add_argument("--prev-token-weight", type=float, default=1.0,
                    help="weight of the previous-token loss on chunk encodings (objectives.previous_token_loss)")
    ap.add_argument("--mined-share", type=float, default=0.75,
                    help="share of stage-2 steps whose negatives are the model's own top-ranked wrong chunks")
    ap.add_argument("--mined-refresh-steps", type=int, default=200,
                    help="re-embed the sample corpus's chunks for mining after this many steps")
    ap.add_argument("--title-weight", type=float, default=0.0,
                    help="weight of the which-passage loss (objectives._title_loss); 0: off")
    ap.add_argument("--attn-weight", type=float, default=0.0,
                    help="weight of the gold-attention loss (objectives.gold_attention_loss); 0: off")
    ap.add_argument("--fid-examples", type=int, default=4)
    ap.add_argument("--concat-examples", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    # Copying needs an encoder head that attends to the previous position, i.e. a relative-position
    # bias of several units; Adam moves each parameter by about lr per step, so at lr 1e-3 the
    # bias needs thousands of steps to get there, and the copy loss sits on a plateau meanwhile.
    ap.add_argument("--bias-lr-scale", type=float, default=20.0,
                    help="learning-rate multiplier of the relative position bias tables")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--nce-weight", type=float, default=0.5)
    ap.add_argument("--sample-share", type=float, default=0.25)
    ap.add_argument("--shard-steps", type=int, default=30)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--d-kv", type=int, default=32)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--d-ff", type=int, default=512)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--tied", action="store_true", help="tie input and output embeddings")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (results then differ in rounding)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is lent (rounding then differs)")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="stop cleanly (checkpoint, export) after this many wall minutes; 0: no limit")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--probe-every", type=int, default=250)
    ap.add_argument("--probe-questions", type=int, default=128)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", metavar="DIR",
                    help="start from the weights of an exported model folder (fresh optimizer; steps count from 0)")
    ap.add_argument("--out", default=OUT, help="model folder to export to")
    return ap.parse_args()


class Run:
    """A run's folder: log, learning curve and checkpoint."""

    def __init__(self, name):
        self.dir = os.path.join(RUNS, name)
        os.makedirs(self.dir, exist_ok=True)
        self.ckpt = os.path.join(self.dir, "ckpt.pt")
        self._log = open(os.path.join(self.dir, "train.log"), "a")

    def log(self, *parts):
        line = time.strftime("%H:%M:%S ") + " ".join(str(p) for p in parts)
        print(line, flush=True)
        self._log.write(line + "\n")
        self._log.flush()

    def curve(self, row):
        with open(os.path.join(self.dir, "curve.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")

    def save(self, state):
        torch.save(state, self.ckpt + ".tmp")
        os.replace(self.ckpt + ".tmp", self.ckpt)


def learning_rate(args, step):
    warm = min(1.0, (step + 1) / args.warmup)
    return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps))))


def k_range(args, step):
    """Passages per question: 1 at the start of stage 2, rising to k_max; the least follows at
    half, or at --k-min once the ramp reaches it."""
    frac = min(1.0, max(0, step - args.copy_steps) / max(1, args.k_ramp_steps))
    hi = 1 + round(frac * (args.k_max - 1))
    return max(1, hi // 2, min(args.k_min, hi)), hi


def probe(model, sample, spm, dev_chunks, probe_qs):
    """Learning-curve point on dev documents never trained on."""
    r = evaluate(model, sample, spm, probe_qs, ks=(5, 1), modes=("cached",))
    return {"copy_acc": copy_accuracy(model, sample, dev_chunks), **passage_use(model, sample, probe_qs),
            "cached_em@5": r["cached_em@5"], "cached_f1@5": r["cached_f1@5"], "cached_em@1": r["cached_em@1"],
            "recall@5": r["recall@5"], "examples": r["cached_examples@5"]}


def optimizer(model, args):
    """AdamW; the position-bias tables get --bias-lr-scale times the learning rate (see parse_args)."""
    groups = {"decay": [], "norm": [], "bias": []}
    for name, p in model.named_parameters():
        groups["bias" if "relative_attention_bias" in name else "decay" if p.dim() >= 2 else "norm"].append(p)
    return torch.optim.AdamW([{"params": groups["decay"], "weight_decay": args.weight_decay, "lr_scale": 1.0},
                              {"params": groups["norm"], "weight_decay": 0.0, "lr_scale": 1.0},
                              {"params": groups["bias"], "weight_decay": 0.0, "lr_scale": args.bias_lr_scale}],
                             lr=args.lr, betas=(0.9, 0.98), eps=1e-8)


def save_and_probe(run, args, model, opt, step, seconds, rng, cfg, sample, spm, dev_chunks, probe_qs):
    """Checkpoint, export, and a learning-curve point (minutes are CPU minutes of the process on
    cpu, wall minutes on a GPU)."""
    run.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": seconds,
              "rng": rng.getstate(), "torch_rng": torch.get_rng_state(), "config": cfg})
    export_model(model, cfg, args.out)
    t1 = time.time()
    row = {"step": step, f"{args.device}_minutes": round(seconds / 60, 2),
           **probe(model, sample, spm, dev_chunks, probe_qs)}
    run.curve(row)
    run.log(f"probe ({time.time() - t1:.0f}s): " + json.dumps(row))


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    if args.device != "cpu":
        torch.set_default_device(args.device)   # every tensor the objectives make lands there
    clock = time.process_time if args.device == "cpu" else time.time
    rng = random.Random(args.seed)
    run = Run(args.run)
    spm = SPM(os.path.join(OUT, "spiece.model"))
    cfg = model_config(args, spm.vocab_size)
    sample = sample_corpus(spm)
    assert sample.verify_prompt_concatenation(random.Random(0)) == 0
    dev_docs = {q["document_id"] for q in sample.dev_q}
    dev_chunks = [i for i, c in enumerate(sample.chunks) if c["doc"] in dev_docs]
    probe_qs = random.Random(1).sample(sample.dev_q, min(args.probe_questions, len(sample.dev_q)))

    model = T5(cfg)
    init_weights(model, cfg)
    opt = optimizer(model, args)
    step, seconds = 0, 0.0
    if args.init and not (args.resume and os.path.exists(run.ckpt)):
        model.load_hf(load_safetensors(os.path.join(args.init, "model.safetensors")))
        run.log(f"initialised from {args.init}")
    if args.resume and os.path.exists(run.ckpt):
        ck = torch.load(run.ckpt, map_location=args.device, weights_only=False)  # holds RNG states
        cfg = ck["config"]
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, seconds = ck["step"], ck["seconds"]
        rng.setstate(ck["rng"])
        torch.set_rng_state(ck["torch_rng"].cpu())
        run.log(f"resumed at step {step} ({seconds / 60:.1f} compute-min trained)")
    nparam = sum(p.numel() for p in model.parameters())
    run.log(f"run {args.run}: {nparam:,} parameters ({nparam * 4 / 1e6:.1f} MB f32); args {json.dumps(vars(args))}")

    acc, nacc, shard = collections.defaultdict(float), 0, None
    model.train()
    started = time.time()
    while step < args.steps:
        if args.max_minutes and time.time() - started > 60 * args.max_minutes:
            run.log(f"stopping at step {step}: --max-minutes {args.max_minutes} reached")
            save_and_probe(run, args, model, opt, step, seconds, rng, cfg, sample, spm, dev_chunks, probe_qs)
            return
        t0 = clock()
        lr = learning_rate(args, step)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        if shard is None or step % args.shard_steps == 0:
            shard = synthetic_shard(spm, 1_000_000 + args.seed * 1000 + step // args.shard_steps)
        corpus = sample if rng.random() < args.sample_share else shard
        if step < args.copy_steps:
            loss, parts = copy_loss(model, corpus, rng, args.copy_batch, prev_weight=args.prev_token_weight)
            r_loss, r_parts = retrieval_loss(model, corpus, rng, args)
            loss, parts = loss + r_loss, {**parts, **r_parts}
        else:
            loss, parts = qa_loss(model, corpus, rng, args, k_range(args, step), step)
            if args.copy_batch_qa:
                c_loss, c_parts = copy_loss(model, corpus, rng, args.copy_batch_qa, k_max=k_range(args, step)[1],
                                           prev_weight=args.prev_token_weight)
                loss, parts = loss + c_loss, {**parts, **c_parts}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        parts["gnorm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        opt.step()
        step += 1
        seconds += clock() - t0
        for key, v in parts.items():
            acc[key] += v
        nacc += 1
        if step % args.log_every == 0:
            run.log(f"step {step} {args.device} {seconds / 60:.1f}m ({seconds / step:.2f}s/step) lr {lr:.2e} k {k_range(args, step)} "
                    + " ".join(f"{key} {v / nacc:.3f}" for key, v in sorted(acc.items())))
            acc.clear()
            nacc = 0
        if step % args.probe_every == 0 or step == args.steps:
            save_and_probe(run, args, model, opt, step, seconds, rng, cfg, sample, spm, dev_chunks, probe_qs)
    export_reference(model, sample, args.out)
    r = evaluate(model, sample, spm, sample.dev_q, ks=(1, 5, 10))
    run.log("dev (all questions, k = 1, 5, 10, own embeddings): " + json.dumps(r))


if __name__ == "__main__":
    main()

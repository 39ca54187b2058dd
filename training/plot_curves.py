#!/usr/bin/python3
"""Plot learning curves (training/runs/NAME/curve.jsonl) for the model card: dev exact match,
exact-copy accuracy and the question-only vs question+gold answer loss, against the training step
(runs continued on another device share the step axis; their minutes do not compare).

Usage: /usr/bin/python3 training/plot_curves.py OUT.png RUN[@OFFSET] [RUN[@OFFSET] ...]
OFFSET shifts a run's steps: a run started with --init from another's weights counts from 0.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs")


def read_curve(run):
    with open(os.path.join(RUNS, run, "curve.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    out, runs = sys.argv[1], sys.argv[2:]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for spec in runs:
        run, _, offset = spec.partition("@")
        rows = read_curve(run)
        x = [r["step"] + int(offset or 0) for r in rows]
        axes[0].plot(x, [r["cached_em@5"] for r in rows], marker=".", label=f"{run}: cached EM, k=5")
        axes[0].plot(x, [r["cached_em@1"] for r in rows], linestyle="--", label=f"{run}: cached EM, k=1")
        axes[1].plot(x, [r["copy_acc"] for r in rows], marker=".", label=run)
        axes[2].plot(x, [r["q_only"] for r in rows], linestyle="--", label=f"{run}: question only")
        axes[2].plot(x, [r["q_gold"] for r in rows], marker=".", label=f"{run}: question + gold chunk")
    titles = ("dev exact match (128 questions, %)", "exact copy of 8 tokens, dev chunks (%)",
              "answer loss per token (nats)")
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Export the demo reader as a Hugging Face T5 folder, and the reference outputs that the C++
parity test (tests/test_t5_parity.cpp) checks the engine against.

Usage (re-create the reference from committed weights, no training):
  /usr/bin/python3 training/export.py [--out models/kvrag-demo]
The same weights as a PyTorch pickle, the format many T5 readers ship (the test of
scripts/convert_checkpoint.py starts from it); --fid-keys names them as FiD checkpoints do:
  /usr/bin/python3 training/export.py --pytorch-bin DIR [--fid-keys]
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import sample_corpus  # noqa: E402
from text import CHUNK_PROMPT, DECODER_START, EOS, ROOT, SPM  # noqa: E402
from evaluate import MAX_NEW_TOKENS  # noqa: E402
from t5_model import T5, encode_each, load_safetensors, save_safetensors  # noqa: E402

OUT = os.path.join(ROOT, "models", "kvrag-demo")


def export_model(model, cfg, out_dir):
    """config.json + model.safetensors (f32), written so that a reader never sees half a file."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    tmp = os.path.join(out_dir, "model.safetensors.tmp")
    save_safetensors(tmp, {k: v.float() for k, v in model.state_dict().items()}, {"format": "pt"})
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))


@torch.no_grad()
def export_reference(model, corpus, out_dir):
    """Inputs and this code's outputs for one dev question in cached mode over its top 3 chunks."""
    model.eval()
    q = corpus.dev_q[0]
    _, c_emb = encode_each(model, [c["ids"] for c in corpus.chunks], batch=64)
    _, q_emb = encode_each(model, [q["ids"]])
    top = (q_emb @ c_emb.t())[0].topk(3).indices.tolist()
    if q["gold"] not in top:
        top[-1] = q["gold"]
    t = {"input_ids": torch.tensor([q["ids"] + [EOS]])}
    for i, ci in enumerate(top):
        t[f"passage_ids.p{i}"] = torch.tensor([corpus.chunks[ci]["ids"] + [EOS]])
    enc_q = model.encode(t["input_ids"])
    t["encoder_last_hidden_state"] = enc_q
    mem = torch.cat([enc_q] + [model.encode(t[f"passage_ids.p{i}"]) for i in range(3)], 1)
    t["decoder_input_ids"] = torch.tensor([[DECODER_START] + q["ans_ids"][:-1]])
    t["logits"] = model.decode(t["decoder_input_ids"], mem)
    t["greedy_ids"] = model.greedy(mem, max_new_tokens=MAX_NEW_TOKENS)
    save_safetensors(os.path.join(out_dir, "reference.safetensors"), t,
                     {"format": "pt", "question": q["question"],
                      "passages": json.dumps([corpus.chunks[ci]["doc"] + "#" + str(corpus.chunks[ci]["pos"])
                                              for ci in top]),
                      "chunk_prompt": CHUNK_PROMPT,
                      "memory": "cached: [input_ids ; p0 ; p1 ; p2] encoder outputs concatenated on time",
                      "greedy": f"max_new_tokens={MAX_NEW_TOKENS}, column 0 = decoder start 0"})
    model.train()


def export_pytorch_bin(model, src_dir, dst_dir, fid_keys):
    """pytorch_model.bin + config.json + spiece.model. FiD wraps the encoder in a module of its
    own, so its checkpoints name the encoder's tensors "encoder.encoder.…"."""
    os.makedirs(dst_dir, exist_ok=True)
    state = model.state_dict()
    if fid_keys:
        state = {("encoder." + k if k.startswith("encoder.") else k): v for k, v in state.items()}
    torch.save(state, os.path.join(dst_dir, "pytorch_model.bin"))
    for name in ("config.json", "spiece.model"):
        shutil.copyfile(os.path.join(src_dir, name), os.path.join(dst_dir, name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT, help="the model folder")
    ap.add_argument("--pytorch-bin", metavar="DIR", help="write the weights as DIR/pytorch_model.bin instead")
    ap.add_argument("--fid-keys", action="store_true", help="with --pytorch-bin: FiD's tensor names")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(args.out, "config.json")) as f:
        cfg = json.load(f)
    model = T5(cfg)
    model.load_state_dict(load_safetensors(os.path.join(args.out, "model.safetensors")))
    if args.pytorch_bin:
        export_pytorch_bin(model, args.out, args.pytorch_bin, args.fid_keys)
        print(f"wrote {os.path.join(args.pytorch_bin, 'pytorch_model.bin')}")
        return
    export_reference(model, sample_corpus(SPM(os.path.join(args.out, "spiece.model"))), args.out)
    print(f"wrote {os.path.join(args.out, 'reference.safetensors')}")


if __name__ == "__main__":
    main()

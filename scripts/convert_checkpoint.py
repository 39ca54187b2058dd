#!/usr/bin/python3
"""Convert a T5 checkpoint saved as pytorch_model.bin (one file, or shards listed in
pytorch_model.bin.index.json) into a folder kvrag loads: model.safetensors beside a copy of
config.json and the tokenizer files. Needs only Debian's python3-torch.

  /usr/bin/python3 scripts/convert_checkpoint.py SRC_DIR OUT_DIR [--kvrag build/cli/kvrag]

- FiD checkpoints (facebookresearch/FiD) wrap the encoder, so their keys read
  "encoder.encoder.block…": the wrapper level is removed.
- Tensors keep their dtype (f32, f16, bf16); tensors that share storage (a tied LM head) are
  written once each, as safetensors has no aliases.
- The .bin is read with torch.load(weights_only=True): a checkpoint cannot run code.
- Checks: every written tensor is read back and compared bit for bit with the source, then
  `kvrag generate --ids 1` must load the folder and generate (skipped with --kvrag "").
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training"))
from t5_model import load_safetensors, save_safetensors  # noqa: E402

FID_ENCODER_PREFIX = "encoder.encoder."
# Files a T5 folder carries besides its weights; copied when present.
SIDE_FILES = ("config.json", "spiece.model", "generation_config.json", "tokenizer_config.json",
              "special_tokens_map.json", "tokenizer.json")
FLOAT_TYPES = (torch.float32, torch.float16, torch.bfloat16)


def fail(message):
    sys.exit(f"convert_checkpoint: {message}")


def weight_files(src):
    """The .bin files of SRC: the shards of the index file, or pytorch_model.bin."""
    index = os.path.join(src, "pytorch_model.bin.index.json")
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        return [os.path.join(src, s) for s in shards]
    single = os.path.join(src, "pytorch_model.bin")
    if not os.path.exists(single):
        fail(f"{src}: neither pytorch_model.bin nor pytorch_model.bin.index.json")
    return [single]


def read_state_dict(files):
    state = {}
    for path in files:
        try:
            part = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a pickle with code, or not a torch file
            fail(f"{path}: cannot read as a weights-only torch checkpoint ({e})")
        if not isinstance(part, dict):
            fail(f"{path}: holds a {type(part).__name__}, not a state dict")
        for name, tensor in part.items():
            if not isinstance(tensor, torch.Tensor):
                fail(f"{path}: entry '{name}' is a {type(tensor).__name__}, not a tensor")
            state[name] = tensor
    return state


def hf_names(state):
    """Keys as Hugging Face's T5ForConditionalGeneration names them."""
    out = {}
    for name, tensor in state.items():
        if name.startswith(FID_ENCODER_PREFIX):
            name = "encoder." + name[len(FID_ENCODER_PREFIX):]
        if name in out:
            fail(f"two tensors map to '{name}'")
        if tensor.dtype not in FLOAT_TYPES:
            fail(f"tensor '{name}' has dtype {tensor.dtype}; expected float32, float16 or bfloat16")
        out[name] = tensor.detach().clone().contiguous()  # clone: no shared storage
    return out


def check_round_trip(written, path):
    back = load_safetensors(path)
    if set(back) != set(written):
        fail(f"{path}: read back {len(back)} tensors, wrote {len(written)}")
    for name, tensor in written.items():
        if back[name].dtype != tensor.dtype or not torch.equal(back[name], tensor):
            fail(f"{path}: tensor '{name}' differs after reading it back")


def check_loads_in_kvrag(kvrag, out):
    run = subprocess.run([kvrag, "generate", "--model", out, "--ids", "1", "--max-new-tokens", "2"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"kvrag cannot load {out}: {run.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="folder with pytorch_model.bin and config.json")
    ap.add_argument("out", help="folder to write (created)")
    ap.add_argument("--kvrag", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "..", "build", "cli", "kvrag"),
                    help='the kvrag binary that must load the result ("" skips the check)')
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.src, "config.json")):
        fail(f"{args.src}: config.json is missing")
    tensors = hf_names(read_state_dict(weight_files(args.src)))
    os.makedirs(args.out, exist_ok=True)
    for name in SIDE_FILES:
        if os.path.exists(os.path.join(args.src, name)):
            shutil.copyfile(os.path.join(args.src, name), os.path.join(args.out, name))
    path = os.path.join(args.out, "model.safetensors")
    save_safetensors(path + ".tmp", tensors, {"format": "pt"})
    os.replace(path + ".tmp", path)
    check_round_trip(tensors, path)
    if args.kvrag:
        check_loads_in_kvrag(args.kvrag, args.out)
    print(f"{path}: {len(tensors)} tensors, {sum(t.numel() for t in tensors.values()):,} parameters")


if __name__ == "__main__":
    main()

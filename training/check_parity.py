#!/usr/bin/python3
"""Check that training/t5_model.py computes exactly what Hugging Face T5 computes.

Loads each fixture case of ../shared/fixtures/t5 (config.json + model.safetensors, parsed by our
own safetensors reader) into the training module and compares against expected.safetensors:
encoder states (valid rows), teacher-forced logits with the cross-attention mask, the FiD memory
logits, greedy ids, and the relative-position buckets. Tolerance: max|diff| <= 5e-5 * max|ref|.
If the demo model has been exported, also re-checks models/kvrag-demo/reference.safetensors.

Usage: /usr/bin/python3 training/check_parity.py [--fixtures DIR]
Exit status 0 when everything matches.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from t5_model import T5, load_safetensors, relative_position_bucket  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TOL = 5e-5
failures = []


def rel_err(got, ref, mask=None):
    if mask is not None:
        got, ref = got[mask], ref[mask]
    return ((got - ref).abs().max() / ref.abs().max()).item()


def report(name, err):
    ok = err <= TOL
    print(f"  {name:<34} rel err {err:.2e} {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(name)


def report_ids(name, got, ref):
    ok = got.shape == ref.shape and bool((got == ref).all())
    print(f"  {name:<34} {'identical' if ok else 'DIFFER'}")
    if not ok:
        print("    got", got.tolist(), "\n    ref", ref.tolist())
        failures.append(name)


def check_case(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    model = T5(cfg).eval()
    model.load_hf(load_safetensors(os.path.join(folder, "model.safetensors")))
    ex = load_safetensors(os.path.join(folder, "expected.safetensors"))
    print(os.path.basename(folder))
    with torch.no_grad():
        ids, mask = ex["input_ids"], ex["attention_mask"]
        enc = model.encode(ids, mask)
        report("encoder_last_hidden_state", rel_err(enc, ex["encoder_last_hidden_state"], mask.bool()))
        hid = model.decode_hidden(ex["decoder_input_ids"], ex["encoder_last_hidden_state"], mask)
        report("decoder_last_hidden_state", rel_err(hid, ex["decoder_last_hidden_state"]))
        report("logits", rel_err(model.logits(hid), ex["logits"]))
        report_ids("greedy_ids", model.greedy(enc, mask, max_new_tokens=12), ex["greedy_ids"])
        # FiD: passages encoded alone, concatenated along time.
        encs = [model.encode(ex[f"fid.input_ids.p{i}"]) for i in range(3)]
        for i, e in enumerate(encs):
            report(f"fid.encoder_last_hidden_state.p{i}", rel_err(e, ex[f"fid.encoder_last_hidden_state.p{i}"]))
        mem = torch.cat(encs, 1)
        report("fid.memory", rel_err(mem, ex["fid.memory"]))
        report("fid.logits", rel_err(model.decode(ex["fid.decoder_input_ids"], mem), ex["fid.logits"]))
        report_ids("fid.greedy_ids", model.greedy(mem, max_new_tokens=12), ex["fid.greedy_ids"])
        pm, pmask = ex["fid_padded.memory"], ex["fid_padded.memory_mask"]
        report("fid_padded.logits", rel_err(model.decode(ex["fid.decoder_input_ids"], pm, pmask), ex["fid_padded.logits"]))
        for l in range(len(model.decoder.block)):
            att = model.decoder.block[l].layer[1].EncDecAttention
            k = att.split(att.k(ex["encoder_last_hidden_state"][:1]))[0]
            report(f"cross_k.l{l}", rel_err(k, ex[f"cross_k.l{l}"]))
        rp = ex["rel_bucket.relative_position"]
        nb, md = cfg["relative_attention_num_buckets"], cfg["relative_attention_max_distance"]
        report_ids("rel_bucket.bidirectional", relative_position_bucket(rp, True, nb, md), ex["rel_bucket.bidirectional"])
        report_ids("rel_bucket.causal", relative_position_bucket(rp, False, nb, md), ex["rel_bucket.causal"])


def check_demo(folder):
    ref_path = os.path.join(folder, "reference.safetensors")
    if not os.path.exists(ref_path):
        print("(no models/kvrag-demo/reference.safetensors yet; demo check skipped)")
        return
    cfg = json.load(open(os.path.join(folder, "config.json")))
    model = T5(cfg).eval()
    model.load_hf(load_safetensors(os.path.join(folder, "model.safetensors")))
    ref = load_safetensors(ref_path)
    print("kvrag-demo reference.safetensors")
    with torch.no_grad():
        q = model.encode(ref["input_ids"])
        report("encoder_last_hidden_state", rel_err(q, ref["encoder_last_hidden_state"]))
        mem = torch.cat([q] + [model.encode(ref[f"passage_ids.p{i}"]) for i in range(3)], 1)
        report("logits", rel_err(model.decode(ref["decoder_input_ids"], mem), ref["logits"]))
        report_ids("greedy_ids", model.greedy(mem, max_new_tokens=24), ref["greedy_ids"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.environ.get(
        "KVRAG_T5_FIXTURES", os.path.join(ROOT, "..", "shared", "fixtures", "t5")))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for case in ("t5v11_gatedgelu_untied", "t5v1_relu_tied"):
        check_case(os.path.join(args.fixtures, case))
    check_demo(os.path.join(ROOT, "models", "kvrag-demo"))
    print("PARITY OK" if not failures else f"PARITY FAILED: {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

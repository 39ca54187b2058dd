#!/usr/bin/python3
"""A tiny random T5-encoder retriever in the sentence-transformers layout (GTR-T5 / sentence-T5),
and the embeddings this file's plain-PyTorch code computes for a few texts: the fixture of the
C++ test tests/test_sentence_embedder.cpp (`kvrag index --embedder DIR`).

Usage (deterministic: the same files on every run):
  /usr/bin/python3 training/make_embedder_fixture.py [--out tests/data/tiny-sentence-t5]

The folder, as sentence-transformers saves GTR-T5:
  modules.json                 0 Transformer at "", 1 Pooling at 1_Pooling, 2 Dense at 2_Dense,
                               3 Normalize at 3_Normalize (a module with no files)
  sentence_bert_config.json    max_seq_length (tokens, eos included)
  config.json, model.safetensors, spiece.model
                               the T5 encoder (HF T5EncoderModel names: shared.weight,
                               encoder.*), the demo model's tokenizer
  1_Pooling/config.json        pooling_mode_mean_tokens: true
  2_Dense/config.json          in_features, out_features, bias, activation Identity
  2_Dense/model.safetensors    linear.weight [out, in], linear.bias [out]
  reference.safetensors        not part of the layout: input_ids.<i> and embedding [texts, out],
                               the texts in its metadata ("texts", a JSON list)

The math, as sentence-transformers runs it: ids = SentencePiece(text) cut to max_seq_length - 1,
then eos (T5's tokenizer with truncation); the encoder over a padded batch with its attention mask;
the mean of the encoder output over the non-pad positions; Dense; L2 normalisation.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from text import EOS, ROOT, SPM  # noqa: E402
from t5_model import T5, init_weights, pad_batch, save_safetensors  # noqa: E402

OUT = os.path.join(ROOT, "tests", "data", "tiny-sentence-t5")
DEMO_SPM = os.path.join(ROOT, "models", "kvrag-demo", "spiece.model")
SEED = 20250113
MAX_SEQ_LENGTH = 16  # small, so that the long text below is cut
DENSE_OUT = 24       # differs from d_model: the index's dimension comes from the Dense layer

# The last one is longer than MAX_SEQ_LENGTH tokens.
TEXTS = [
    "The Altan is a river of the northern hills.",
    "Brenna is a harbour town on the eastern coast.",
    "Corvin Hale was a painter of the coastal school.",
    "violin strings",
    "Who founded Brenna?",
    "Otters live along its quieter stretches, and its valley was first mapped in 1802 by the "
    "surveyor Ilse Mardt, who walked from Mount Sorrel to Lake Vire.",
]


def encoder_config(vocab_size):
    return {
        "architectures": ["T5EncoderModel"],
        "d_ff": 64,
        "d_kv": 8,
        "d_model": 32,
        "dense_act_fn": "gelu_new",
        "dropout_rate": 0.0,
        "eos_token_id": 1,
        "feed_forward_proj": "gated-gelu",
        "initializer_factor": 1.0,
        "is_encoder_decoder": True,
        "is_gated_act": True,
        "layer_norm_epsilon": 1e-06,
        "model_type": "t5",
        "num_decoder_layers": 2,
        "num_heads": 4,
        "num_layers": 2,
        "pad_token_id": 0,
        "relative_attention_max_distance": 128,
        "relative_attention_num_buckets": 32,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "vocab_size": vocab_size,
    }


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def input_ids(spm, text):
    return spm.encode([text])[0][:MAX_SEQ_LENGTH - 1] + [EOS]


@torch.no_grad()
def embed(model, dense_w, dense_b, id_lists):
    ids, mask = pad_batch(id_lists, eos=False)
    h = model.encode(ids, mask)
    m = mask.unsqueeze(-1).float()
    pooled = (h * m).sum(1) / m.sum(1)
    return F.normalize(pooled @ dense_w.t() + dense_b, dim=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.manual_seed(SEED)
    spm = SPM(DEMO_SPM)
    cfg = encoder_config(spm.vocab_size)
    model = T5(cfg)
    init_weights(model, cfg)
    model.eval()
    d = cfg["d_model"]
    dense_w = torch.randn(DENSE_OUT, d) * d ** -0.5
    dense_b = torch.randn(DENSE_OUT) * 0.1

    out = args.out
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ])
    write_json(os.path.join(out, "sentence_bert_config.json"),
               {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    write_json(os.path.join(out, "config.json"), cfg)
    # What T5EncoderModel.save_pretrained keeps: the embedding and the encoder stack.
    encoder_state = {k: v.float() for k, v in model.state_dict().items()
                     if k == "shared.weight" or k.startswith("encoder.")}
    save_safetensors(os.path.join(out, "model.safetensors"), encoder_state, {"format": "pt"})
    shutil.copyfile(DEMO_SPM, os.path.join(out, "spiece.model"))
    write_json(os.path.join(out, "1_Pooling", "config.json"), {
        "word_embedding_dimension": d,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    write_json(os.path.join(out, "2_Dense", "config.json"), {
        "in_features": d, "out_features": DENSE_OUT, "bias": True,
        "activation_function": "torch.nn.modules.linear.Identity",
    })
    save_safetensors(os.path.join(out, "2_Dense", "model.safetensors"),
                     {"linear.weight": dense_w, "linear.bias": dense_b}, {"format": "pt"})

    ids = [input_ids(spm, t) for t in TEXTS]
    assert len(ids[-1]) == MAX_SEQ_LENGTH, "the long text must be cut"
    ref = {f"input_ids.{i}": torch.tensor(x, dtype=torch.int64) for i, x in enumerate(ids)}
    ref["embedding"] = embed(model, dense_w, dense_b, ids)
    # Each text alone (no padding) must give the batch's embedding: the mask does its work.
    alone = torch.cat([embed(model, dense_w, dense_b, [x]) for x in ids])
    assert torch.allclose(alone, ref["embedding"], atol=1e-6), (alone - ref["embedding"]).abs().max()
    save_safetensors(os.path.join(out, "reference.safetensors"), ref,
                     {"format": "pt", "texts": json.dumps(TEXTS),
                      "embedding": "mean over non-pad positions, 2_Dense, L2-normalised",
                      "max_seq_length": str(MAX_SEQ_LENGTH)})
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs)
    print(f"wrote {out}: {len(TEXTS)} reference embeddings of {DENSE_OUT} values, {total} bytes")


if __name__ == "__main__":
    main()

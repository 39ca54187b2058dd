#include "bench/random_model.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/safetensors_writer.h"
#include "decoder/t5_model.h"

namespace kvrag::bench {
namespace {

namespace fs = std::filesystem;

// Row-major copies of the model's float32 weights (the engine keeps them in
// panels), one per matrix, alive while the tensors that view them are written.
class RowMajorWeights {
 public:
  const Tensor& of(const WeightMatrix& w) {
    auto it = copies_.find(&w);
    if (it == copies_.end()) it = copies_.emplace(&w, w.f32().unpacked()).first;
    return it->second;
  }

 private:
  std::map<const WeightMatrix*, Tensor> copies_;
};

// The rows [begin, begin + count) of a row-major tensor, as an HF tensor:
// the engine stacks q/k/v, wi_0/wi_1 and every layer's cross k/v, and the
// checkpoint names each part.
NamedTensorView rows_of(const std::string& name, const Tensor& t, int64_t begin, int64_t count) {
  return {name,
          {count, t.cols()},
          std::span<const float>(t.row(begin), static_cast<size_t>(count * t.cols()))};
}

NamedTensorView matrix(const std::string& name, const Tensor& t) {
  return rows_of(name, t, 0, t.rows());
}

// A (1, n) norm weight is a 1-D tensor in the checkpoint.
NamedTensorView vector(const std::string& name, const Tensor& t) {
  return {name, {t.cols()}, std::span<const float>(t.data(), static_cast<size_t>(t.size()))};
}

void add_self_attention(const std::string& prefix, const SelfAttentionWeights& w, int64_t inner,
                        RowMajorWeights* copies, std::vector<NamedTensorView>* out) {
  out->push_back(rows_of(prefix + ".q.weight", copies->of(w.qkv), 0, inner));
  out->push_back(rows_of(prefix + ".k.weight", copies->of(w.qkv), inner, inner));
  out->push_back(rows_of(prefix + ".v.weight", copies->of(w.qkv), 2 * inner, inner));
  out->push_back(matrix(prefix + ".o.weight", copies->of(w.o)));
}

void add_feed_forward(const std::string& prefix, const FeedForwardWeights& w, const T5Config& c,
                      RowMajorWeights* copies, std::vector<NamedTensorView>* out) {
  if (c.is_gated_act) {
    out->push_back(rows_of(prefix + ".wi_0.weight", copies->of(w.wi), 0, c.d_ff));
    out->push_back(rows_of(prefix + ".wi_1.weight", copies->of(w.wi), c.d_ff, c.d_ff));
  } else {
    out->push_back(matrix(prefix + ".wi.weight", copies->of(w.wi)));
  }
  out->push_back(matrix(prefix + ".wo.weight", copies->of(w.wo)));
}

// Every tensor of `model` under the name load_t5_model reads it by; the
// weight matrices view their copies in `copies`.
std::vector<NamedTensorView> hf_tensors(const T5Model& model, RowMajorWeights* copies) {
  const T5Config& c = model.config;
  const EncoderWeights& e = model.encoder_weights;
  const DecoderWeights& d = model.decoder_weights;
  const int64_t inner = c.inner_dim();
  std::vector<NamedTensorView> out;
  out.push_back(matrix("shared.weight", copies->of(e.shared)));
  if (!c.tie_word_embeddings) out.push_back(matrix("lm_head.weight", copies->of(d.lm_head)));
  out.push_back(matrix("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                       e.relative_bias));
  out.push_back(matrix("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                       d.relative_bias));
  for (size_t i = 0; i < e.blocks.size(); ++i) {
    const std::string block = "encoder.block." + std::to_string(i);
    const EncoderBlockWeights& b = e.blocks[i];
    out.push_back(vector(block + ".layer.0.layer_norm.weight", b.self_norm));
    add_self_attention(block + ".layer.0.SelfAttention", b.self, inner, copies, &out);
    out.push_back(vector(block + ".layer.1.layer_norm.weight", b.ffn_norm));
    add_feed_forward(block + ".layer.1.DenseReluDense", b.ffn, c, copies, &out);
  }
  for (size_t i = 0; i < d.blocks.size(); ++i) {
    const std::string block = "decoder.block." + std::to_string(i);
    const std::string cross = block + ".layer.1.EncDecAttention";
    const DecoderBlockWeights& b = d.blocks[i];
    const int64_t kv_row = 2 * static_cast<int64_t>(i) * inner;
    out.push_back(vector(block + ".layer.0.layer_norm.weight", b.self_norm));
    add_self_attention(block + ".layer.0.SelfAttention", b.self, inner, copies, &out);
    out.push_back(vector(block + ".layer.1.layer_norm.weight", b.cross_norm));
    out.push_back(matrix(cross + ".q.weight", copies->of(b.cross_q)));
    out.push_back(rows_of(cross + ".k.weight", copies->of(e.cross_kv), kv_row, inner));
    out.push_back(rows_of(cross + ".v.weight", copies->of(e.cross_kv), kv_row + inner, inner));
    out.push_back(matrix(cross + ".o.weight", copies->of(b.cross_o)));
    out.push_back(vector(block + ".layer.2.layer_norm.weight", b.ffn_norm));
    add_feed_forward(block + ".layer.2.DenseReluDense", b.ffn, c, copies, &out);
  }
  out.push_back(vector("encoder.final_layer_norm.weight", e.final_norm));
  out.push_back(vector("decoder.final_layer_norm.weight", d.final_norm));
  return out;
}

std::string config_json(const T5Config& c) {
  const nlohmann::json j = {
      {"architectures", {"T5ForConditionalGeneration"}},
      {"model_type", "t5"},
      {"vocab_size", c.vocab_size},
      {"d_model", c.d_model},
      {"d_kv", c.d_kv},
      {"num_heads", c.num_heads},
      {"d_ff", c.d_ff},
      {"num_layers", c.num_layers},
      {"num_decoder_layers", c.num_decoder_layers},
      {"relative_attention_num_buckets", c.relative_attention_num_buckets},
      {"relative_attention_max_distance", c.relative_attention_max_distance},
      {"feed_forward_proj", c.feed_forward_proj},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"layer_norm_epsilon", c.layer_norm_epsilon},
      {"pad_token_id", c.pad_token_id},
      {"eos_token_id", c.eos_token_id},
      {"decoder_start_token_id", c.decoder_start_token_id},
      {"kvrag_note", "random weights written by kvrag bench: for speed measurements only"},
  };
  return j.dump(2) + "\n";
}

}  // namespace

const std::vector<std::string>& random_shape_names() {
  static const std::vector<std::string> names{"t5-small", "t5-base"};
  return names;
}

T5Config t5_shape_config(const std::string& name) {
  T5Config c;  // defaults are T5-small's shape and vocabulary, T5 v1.0 layout
  if (name == "t5-small") return c;
  if (name == "t5-base") {
    c.d_model = 768;
    c.num_heads = 12;
    c.d_ff = 3072;
    c.num_layers = 12;
    c.num_decoder_layers = 12;
    return c;
  }
  KVRAG_THROW(kInvalidArgument, "unknown model shape '", name, "' (known: t5-small, t5-base)");
}

T5Config random_shape_config(const std::string& name) {
  T5Config c = t5_shape_config(name);
  c.feed_forward_proj = "gated-gelu";
  c.activation = Activation::kGeluTanh;
  c.is_gated_act = true;
  c.tie_word_embeddings = false;
  return c;
}

void write_random_model_folder(const T5Config& config, uint64_t seed,
                               const std::string& spiece_path, const std::string& dir) {
  KVRAG_CHECK(fs::is_regular_file(spiece_path), kNotFound, "SentencePiece model ", spiece_path,
              ": no such file");
  std::error_code ec;
  fs::create_directories(dir, ec);
  KVRAG_CHECK(!ec, kIo, "cannot create ", dir, ": ", ec.message());
  {
    std::ofstream out(fs::path(dir) / "config.json", std::ios::trunc);
    out << config_json(config);
    out.flush();
    KVRAG_CHECK(out.good(), kIo, "cannot write ", dir, "/config.json");
  }
  const auto model = make_random_t5_model(config, seed);
  RowMajorWeights copies;
  write_safetensors((fs::path(dir) / "model.safetensors").string(), hf_tensors(*model, &copies),
                    DType::kF16);
  fs::copy_file(spiece_path, fs::path(dir) / "spiece.model", fs::copy_options::overwrite_existing,
                ec);
  KVRAG_CHECK(!ec, kIo, "cannot copy ", spiece_path, " into ", dir, ": ", ec.message());
}

}  // namespace kvrag::bench

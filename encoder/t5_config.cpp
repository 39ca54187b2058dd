#include "encoder/t5_config.h"

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json_input.h"

namespace kvrag {
namespace {

using nlohmann::json;

// Upper bounds far above any released T5 (T5-11B: d_ff 65536, 24 layers,
// 128 heads; mT5: 250112 pieces), so that a damaged or absurd config.json
// is an error naming the field, not a weight "not found" or an allocation
// of petabytes.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxWidth = 1 << 20;  // d_model, d_kv, d_ff
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxVocab = 1 << 24;
constexpr int64_t kMaxBuckets = 1 << 16;   // relative_attention_num_buckets
constexpr int64_t kMaxDistance = 1 << 24;  // relative_attention_max_distance

int64_t read_positive_int(const json& j, const char* key, int64_t fallback, int64_t max,
                          const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  KVRAG_CHECK(j[key].is_number_integer(), kFormat, source, ": '", key, "' must be an integer, got ",
              j[key].dump());
  KVRAG_CHECK(
      !j[key].is_number_unsigned() || j[key].get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX),
      kFormat, source, ": '", key, "' must be in 1..", max, ", got ", j[key].dump());
  const int64_t value = j[key].get<int64_t>();
  KVRAG_CHECK(value > 0, kFormat, source, ": '", key, "' must be positive, got ", value);
  KVRAG_CHECK(value <= max, kFormat, source, ": '", key, "' must be in 1..", max, ", got ", value,
              " (more than any T5 model has; is config.json damaged?)");
  return value;
}

float read_positive_number(const json& j, const char* key, float fallback,
                           const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  KVRAG_CHECK(j[key].is_number() && j[key].get<double>() > 0, kFormat, source, ": '", key,
              "' must be a positive number, got ", j[key].dump());
  return j[key].get<float>();
}

int32_t read_token_id(const json& j, const char* key, int32_t fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  KVRAG_CHECK(j[key].is_number_integer() && j[key].get<int64_t>() >= 0, kFormat, source, ": '", key,
              "' must be a non-negative integer, got ", j[key].dump());
  return j[key].get<int32_t>();
}

// transformers: "gated-gelu" means the tanh GELU ("gelu_new"), "ACT" and
// "gated-ACT" otherwise name the activation directly. Only those T5
// checkpoints actually use are supported.
void set_feed_forward(T5Config& config, const std::string& source) {
  const std::string& proj = config.feed_forward_proj;
  if (proj == "relu") {
    config.activation = Activation::kRelu;
    config.is_gated_act = false;
  } else if (proj == "gated-gelu" || proj == "gated-gelu_new") {
    config.activation = Activation::kGeluTanh;
    config.is_gated_act = true;
  } else if (proj == "gated-relu") {
    config.activation = Activation::kRelu;
    config.is_gated_act = true;
  } else if (proj == "gelu_new") {
    config.activation = Activation::kGeluTanh;
    config.is_gated_act = false;
  } else {
    KVRAG_THROW(kFormat, source, ": unsupported feed_forward_proj '", proj,
                "' (supported: relu, gated-gelu, gated-relu, gelu_new)");
  }
}

}  // namespace

T5Config parse_t5_config(const std::string& json_text, const std::string& source) {
  json j;
  try {
    j = parse_json_bounded(json_text);
  } catch (const Error& e) {
    KVRAG_THROW(kFormat, source, ": ", e.what());
  }
  KVRAG_CHECK(j.is_object(), kFormat, source, ": expected a JSON object");
  KVRAG_CHECK(j.contains("model_type") && j["model_type"].is_string(), kFormat, source,
              ": no \"model_type\" string; a T5 config has \"model_type\": \"t5\"");
  const std::string model_type = j["model_type"].get<std::string>();
  KVRAG_CHECK(model_type == "t5", kFormat, source, ": unsupported model_type '", model_type,
              "' (kvrag runs T5 encoder-decoders: \"t5\")");

  T5Config c;
  c.vocab_size = read_positive_int(j, "vocab_size", c.vocab_size, kMaxVocab, source);
  c.d_model = read_positive_int(j, "d_model", c.d_model, kMaxWidth, source);
  c.d_kv = read_positive_int(j, "d_kv", c.d_kv, kMaxWidth, source);
  c.num_heads = read_positive_int(j, "num_heads", c.num_heads, kMaxHeads, source);
  c.d_ff = read_positive_int(j, "d_ff", c.d_ff, kMaxWidth, source);
  c.num_layers = read_positive_int(j, "num_layers", c.num_layers, kMaxLayers, source);
  c.num_decoder_layers =
      read_positive_int(j, "num_decoder_layers", c.num_layers, kMaxLayers, source);
  c.relative_attention_num_buckets = read_positive_int(
      j, "relative_attention_num_buckets", c.relative_attention_num_buckets, kMaxBuckets, source);
  c.relative_attention_max_distance =
      read_positive_int(j, "relative_attention_max_distance", c.relative_attention_max_distance,
                        kMaxDistance, source);
  if (j.contains("feed_forward_proj")) {
    KVRAG_CHECK(j["feed_forward_proj"].is_string(), kFormat, source,
                ": 'feed_forward_proj' must be a string");
    c.feed_forward_proj = j["feed_forward_proj"].get<std::string>();
  }
  set_feed_forward(c, source);
  if (j.contains("tie_word_embeddings")) {
    KVRAG_CHECK(j["tie_word_embeddings"].is_boolean(), kFormat, source,
                ": 'tie_word_embeddings' must be true or false");
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  c.layer_norm_epsilon = read_positive_number(j, "layer_norm_epsilon", c.layer_norm_epsilon, source);
  c.retrieval_temperature =
      read_positive_number(j, "kvrag_retrieval_temperature", c.retrieval_temperature, source);
  c.pad_token_id = read_token_id(j, "pad_token_id", c.pad_token_id, source);
  c.eos_token_id = read_token_id(j, "eos_token_id", c.eos_token_id, source);
  c.decoder_start_token_id = read_token_id(j, "decoder_start_token_id", c.pad_token_id, source);
  KVRAG_CHECK(c.inner_dim() <= kMaxWidth, kFormat, source, ": num_heads × d_kv = ", c.num_heads,
              " × ", c.d_kv, " is more than ", kMaxWidth);
  KVRAG_CHECK(c.relative_attention_num_buckets >= 4, kFormat, source,
              ": 'relative_attention_num_buckets' must be at least 4");
  // The log-spaced buckets start at half the buckets (the decoder's, one
  // direction): a distance not beyond that divides by log(1) = 0 or goes
  // negative, and the bucket indexes outside the bias table.
  KVRAG_CHECK(c.relative_attention_max_distance > c.relative_attention_num_buckets / 2, kFormat,
              source, ": 'relative_attention_max_distance' (", c.relative_attention_max_distance,
              ") must be more than half of 'relative_attention_num_buckets' (",
              c.relative_attention_num_buckets, ")");
  for (int32_t id : {c.pad_token_id, c.eos_token_id, c.decoder_start_token_id}) {
    KVRAG_CHECK(id < c.vocab_size, kFormat, source, ": special token id ", id,
                " is outside the vocabulary of ", c.vocab_size);
  }
  return c;
}

T5Config load_t5_config(const std::string& path) {
  std::ifstream in(path);
  KVRAG_CHECK(in.good(), kNotFound, path, ": no such file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_t5_config(text.str(), path);
}

}  // namespace kvrag

// The fields of a Hugging Face T5 config.json that change the math, with the
// defaults transformers' T5Config uses when a key is absent.
#pragma once

#include <cstdint>
#include <string>

namespace kvrag {

enum class Activation { kRelu, kGeluTanh };

struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t num_heads = 8;
  int64_t d_ff = 2048;
  int64_t num_layers = 6;          // encoder blocks
  int64_t num_decoder_layers = 6;  // absent in config.json means num_layers
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  std::string feed_forward_proj = "relu";
  Activation activation = Activation::kRelu;
  bool is_gated_act = false;
  bool tie_word_embeddings = true;
  float layer_norm_epsilon = 1e-6f;
  int32_t pad_token_id = 0;
  int32_t eos_token_id = 1;
  int32_t decoder_start_token_id = 0;
  // kvrag's own key, kvrag_retrieval_temperature: the temperature τ the
  // model's own embeddings were trained with (InfoNCE), so that
  // softmax(q·c / τ) over retrieved chunks is its probability that each
  // holds the answer (the passage prior, pipeline/passage_prior.h).
  // 0 (absent, as in any Hugging Face checkpoint): the model declares none.
  float retrieval_temperature = 0.0f;

  int64_t inner_dim() const { return num_heads * d_kv; }
};

// Parses config.json text. `source` names it in error messages. Throws
// Error(kFormat) for bad JSON, a wrong-typed or out-of-range field, a
// model_type other than "t5" or an unsupported feed_forward_proj.
T5Config parse_t5_config(const std::string& json_text, const std::string& source);

// Reads and parses a config.json file; Error(kNotFound) if it is missing.
T5Config load_t5_config(const std::string& path);

}  // namespace kvrag

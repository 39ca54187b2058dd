#include "decoder/t5_model.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/hash.h"
#include "core/safetensors.h"

namespace kvrag {

std::shared_ptr<const T5Model> load_t5_model(const std::string& dir) {
  require_model_folder(dir);
  auto model = std::make_shared<T5Model>();
  const auto checkpoint = load_encoder_side(dir, *model);
  const T5WeightLoader loader(*checkpoint, model->config);
  model->encoder_weights.cross_kv = load_cross_kv(loader);
  model->decoder_weights = load_decoder_weights(loader);
  return model;
}

namespace {

// Normal(0, stddev) values for a (rows, cols) tensor.
Tensor random_tensor(std::mt19937_64& rng, int64_t rows, int64_t cols, float stddev) {
  std::normal_distribution<float> normal(0.0f, stddev);
  Tensor t(rows, cols);
  for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = normal(rng);
  return t;
}

Tensor ones(int64_t cols) {
  Tensor t(1, cols);
  for (int64_t j = 0; j < cols; ++j) t.data()[j] = 1.0f;
  return t;
}

}  // namespace

std::shared_ptr<const T5Model> make_random_t5_model(const T5Config& config, uint64_t seed) {
  // The draws keep the order they had when one struct held both stacks, so a
  // seed gives the same weights as before.
  std::mt19937_64 rng(seed);
  const int64_t d = config.d_model;
  const int64_t inner = config.inner_dim();
  const int64_t wi_rows = config.is_gated_act ? 2 * config.d_ff : config.d_ff;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  auto model = std::make_shared<T5Model>();
  model->dir = "(random weights)";
  model->config = config;
  EncoderWeights& e = model->encoder_weights;
  DecoderWeights& w = model->decoder_weights;
  e.shared = random_tensor(rng, config.vocab_size, d, 1.0f);
  if (!config.tie_word_embeddings) w.lm_head = random_tensor(rng, config.vocab_size, d, scale);
  e.relative_bias =
      random_tensor(rng, config.relative_attention_num_buckets, config.num_heads, 1.0f);
  w.relative_bias =
      random_tensor(rng, config.relative_attention_num_buckets, config.num_heads, 1.0f);
  auto feed_forward = [&] {
    return FeedForwardWeights{random_tensor(rng, wi_rows, d, scale),
                              random_tensor(rng, d, config.d_ff, scale)};
  };
  for (int64_t i = 0; i < config.num_layers; ++i) {
    e.blocks.push_back(
        {ones(d),
         {random_tensor(rng, 3 * inner, d, scale), random_tensor(rng, d, inner, scale)},
         ones(d),
         feed_forward()});
  }
  for (int64_t i = 0; i < config.num_decoder_layers; ++i) {
    DecoderBlockWeights b;
    b.self_norm = ones(d);
    b.self = {random_tensor(rng, 3 * inner, d, scale), random_tensor(rng, d, inner, scale)};
    b.cross_norm = ones(d);
    b.cross_q = random_tensor(rng, inner, d, scale);
    b.cross_o = random_tensor(rng, d, inner, scale);
    b.ffn_norm = ones(d);
    b.ffn = feed_forward();
    w.blocks.push_back(std::move(b));
  }
  e.cross_kv = random_tensor(rng, 2 * config.num_decoder_layers * inner, d, scale);
  e.final_norm = ones(d);
  w.final_norm = ones(d);
  model->fingerprint = "random-" + hex64(seed);
  return model;
}

}  // namespace kvrag

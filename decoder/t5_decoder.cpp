#include "decoder/t5_decoder.h"

#include <cmath>

#include "core/error.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "encoder/t5_layers.h"

namespace kvrag {

T5Decoder::T5Decoder(std::shared_ptr<const T5Model> model) : model_(std::move(model)) {}

DecoderCache T5Decoder::new_cache() const {
  const T5Config& c = model_->config;
  DecoderCache cache;
  for (int64_t l = 0; l < c.num_decoder_layers; ++l) {
    cache.k.emplace_back(0, c.inner_dim());
    cache.v.emplace_back(0, c.inner_dim());
  }
  return cache;
}

void T5Decoder::check_memory(const CrossMemory& memory) const {
  const T5Config& c = model_->config;
  KVRAG_CHECK(memory.layers() == c.num_decoder_layers, kInvalidArgument, "memory has ",
              memory.layers(), " layers of K/V, the model has ", c.num_decoder_layers,
              " decoder layers");
  KVRAG_CHECK(memory.tokens() > 0, kInvalidArgument, "memory is empty");
  KVRAG_CHECK(memory.width() == c.inner_dim(), kInvalidArgument, "memory K/V width ",
              memory.width(), " differs from the model's inner_dim ", c.inner_dim());
}

namespace {

// Cross-attention probabilities were summed over layers: their mean.
void average_over_layers(Tensor& mass, int64_t layers) {
  const float layer_share = 1.0f / static_cast<float>(layers);
  for (int64_t i = 0; i < mass.size(); ++i) mass.data()[i] *= layer_share;
}

}  // namespace

DecoderOutputs T5Decoder::forward(std::span<const DecoderInput> inputs,
                                  const CrossMemory& memory) const {
  check_memory(memory);
  DecoderOutputs out;
  int64_t rows = 0;
  for (const DecoderInput& in : inputs) rows += static_cast<int64_t>(in.tokens.size());
  out.cross_attention = Tensor(rows, memory.tokens());
  View mass = out.cross_attention.view();
  // All rows read one memory: one pass over its K/V for all of them.
  const int64_t heads = model_->config.num_heads;
  run_layers(
      inputs,
      [&](int64_t layer, ConstView q, View attn) {
        cross_attention(q, memory, layer, heads, attn, &mass);
      },
      out);
  average_over_layers(out.cross_attention, model_->config.num_decoder_layers);
  return out;
}

DecoderOutputs T5Decoder::forward_each(std::span<const OwnMemoryInput> inputs) const {
  std::vector<DecoderInput> plain;
  std::vector<int64_t> begin = {0};
  DecoderOutputs out;
  for (const OwnMemoryInput& in : inputs) {
    check_memory(*in.memory);
    plain.push_back(in.input);
    const auto count = static_cast<int64_t>(in.input.tokens.size());
    begin.push_back(begin.back() + count);
    out.cross_attention_each.emplace_back(count, in.memory->tokens());
  }
  const int64_t heads = model_->config.num_heads;
  run_layers(
      plain,
      [&](int64_t layer, ConstView q, View attn) {
        // A k = 5 memory is too short to split over threads: the sequences split instead.
        parallel_for_each(static_cast<int64_t>(inputs.size()), [&](int64_t s) {
          const int64_t count = begin[s + 1] - begin[s];
          View mass = out.cross_attention_each[s].view();
          cross_attention(q.rows_slice(begin[s], count), *inputs[s].memory, layer, heads,
                          attn.rows_slice(begin[s], count), &mass);
        });
      },
      out);
  for (Tensor& mass : out.cross_attention_each) {
    average_over_layers(mass, model_->config.num_decoder_layers);
  }
  return out;
}

void T5Decoder::run_layers(std::span<const DecoderInput> inputs, const CrossAttend& attend,
                           DecoderOutputs& out) const {
  const T5Config& c = model_->config;
  // (vocab, d_model): the token embedding, also the tied LM head.
  const WeightMatrix& shared = model_->encoder_weights.shared;
  const DecoderWeights& w = model_->decoder_weights;
  const int64_t inner = c.inner_dim();

  // Input s owns rows [begin[s], begin[s + 1]); its queries sit at absolute
  // positions start[s] .. start[s] + count − 1.
  std::vector<int64_t> begin = {0};
  std::vector<int64_t> start;
  std::vector<int32_t> ids;
  std::vector<Tensor> biases;
  for (const DecoderInput& in : inputs) {
    KVRAG_CHECK(in.cache && in.cache->layers_match(c.num_decoder_layers), kInternal,
                "decoder cache does not match the model");
    const int64_t count = static_cast<int64_t>(in.tokens.size());
    start.push_back(in.cache->length());
    ids.insert(ids.end(), in.tokens.begin(), in.tokens.end());
    begin.push_back(static_cast<int64_t>(ids.size()));
    biases.push_back(position_bias(w.relative_bias, start.back(), count, start.back() + count,
                                   false, c.relative_attention_max_distance));
  }
  Tensor h = embed_tokens(shared, ids);
  const int64_t rows = h.rows();

  Tensor normed(rows, c.d_model);
  Tensor qkv(rows, 3 * inner);
  Tensor q(rows, inner);
  Tensor attn(rows, inner);
  for (int64_t l = 0; l < c.num_decoder_layers; ++l) {
    const DecoderBlockWeights& block = w.blocks[l];
    rms_norm(h.view(), block.self_norm.view(), c.layer_norm_epsilon, normed.view());
    linear(normed.view(), block.self.qkv, qkv.view());
    parallel_for_each(static_cast<int64_t>(inputs.size()), [&](int64_t s) {
      const int64_t b = begin[s];
      const int64_t count = begin[s + 1] - b;
      ConstView rows_s = qkv.view().rows_slice(b, count);
      Tensor& cache_k = inputs[s].cache->k[l];
      Tensor& cache_v = inputs[s].cache->v[l];
      cache_k.append_rows(rows_s.cols_slice(inner, inner));
      cache_v.append_rows(rows_s.cols_slice(2 * inner, inner));
      AttentionMask mask;
      mask.bias = &biases[s];
      mask.causal_offset = start[s];
      multi_head_attention(rows_s.cols_slice(0, inner), cache_k.view(), cache_v.view(), c.num_heads,
                           mask, attn.view().rows_slice(b, count));
    });
    linear(attn.view(), block.self.o, h.view(), /*accumulate=*/true);

    rms_norm(h.view(), block.cross_norm.view(), c.layer_norm_epsilon, normed.view());
    linear(normed.view(), block.cross_q, q.view());
    attend(l, q.view(), attn.view());
    linear(attn.view(), block.cross_o, h.view(), /*accumulate=*/true);

    rms_norm(h.view(), block.ffn_norm.view(), c.layer_norm_epsilon, normed.view());
    feed_forward(block.ffn, c, normed.view(), h.view(), /*accumulate=*/true);
  }

  out.hidden = Tensor(rows, c.d_model);
  rms_norm(h.view(), w.final_norm.view(), c.layer_norm_epsilon, out.hidden.view());
  out.logits = Tensor(rows, c.vocab_size);
  if (c.tie_word_embeddings) {
    // transformers rescales by d_model^-0.5 before a tied LM head.
    Tensor scaled = out.hidden;
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d_model));
    for (int64_t i = 0; i < scaled.size(); ++i) scaled.data()[i] *= scale;
    linear(scaled.view(), shared, out.logits.view());
  } else {
    linear(out.hidden.view(), w.lm_head, out.logits.view());
  }
}

int64_t T5Decoder::step_weight_bytes() const {
  const DecoderWeights& w = model_->decoder_weights;
  int64_t bytes = w.relative_bias.bytes() + w.final_norm.bytes();
  for (const DecoderBlockWeights& b : w.blocks) {
    bytes += b.self_norm.bytes() + b.self.bytes() + b.cross_norm.bytes() + b.cross_q.bytes() +
             b.cross_o.bytes() + b.ffn_norm.bytes() + b.ffn.bytes();
  }
  bytes += model_->config.tie_word_embeddings ? model_->encoder_weights.shared.bytes()
                                              : w.lm_head.bytes();
  return bytes;
}

DecoderOutputs T5Decoder::teacher_forced(std::span<const int32_t> ids,
                                         const CrossMemory& memory) const {
  DecoderCache cache = new_cache();
  const DecoderInput input{ids, &cache};
  return forward({&input, 1}, memory);
}

}  // namespace kvrag

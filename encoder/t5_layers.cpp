#include "encoder/t5_layers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/ops.h"

namespace kvrag {

int64_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance) {
  int64_t ret = 0;
  int64_t n = num_buckets;
  int64_t rel = relative_position;
  if (bidirectional) {
    n /= 2;
    if (rel > 0) ret += n;
    rel = std::abs(rel);
  } else {
    rel = std::max<int64_t>(-rel, 0);  // future positions are masked anyway
  }
  const int64_t max_exact = n / 2;
  if (rel < max_exact) return ret + rel;
  // transformers evaluates this log in float32; the fixtures' README checks
  // that float32 here gives its buckets for every |rel| <= 5000.
  const float scaled = std::log(static_cast<float>(rel) / static_cast<float>(max_exact)) /
                       std::log(static_cast<float>(max_distance) / static_cast<float>(max_exact)) *
                       static_cast<float>(n - max_exact);
  const int64_t large = max_exact + static_cast<int64_t>(scaled);
  return ret + std::min(large, n - 1);
}

Tensor position_bias(const Tensor& table, int64_t query_begin, int64_t num_queries,
                     int64_t num_keys, bool bidirectional, int64_t max_distance) {
  const int64_t num_buckets = table.rows();
  const int64_t num_heads = table.cols();
  Tensor bias(num_heads, num_queries * num_keys);
  // A bucket depends only on j − i: compute each relative position once.
  const int64_t min_rel = -(query_begin + num_queries - 1);
  std::vector<int64_t> bucket_of(static_cast<size_t>(num_keys - min_rel));
  for (int64_t rel = min_rel; rel < num_keys; ++rel) {
    bucket_of[rel - min_rel] =
        relative_position_bucket(rel, bidirectional, num_buckets, max_distance);
  }
  for (int64_t i = 0; i < num_queries; ++i) {
    for (int64_t j = 0; j < num_keys; ++j) {
      const int64_t bucket = bucket_of[j - (query_begin + i) - min_rel];
      for (int64_t h = 0; h < num_heads; ++h) {
        bias.at(h, i * num_keys + j) = table.at(bucket, h);
      }
    }
  }
  return bias;
}

void multi_head_attention(ConstView q, ConstView k, ConstView v, int64_t num_heads,
                          const AttentionMask& mask, View out, View* mass) {
  const int64_t tq = q.rows;
  const int64_t tk = k.rows;
  const int64_t inner = q.cols;
  KVRAG_CHECK(inner % num_heads == 0 && k.cols == inner && v.cols == inner && v.rows == tk &&
                  out.rows == tq && out.cols == inner,
              kInternal, "attention: q [", tq, ", ", inner, "] k [", tk, ", ", k.cols, "] v [",
              v.rows, ", ", v.cols, "] out [", out.rows, ", ", out.cols, "]");
  KVRAG_CHECK(mask.key_valid.empty() || static_cast<int64_t>(mask.key_valid.size()) == tk,
              kInternal, "attention: key mask of ", mask.key_valid.size(), " for ", tk, " keys");
  KVRAG_CHECK(!mass || (mass->rows == tq && mass->cols == tk), kInternal, "attention: mass shape");
  const int64_t d_kv = inner / num_heads;
  constexpr float kMasked = -std::numeric_limits<float>::infinity();
  Tensor scores(tq, tk);
  for (int64_t h = 0; h < num_heads; ++h) {
    gemm(q.cols_slice(h * d_kv, d_kv), false, k.cols_slice(h * d_kv, d_kv), true, scores.view());
    for (int64_t i = 0; i < tq; ++i) {
      float* row = scores.row(i);
      if (mask.bias) {
        const float* b = mask.bias->row(h) + i * tk;
        for (int64_t j = 0; j < tk; ++j) row[j] += b[j];
      }
      if (!mask.key_valid.empty()) {
        for (int64_t j = 0; j < tk; ++j) {
          if (!mask.key_valid[j]) row[j] = kMasked;
        }
      }
      if (mask.causal_offset >= 0) {
        for (int64_t j = i + mask.causal_offset + 1; j < tk; ++j) row[j] = kMasked;
      }
    }
    softmax_rows(scores.view());
    if (mass) {
      const float share = 1.0f / static_cast<float>(num_heads);
      for (int64_t i = 0; i < tq; ++i) {
        for (int64_t j = 0; j < tk; ++j) mass->row(i)[j] += share * scores.at(i, j);
      }
    }
    gemm(scores.view(), false, v.cols_slice(h * d_kv, d_kv), false, out.cols_slice(h * d_kv, d_kv));
  }
}

void feed_forward(const FeedForwardWeights& w, const T5Config& config, ConstView x, View out,
                  bool accumulate) {
  const int64_t d_ff = config.d_ff;
  Tensor hidden(x.rows, w.wi.rows());
  linear(x, w.wi, hidden.view());
  View act = hidden.view().cols_slice(0, d_ff);
  if (config.is_gated_act) {
    ConstView up = hidden.view().cols_slice(d_ff, d_ff);
    if (config.activation == Activation::kGeluTanh) {
      gated_gelu(act, up);
    } else {
      relu(act);
      for (int64_t i = 0; i < act.rows; ++i) {
        for (int64_t j = 0; j < d_ff; ++j) act.row(i)[j] *= up.row(i)[j];
      }
    }
  } else if (config.activation == Activation::kGeluTanh) {
    gelu_tanh(act);
  } else {
    relu(act);
  }
  linear(act, w.wo, out, accumulate);
}

Tensor embed_tokens(const WeightMatrix& embedding, std::span<const int32_t> ids) {
  Tensor out(static_cast<int64_t>(ids.size()), embedding.cols());
  for (size_t i = 0; i < ids.size(); ++i) {
    KVRAG_CHECK(ids[i] >= 0 && ids[i] < embedding.rows(), kInvalidArgument, "token id ", ids[i],
                " at position ", i, " is outside the vocabulary of ", embedding.rows());
    embedding.row_f32(ids[i], out.row(static_cast<int64_t>(i)));
  }
  return out;
}

}  // namespace kvrag

#include "pipeline/passage_prior.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kvrag {

std::vector<float> passage_log_weights(std::span<const double> similarities, double temperature) {
  KVRAG_CHECK(temperature > 0, kInvalidArgument,
              "the passage prior's temperature must be > 0, got ", temperature);
  if (similarities.empty()) return {};
  for (size_t i = 0; i < similarities.size(); ++i) {
    KVRAG_CHECK(std::isfinite(similarities[i]), kInvalidArgument, "the similarity of passage ", i,
                " to the question is not finite (", similarities[i], "): a damaged embedding");
  }
  // log softmax with the largest logit subtracted first.
  const double top = *std::max_element(similarities.begin(), similarities.end()) / temperature;
  double sum = 0.0;
  for (const double s : similarities) sum += std::exp(s / temperature - top);
  const double log_k = std::log(static_cast<double>(similarities.size()));
  std::vector<float> weights;
  weights.reserve(similarities.size());
  for (const double s : similarities) {
    weights.push_back(static_cast<float>(s / temperature - top - std::log(sum) + log_k));
  }
  return weights;
}

std::vector<float> passage_bias(int64_t memory_tokens,
                                std::span<const std::pair<int64_t, int64_t>> spans,
                                std::span<const float> log_weights) {
  KVRAG_CHECK(spans.size() == log_weights.size(), kInvalidArgument, spans.size(),
              " passage spans and ", log_weights.size(), " passage weights");
  std::vector<float> bias(static_cast<size_t>(memory_tokens), 0.0f);
  for (size_t i = 0; i < spans.size(); ++i) {
    const auto [begin, end] = spans[i];
    KVRAG_CHECK(0 <= begin && begin <= end && end <= memory_tokens, kInvalidArgument, "passage ", i,
                " spans [", begin, ", ", end, ") of a memory of ", memory_tokens, " tokens");
    std::fill(bias.begin() + begin, bias.begin() + end, log_weights[i]);
  }
  return bias;
}

}  // namespace kvrag

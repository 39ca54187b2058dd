#include "decoder/generation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace kvrag {
namespace {

// log_softmax of one row, in double for the normaliser.
std::vector<float> log_softmax(const float* logits, int64_t n) {
  const float max_value = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(double(logits[j] - max_value));
  const float log_sum = static_cast<float>(std::log(sum)) + max_value;
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) out[j] = logits[j] - log_sum;
  return out;
}

// Error(kInternal) for a non-finite logit: a non-finite value got into the
// step (a weight finite when loaded but large enough to overflow, a damaged
// value in memory), where argmax over NaN picked token 0, pad, and the
// answer came out empty with no error. One vocabulary row per step.
void check_finite_logits(const float* logits, int64_t vocab, int64_t step) {
  const float* bad =
      std::find_if(logits, logits + vocab, [](float x) { return !std::isfinite(x); });
  KVRAG_CHECK(bad == logits + vocab, kInternal, "decoder step ", step, " gave a non-finite logit (",
              *bad, " for token ", bad - logits,
              "): a weight or memory value overflowed or is damaged");
}

// transformers' MinNewTokensLengthLogitsProcessor: no eos while fewer than
// min_new_tokens tokens have been generated.
void forbid_early_eos(float* scores, int64_t generated, const GenerationOptions& options,
                      int32_t eos) {
  if (generated < options.min_new_tokens) scores[eos] = -std::numeric_limits<float>::infinity();
}

void add_row(std::vector<float>& acc, const float* row, size_t n) {
  if (acc.empty()) acc.assign(n, 0.0f);
  for (size_t j = 0; j < n; ++j) acc[j] += row[j];
}

std::vector<float> averaged(std::vector<float> sum, int64_t steps) {
  for (float& x : sum) x /= static_cast<float>(std::max<int64_t>(steps, 1));
  return sum;
}

Generation greedy(const T5Decoder& decoder, const CrossMemory& memory,
                  const GenerationOptions& options, const TokenCallback& on_token) {
  GreedyDecoding sequence(decoder, memory, options, on_token);
  while (!sequence.done()) {
    if (options.before_step) options.before_step();
    const DecoderInput input = sequence.next_input();
    DecoderOutputs out = decoder.forward({&input, 1}, memory);
    sequence.accept(out.logits.row(0), out.cross_attention.row(0));
  }
  return sequence.finish();
}

struct Hypothesis {
  std::vector<int32_t> ids;  // start token .. last token before eos
  float score;
  std::vector<float> mass;  // summed cross-attention of its steps
  int64_t steps;
};

// transformers' BeamHypotheses: the best num_beams finished hypotheses.
class FinishedHypotheses {
 public:
  FinishedHypotheses(int64_t num_beams, float length_penalty, bool early_stopping)
      : num_beams_(num_beams), length_penalty_(length_penalty), early_stopping_(early_stopping) {}

  // len counts the tokens before eos, the start token included.
  void add(std::vector<int32_t> ids, float sum_logprobs, std::vector<float> mass, int64_t steps) {
    const float score = sum_logprobs / std::pow(static_cast<float>(ids.size()), length_penalty_);
    if (static_cast<int64_t>(beams_.size()) < num_beams_ || score > worst_score_) {
      beams_.push_back({std::move(ids), score, std::move(mass), steps});
      if (static_cast<int64_t>(beams_.size()) > num_beams_) {
        const size_t worst = index_of_worst();
        beams_.erase(beams_.begin() + static_cast<std::ptrdiff_t>(worst));
        worst_score_ = beams_[index_of_worst()].score;
      } else {
        worst_score_ = std::min(score, worst_score_);
      }
    }
  }

  bool is_done(float best_sum_logprobs, int64_t cur_len) const {
    if (static_cast<int64_t>(beams_.size()) < num_beams_) return false;
    if (early_stopping_) return true;
    const float cur_score =
        best_sum_logprobs / std::pow(static_cast<float>(cur_len), length_penalty_);
    return worst_score_ >= cur_score;
  }

  // Python's sorted(...).pop(): the highest score, the last added among ties.
  const Hypothesis& best() const {
    size_t best = 0;
    for (size_t i = 1; i < beams_.size(); ++i) {
      if (beams_[i].score >= beams_[best].score) best = i;
    }
    return beams_[best];
  }

 private:
  // sorted() is stable, so among equal scores the first in the list is worst.
  size_t index_of_worst() const {
    size_t worst = 0;
    for (size_t i = 1; i < beams_.size(); ++i) {
      if (beams_[i].score < beams_[worst].score) worst = i;
    }
    return worst;
  }

  int64_t num_beams_;
  float length_penalty_;
  bool early_stopping_;
  float worst_score_ = 1e9f;
  std::vector<Hypothesis> beams_;
};

struct Beam {
  std::vector<int32_t> ids;
  float score;
  DecoderCache cache;
  std::vector<float> mass;
};

struct Candidate {
  float score;
  int64_t beam;
  int32_t token;
};

// The 2·num_beams best (beam score + log-prob) over all beams and tokens,
// best first, as torch.topk over the flattened (num_beams × vocab) scores.
// Beams all have `generated` tokens after the start token.
std::vector<Candidate> top_candidates(const std::vector<Beam>& beams, const Tensor& logits,
                                      int64_t count, int64_t generated,
                                      const GenerationOptions& options, int32_t eos) {
  const int64_t vocab = logits.cols();
  std::vector<Candidate> all;
  all.reserve(static_cast<size_t>(beams.size() * vocab));
  for (size_t b = 0; b < beams.size(); ++b) {
    check_finite_logits(logits.row(static_cast<int64_t>(b)), vocab, generated);
    std::vector<float> logprobs = log_softmax(logits.row(static_cast<int64_t>(b)), vocab);
    forbid_early_eos(logprobs.data(), generated, options, eos);
    for (int64_t t = 0; t < vocab; ++t) {
      all.push_back(
          {beams[b].score + logprobs[t], static_cast<int64_t>(b), static_cast<int32_t>(t)});
    }
  }
  const auto better = [vocab](const Candidate& x, const Candidate& y) {
    if (x.score != y.score) return x.score > y.score;
    return x.beam * vocab + x.token < y.beam * vocab + y.token;
  };
  count = std::min<int64_t>(count, static_cast<int64_t>(all.size()));
  std::partial_sort(all.begin(), all.begin() + count, all.end(), better);
  all.resize(static_cast<size_t>(count));
  return all;
}

Generation beam_search(const T5Decoder& decoder, const CrossMemory& memory,
                       const GenerationOptions& options, const TokenCallback& on_token) {
  const T5Config& c = decoder.model().config;
  const int64_t num_beams = options.num_beams;
  const size_t memory_tokens = static_cast<size_t>(memory.tokens());
  std::vector<Beam> beams;
  for (int64_t b = 0; b < num_beams; ++b) {
    // Only beam 0 is live at first, so the first step does not pick
    // num_beams copies of the same token.
    beams.push_back({{c.decoder_start_token_id},
                     b == 0 ? 0.0f : -1e9f,
                     decoder.new_cache(),
                     std::vector<float>(memory_tokens, 0.0f)});
  }
  FinishedHypotheses finished(num_beams, options.length_penalty, options.early_stopping);
  const int64_t max_length = 1 + options.max_new_tokens;
  int64_t steps = 0;
  bool done = false;
  while (!done) {
    if (options.before_step) options.before_step();
    std::vector<DecoderInput> inputs;
    for (Beam& beam : beams) {
      inputs.push_back({std::span<const int32_t>(&beam.ids.back(), 1), &beam.cache});
    }
    const DecoderOutputs out = decoder.forward(inputs, memory);
    ++steps;
    const std::vector<Candidate> candidates =
        top_candidates(beams, out.logits, 2 * num_beams, steps - 1, options, c.eos_token_id);
    std::vector<Beam> next;
    for (size_t rank = 0; rank < candidates.size(); ++rank) {
      const Candidate& cand = candidates[rank];
      const Beam& source = beams[cand.beam];
      std::vector<float> mass = source.mass;
      add_row(mass, out.cross_attention.row(cand.beam), memory_tokens);
      if (cand.token == c.eos_token_id) {
        // An eos ranked below the top num_beams is not a finished hypothesis.
        if (static_cast<int64_t>(rank) >= num_beams) continue;
        finished.add(source.ids, cand.score, std::move(mass), steps);
      } else {
        Beam beam{source.ids, cand.score, source.cache, std::move(mass)};
        beam.ids.push_back(cand.token);
        next.push_back(std::move(beam));
      }
      if (static_cast<int64_t>(next.size()) == num_beams) break;
    }
    const int64_t cur_len = static_cast<int64_t>(beams.front().ids.size());
    done = finished.is_done(candidates.front().score, cur_len);
    beams = std::move(next);
    if (cur_len + 1 >= max_length) break;
  }
  if (!done) {
    for (Beam& beam : beams) finished.add(beam.ids, beam.score, beam.mass, steps);
  }
  const Hypothesis& best = finished.best();
  Generation g;
  g.ids = best.ids;
  if (static_cast<int64_t>(g.ids.size()) < max_length) g.ids.push_back(c.eos_token_id);
  g.score = best.score;
  g.attention = averaged(best.mass, best.steps);
  g.steps = steps;
  if (on_token) {
    for (size_t i = 1; i < g.ids.size(); ++i) on_token(g.ids[i]);
  }
  return g;
}

}  // namespace

GreedyDecoding::GreedyDecoding(const T5Decoder& decoder, const CrossMemory& memory,
                               const GenerationOptions& options, const TokenCallback& on_token)
    : memory_(memory),
      options_(options),
      on_token_(on_token),
      vocab_(decoder.model().config.vocab_size),
      eos_(decoder.model().config.eos_token_id),
      cache_(decoder.new_cache()) {
  g_.ids = {decoder.model().config.decoder_start_token_id};
}

DecoderInput GreedyDecoding::next_input() {
  return {std::span<const int32_t>(&g_.ids.back(), 1), &cache_};
}

void GreedyDecoding::accept(float* logits, const float* attention) {
  const int64_t generated = g_.steps;
  ++g_.steps;
  add_row(mass_, attention, static_cast<size_t>(memory_.tokens()));
  check_finite_logits(logits, vocab_, generated);
  forbid_early_eos(logits, generated, options_, eos_);
  // torch.argmax keeps the first of equal maxima, as max_element does.
  const auto next = static_cast<int32_t>(std::max_element(logits, logits + vocab_) - logits);
  g_.score += log_softmax(logits, vocab_)[next];
  g_.ids.push_back(next);
  if (on_token_) on_token_(next);
  done_ = next == eos_ || g_.steps >= options_.max_new_tokens;
}

Generation GreedyDecoding::finish() {
  g_.attention = averaged(std::move(mass_), g_.steps);
  return std::move(g_);
}

void check_generation_options(const GenerationOptions& options) {
  KVRAG_CHECK(options.max_new_tokens >= 1, kInvalidArgument,
              "max_new_tokens must be at least 1, got ", options.max_new_tokens);
  KVRAG_CHECK(options.num_beams >= 1, kInvalidArgument, "num_beams must be at least 1, got ",
              options.num_beams);
  KVRAG_CHECK(options.min_new_tokens >= 0 && options.min_new_tokens <= options.max_new_tokens,
              kInvalidArgument, "min_new_tokens must be in 0..max_new_tokens (",
              options.max_new_tokens, "), got ", options.min_new_tokens);
}

Generation generate(const T5Decoder& decoder, const CrossMemory& memory,
                    const GenerationOptions& options, const TokenCallback& on_token) {
  check_generation_options(options);
  if (options.num_beams == 1) return greedy(decoder, memory, options, on_token);
  return beam_search(decoder, memory, options, on_token);
}

}  // namespace kvrag

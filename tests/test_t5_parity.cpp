// Parity of the T5 engine with Hugging Face transformers, on every case
// folder under the fixtures directory (see ../shared/fixtures/t5/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>

#include "core/error.h"
#include "core/safetensors.h"
#include "decoder/generation.h"
#include "decoder/t5_decoder.h"
#include "encoder/cross_kv.h"
#include "encoder/t5_encoder.h"
#include "encoder/t5_layers.h"
#include "tests/fixtures.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

// The README's bound: max |got − expected| ≤ 5e-5 · max |expected|.
constexpr double kTolerance = 5e-5;

struct Case {
  std::string dir;
  std::shared_ptr<const T5Model> model;
  std::unique_ptr<SafeTensorsFile> expected;

  std::vector<int64_t> shape(const std::string& name) const { return expected->info(name).shape; }
  std::vector<float> f32(const std::string& name) const { return expected->read_f32(name); }
  std::vector<int64_t> i64(const std::string& name) const { return expected->read_i64(name); }
};

// Checks and reports one comparison, so the observed errors are in the log.
void expect_close(const std::string& what, const std::vector<float>& got,
                  const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const double err = testing::relative_error(got, want);
  std::cout << "[parity] " << what << ": max|diff|/max|ref| = " << err << "\n";
  EXPECT_LE(err, kTolerance) << what;
}

std::vector<float> flatten(const Tensor& t) { return {t.data(), t.data() + t.size()}; }

// Row b of an int64 [rows, cols] tensor, keeping positions where `mask` is 1
// (all when mask is empty), as token ids.
std::vector<int32_t> row_ids(const std::vector<int64_t>& all, int64_t cols, int64_t b,
                             const std::vector<int64_t>& mask = {}) {
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < cols; ++t) {
    if (mask.empty() || mask[b * cols + t] == 1)
      ids.push_back(static_cast<int32_t>(all[b * cols + t]));
  }
  return ids;
}

// Pads generated ids with pad 0 to the reference's width, as transformers
// pads a batch.
std::vector<int32_t> padded(std::vector<int32_t> ids, size_t width) {
  ids.resize(std::max(width, ids.size()), 0);
  return ids;
}

class T5Parity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    c_.dir = GetParam();
    c_.model = load_t5_model(c_.dir);
    c_.expected = std::make_unique<SafeTensorsFile>(c_.dir + "/expected.safetensors");
  }

  std::string name() const { return std::filesystem::path(c_.dir).filename().string(); }

  // The encoder states of the reference for sequence b, every row: (T, d_model).
  Tensor reference_encoder_states(int64_t b) const {
    const auto shape = c_.shape("encoder_last_hidden_state");
    const std::vector<float> all = c_.f32("encoder_last_hidden_state");
    const int64_t t = shape[1];
    const int64_t d = shape[2];
    return Tensor(t, d, std::vector<float>(all.begin() + b * t * d, all.begin() + (b + 1) * t * d));
  }

  Case c_;
};

TEST_P(T5Parity, EncoderStatesMatchOnUnpaddedRows) {
  const auto shape = c_.shape("input_ids");
  const int64_t batch = shape[0];
  const int64_t t = shape[1];
  const std::vector<int64_t> ids = c_.i64("input_ids");
  const std::vector<int64_t> mask = c_.i64("attention_mask");
  std::vector<std::vector<int32_t>> inputs;
  for (int64_t b = 0; b < batch; ++b) inputs.push_back(row_ids(ids, t, b, mask));

  const T5Encoder encoder(c_.model);
  const std::vector<Tensor> states = encoder.encode_batch(inputs);
  std::vector<float> got;
  std::vector<float> want;
  for (int64_t b = 0; b < batch; ++b) {
    const Tensor ref = reference_encoder_states(b);
    for (int64_t i = 0; i < static_cast<int64_t>(inputs[b].size()); ++i) {
      got.insert(got.end(), states[b].row(i), states[b].row(i) + ref.cols());
      want.insert(want.end(), ref.row(i), ref.row(i) + ref.cols());
    }
    // A sequence encoded alone equals its rows of the batch up to rounding
    // (BLAS blocks a taller matrix differently); the README observed 8e-7.
    const Tensor alone = encoder.encode(inputs[b]);
    ASSERT_EQ(alone.size(), states[b].size());
    EXPECT_LE(testing::relative_error(alone, states[b]), 2e-6)
        << "sequence " << b << " alone vs in the batch";
  }
  expect_close(name() + " encoder_last_hidden_state", got, want);
}

TEST_P(T5Parity, CrossAttentionKeysAndValuesMatchPerLayer) {
  const std::vector<int64_t> mask = c_.i64("attention_mask");
  const int64_t t = c_.shape("attention_mask")[1];
  int64_t length = 0;
  for (int64_t i = 0; i < t; ++i) length += mask[i];
  ASSERT_EQ(length, t) << "sequence 0 is unpadded";
  const CrossKV kv = project_cross_kv(*c_.model, reference_encoder_states(0).view());
  const T5Config& cfg = c_.model->config;
  ASSERT_EQ(kv.layers(), cfg.num_decoder_layers);
  for (int64_t l = 0; l < cfg.num_decoder_layers; ++l) {
    for (const char* kind : {"cross_k", "cross_v"}) {
      const Tensor& mine = std::string(kind) == "cross_k" ? kv.k[l] : kv.v[l];
      // The reference is [num_heads, T, d_kv]; ours is [T, inner] with heads as
      // column blocks.
      std::vector<float> got;
      for (int64_t h = 0; h < cfg.num_heads; ++h) {
        for (int64_t i = 0; i < t; ++i) {
          const float* r = mine.row(i) + h * cfg.d_kv;
          got.insert(got.end(), r, r + cfg.d_kv);
        }
      }
      const std::string tensor = std::string(kind) + ".l" + std::to_string(l);
      expect_close(name() + " " + tensor, got, c_.f32(tensor));
    }
  }
}

TEST_P(T5Parity, TeacherForcedLogitsMatchWithCrossAttentionMask) {
  const auto shape = c_.shape("decoder_input_ids");
  const int64_t batch = shape[0];
  const int64_t u = shape[1];
  const int64_t t = c_.shape("attention_mask")[1];
  const std::vector<int64_t> dec_ids = c_.i64("decoder_input_ids");
  const std::vector<int64_t> mask = c_.i64("attention_mask");
  const T5Decoder decoder(c_.model);
  std::vector<float> logits;
  std::vector<float> hidden;
  for (int64_t b = 0; b < batch; ++b) {
    // Every reference row, padded ones included, masked as the reference masks them.
    CrossKV memory = project_cross_kv(*c_.model, reference_encoder_states(b).view());
    for (int64_t i = 0; i < t; ++i) memory.valid.push_back(static_cast<uint8_t>(mask[b * t + i]));
    const DecoderOutputs out =
        decoder.teacher_forced(row_ids(dec_ids, u, b), CrossMemory(std::move(memory)));
    const auto l = flatten(out.logits);
    const auto h = flatten(out.hidden);
    logits.insert(logits.end(), l.begin(), l.end());
    hidden.insert(hidden.end(), h.begin(), h.end());
  }
  expect_close(name() + " logits", logits, c_.f32("logits"));
  expect_close(name() + " decoder_last_hidden_state", hidden, c_.f32("decoder_last_hidden_state"));
}

TEST_P(T5Parity, IncrementalDecodingEqualsTeacherForcing) {
  const auto shape = c_.shape("decoder_input_ids");
  const int64_t batch = shape[0];
  const int64_t u = shape[1];
  const int64_t t = c_.shape("attention_mask")[1];
  const int64_t vocab = c_.model->config.vocab_size;
  const std::vector<int64_t> dec_ids = c_.i64("decoder_input_ids");
  const std::vector<int64_t> mask = c_.i64("attention_mask");
  const std::vector<float> want = c_.f32("logits");
  const T5Decoder decoder(c_.model);
  for (int64_t b = 0; b < batch; ++b) {
    CrossKV kv = project_cross_kv(*c_.model, reference_encoder_states(b).view());
    for (int64_t i = 0; i < t; ++i) kv.valid.push_back(static_cast<uint8_t>(mask[b * t + i]));
    const CrossMemory memory(std::move(kv));
    const std::vector<int32_t> ids = row_ids(dec_ids, u, b);
    DecoderCache cache = decoder.new_cache();
    std::vector<float> got;
    for (int64_t step = 0; step < u; ++step) {
      const DecoderInput input{std::span<const int32_t>(&ids[step], 1), &cache};
      const DecoderOutputs out = decoder.forward({&input, 1}, memory);
      got.insert(got.end(), out.logits.row(0), out.logits.row(0) + vocab);
    }
    EXPECT_EQ(cache.length(), u);
    const std::vector<float> want_b(want.begin() + b * u * vocab,
                                    want.begin() + (b + 1) * u * vocab);
    expect_close(name() + " incremental logits, sequence " + std::to_string(b), got, want_b);
  }
}

TEST_P(T5Parity, GreedyAndBeamSearchMatchGenerate) {
  const auto in_shape = c_.shape("input_ids");
  const int64_t batch = in_shape[0];
  const int64_t t = in_shape[1];
  const int64_t width = c_.shape("greedy_ids")[1];
  const std::vector<int64_t> ids = c_.i64("input_ids");
  const std::vector<int64_t> mask = c_.i64("attention_mask");
  const std::vector<int64_t> greedy_ids = c_.i64("greedy_ids");
  const std::vector<int64_t> beam_ids = c_.i64("beam_ids");
  const std::vector<float> beam_scores = c_.f32("beam_scores");
  const T5Encoder encoder(c_.model);
  const T5Decoder decoder(c_.model);
  for (int64_t b = 0; b < batch; ++b) {
    const Tensor states = encoder.encode(row_ids(ids, t, b, mask));
    const CrossMemory memory(project_cross_kv(*c_.model, states.view()));
    GenerationOptions options;
    options.max_new_tokens = width - 1;
    const Generation greedy = generate(decoder, memory, options);
    EXPECT_EQ(padded(greedy.ids, width), row_ids(greedy_ids, width, b)) << "greedy, sequence " << b;

    options.num_beams = 4;
    const Generation beam = generate(decoder, memory, options);
    EXPECT_EQ(padded(beam.ids, width), row_ids(beam_ids, width, b)) << "beam, sequence " << b;
    EXPECT_NEAR(beam.score, beam_scores[b], 1e-4 * std::max(1.0f, std::abs(beam_scores[b])))
        << "beam score, sequence " << b;
    std::cout << "[parity] " << name() << " beam score " << b << ": got " << beam.score << " want "
              << beam_scores[b] << "\n";
  }
}

// min_new_tokens as transformers' MinNewTokensLengthLogitsProcessor: each of
// the first m tokens is the best token other than eos under teacher forcing
// of the output itself, and beam search ends no hypothesis before m tokens.
TEST_P(T5Parity, MinNewTokensDelaysEos) {
  const int32_t eos = c_.model->config.eos_token_id;
  const int64_t vocab = c_.model->config.vocab_size;
  const T5Encoder encoder(c_.model);
  const T5Decoder decoder(c_.model);
  const std::vector<int32_t> prompt = {8, 9, eos};
  const CrossMemory memory(project_cross_kv(*c_.model, encoder.encode(prompt).view()));
  GenerationOptions options;
  options.max_new_tokens = 12;
  options.min_new_tokens = 6;
  const Generation greedy = generate(decoder, memory, options);
  ASSERT_GT(greedy.ids.size(), 6u);
  const Tensor logits = decoder.teacher_forced(greedy.ids, memory).logits;
  for (int64_t step = 0; step < options.min_new_tokens; ++step) {
    std::vector<float> row(logits.row(step), logits.row(step) + vocab);
    row[eos] = -std::numeric_limits<float>::infinity();
    const auto best = std::max_element(row.begin(), row.end()) - row.begin();
    EXPECT_EQ(greedy.ids[step + 1], best) << name() << " step " << step;
  }
  options.num_beams = 3;
  const Generation beam = generate(decoder, memory, options);
  for (int64_t step = 1; step <= options.min_new_tokens; ++step) {
    EXPECT_NE(beam.ids[step], eos) << name() << " beam, token " << step;
  }
  options.min_new_tokens = options.max_new_tokens + 1;
  EXPECT_THROW(generate(decoder, memory, options), kvrag::Error);
}

TEST_P(T5Parity, FusionInDecoderOverPassagesEncodedAlone) {
  const T5Encoder encoder(c_.model);
  const T5Decoder decoder(c_.model);
  CrossMemory memory;
  std::vector<float> joined_states;
  for (int p = 0; c_.expected->has("fid.input_ids.p" + std::to_string(p)); ++p) {
    const std::string suffix = ".p" + std::to_string(p);
    const std::vector<int64_t> ids = c_.i64("fid.input_ids" + suffix);
    const std::vector<int32_t> passage(ids.begin(), ids.end());
    const Tensor states = encoder.encode(passage);
    expect_close(name() + " fid.encoder_last_hidden_state" + suffix, flatten(states),
                 c_.f32("fid.encoder_last_hidden_state" + suffix));
    const auto s = flatten(states);
    joined_states.insert(joined_states.end(), s.begin(), s.end());
    // The one idea of kvrag: the memory of concatenated passages is the
    // concatenation of the passages' K/V, read here as one block per passage.
    memory.add(std::make_shared<const CrossKV>(project_cross_kv(*c_.model, states.view())));
  }
  ASSERT_GT(memory.tokens(), 0);
  expect_close(name() + " fid.memory", joined_states, c_.f32("fid.memory"));

  const std::vector<int64_t> dec = c_.i64("fid.decoder_input_ids");
  const std::vector<int32_t> dec_ids(dec.begin(), dec.end());
  expect_close(name() + " fid.logits", flatten(decoder.teacher_forced(dec_ids, memory).logits),
               c_.f32("fid.logits"));

  const int64_t width = c_.shape("fid.greedy_ids")[1];
  GenerationOptions options;
  options.max_new_tokens = c_.shape("greedy_ids")[1] - 1;
  const std::vector<int64_t> greedy_ref = c_.i64("fid.greedy_ids");
  EXPECT_EQ(padded(generate(decoder, memory, options).ids, width),
            std::vector<int32_t>(greedy_ref.begin(), greedy_ref.end()));
  options.num_beams = 4;
  const Generation beam = generate(decoder, memory, options);
  const std::vector<int64_t> beam_ref = c_.i64("fid.beam_ids");
  EXPECT_EQ(padded(beam.ids, c_.shape("fid.beam_ids")[1]),
            std::vector<int32_t>(beam_ref.begin(), beam_ref.end()));
  const float want_score = c_.f32("fid.beam_scores")[0];
  EXPECT_NEAR(beam.score, want_score, 1e-4 * std::max(1.0f, std::abs(want_score)));
}

TEST_P(T5Parity, CrossAttentionMaskIgnoresPaddedMemorySlots) {
  const auto shape = c_.shape("fid_padded.memory");
  const std::vector<float> states = c_.f32("fid_padded.memory");
  const std::vector<int64_t> mask = c_.i64("fid_padded.memory_mask");
  CrossKV kv = project_cross_kv(*c_.model, Tensor(shape[1], shape[2], states).view());
  for (int64_t m : mask) kv.valid.push_back(m != 0 ? 1 : 0);
  ASSERT_NE(std::count(kv.valid.begin(), kv.valid.end(), 0), 0) << "mask has pad slots";
  const CrossMemory memory(std::move(kv));
  const std::vector<int64_t> dec = c_.i64("fid.decoder_input_ids");
  const T5Decoder decoder(c_.model);
  const DecoderOutputs out =
      decoder.teacher_forced(std::vector<int32_t>(dec.begin(), dec.end()), memory);
  expect_close(name() + " fid_padded.logits", flatten(out.logits), c_.f32("fid_padded.logits"));
}

TEST_P(T5Parity, RelativePositionBucketsMatch) {
  const T5Config& cfg = c_.model->config;
  const std::vector<int64_t> rel = c_.i64("rel_bucket.relative_position");
  const std::vector<int64_t> bidirectional = c_.i64("rel_bucket.bidirectional");
  const std::vector<int64_t> causal = c_.i64("rel_bucket.causal");
  for (size_t i = 0; i < rel.size(); ++i) {
    EXPECT_EQ(relative_position_bucket(rel[i], true, cfg.relative_attention_num_buckets,
                                       cfg.relative_attention_max_distance),
              bidirectional[i])
        << "bidirectional, relative position " << rel[i];
    EXPECT_EQ(relative_position_bucket(rel[i], false, cfg.relative_attention_num_buckets,
                                       cfg.relative_attention_max_distance),
              causal[i])
        << "causal, relative position " << rel[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, T5Parity, ::testing::ValuesIn(testing::t5_fixture_cases()),
                         testing::fixture_case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(T5Parity);

TEST(T5Fixtures, AreFound) {
  if (testing::t5_fixture_cases().empty()) {
    KVRAG_SKIP_OR_FAIL("no T5 fixture cases under " + testing::t5_fixtures_dir() +
                       " (set KVRAG_T5_FIXTURES)");
  }
}

}  // namespace
}  // namespace kvrag

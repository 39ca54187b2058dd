// Decoding across requests: one decoder pass over sequences that each read
// their own memory (T5Decoder::forward_each) and the batcher that shares
// passes between concurrent greedy generations (pipeline/decode_batcher.h),
// checked against each sequence decoded alone.
#include <gtest/gtest.h>

#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "decoder/generation.h"
#include "decoder/t5_decoder.h"
#include "encoder/cross_kv.h"
#include "encoder/t5_encoder.h"
#include "pipeline/decode_batcher.h"
#include "tests/sample_corpus.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

using testing::kDemoModel;
using testing::relative_error;

std::shared_ptr<const T5Model> demo_model() {
  static const std::shared_ptr<const T5Model> model = load_t5_model(kDemoModel);
  return model;
}

// Memories of different lengths and content: what concurrent asks bring.
std::vector<CrossMemory> memories() {
  const std::vector<std::string> texts = {
      "question: On which river does Tithford lie? title: Tithford context: Tithford lies on the "
      "river Grouthaed.",
      "question: Who founded Wiafoundholt?",
      "question: When was the Braealeirk scale invented? title: Braealeirk scale context: The "
      "Braealeirk scale was invented in 1764 by a clockmaker of Oleyyrkhaven, who sold it to "
      "merchants along the coast.",
      "question: How long is the Fozad?"};
  const T5Encoder encoder(demo_model());
  const Tokenizer& tokenizer = demo_model()->require_tokenizer();
  std::vector<CrossMemory> out;
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = tokenizer.encode(text);
    ids.push_back(demo_model()->config.eos_token_id);
    out.emplace_back(project_cross_kv(*demo_model(), encoder.encode(ids).view()));
  }
  return out;
}

GenerationOptions greedy(int64_t max_new_tokens = 12) {
  GenerationOptions options;
  options.max_new_tokens = max_new_tokens;
  return options;
}

TEST(DecodeAcrossRequests, OnePassEqualsEachSequenceAlone) {
  // Two threads: the sequences' attention runs on both (parallel_for_each).
  const int64_t threads = compute_threads();
  set_compute_threads(2);
  const T5Decoder decoder(demo_model());
  const std::vector<CrossMemory> mems = memories();
  // Each sequence at another length of its own cache: two tokens already in.
  const std::vector<std::vector<int32_t>> prefixes = {{0, 17}, {0}, {0, 5, 9}, {0, 42}};
  std::vector<DecoderCache> shared_caches, alone_caches;
  for (size_t s = 0; s < mems.size(); ++s) {
    shared_caches.push_back(decoder.new_cache());
    alone_caches.push_back(decoder.new_cache());
  }
  std::vector<OwnMemoryInput> inputs;
  for (size_t s = 0; s < mems.size(); ++s) {
    inputs.push_back({{prefixes[s], &shared_caches[s]}, &mems[s]});
  }
  const DecoderOutputs together = decoder.forward_each(inputs);
  ASSERT_EQ(together.cross_attention_each.size(), mems.size());
  int64_t row = 0;
  for (size_t s = 0; s < mems.size(); ++s) {
    const DecoderInput alone_input{prefixes[s], &alone_caches[s]};
    const DecoderOutputs alone = decoder.forward({&alone_input, 1}, mems[s]);
    const auto count = static_cast<int64_t>(prefixes[s].size());
    const std::span<const float> rows(together.logits.row(row),
                                      static_cast<size_t>(count * together.logits.cols()));
    EXPECT_LT(relative_error(rows, {alone.logits.data(), static_cast<size_t>(alone.logits.size())}),
              1e-5)
        << "sequence " << s;
    EXPECT_LT(relative_error(together.cross_attention_each[s], alone.cross_attention), 1e-5)
        << "sequence " << s;
    EXPECT_EQ(shared_caches[s].length(), alone_caches[s].length());
    row += count;
  }
  set_compute_threads(threads);
}

TEST(DecodeAcrossRequests, RefusesAMemoryTheModelCannotRead) {
  const T5Decoder decoder(demo_model());
  const std::vector<CrossMemory> mems = memories();
  const CrossMemory empty;
  DecoderCache a = decoder.new_cache(), b = decoder.new_cache();
  const std::vector<int32_t> start = {0};
  const std::vector<OwnMemoryInput> inputs = {{{start, &a}, &mems[0]}, {{start, &b}, &empty}};
  EXPECT_THROW(decoder.forward_each(inputs), Error);
}

// Every caller gets the tokens, score and attention generate() gives it alone,
// however the batcher groups the steps.
TEST(DecodeBatcher, ConcurrentCallersGetWhatEachGetsAlone) {
  const T5Decoder decoder(demo_model());
  const std::vector<CrossMemory> mems = memories();
  std::vector<Generation> alone;
  for (const CrossMemory& m : mems) alone.push_back(generate(decoder, m, greedy()));

  // Fewer slots than callers: one waits to join. Two threads split each pass.
  DecodeBatcher batcher(decoder, 3, 2);
  std::vector<std::future<Generation>> results;
  std::vector<std::vector<int32_t>> streamed(mems.size());
  for (size_t s = 0; s < mems.size(); ++s) {
    results.push_back(std::async(std::launch::async, [&, s] {
      return batcher.generate(mems[s], greedy(),
                              [&streamed, s](int32_t token) { streamed[s].push_back(token); });
    }));
  }
  int64_t tokens = 0;
  for (size_t s = 0; s < mems.size(); ++s) {
    const Generation got = results[s].get();
    EXPECT_EQ(got.ids, alone[s].ids) << "sequence " << s;
    EXPECT_NEAR(got.score, alone[s].score, 1e-4) << "sequence " << s;
    EXPECT_LT(relative_error(got.attention, alone[s].attention), 1e-4) << "sequence " << s;
    EXPECT_EQ(streamed[s], std::vector<int32_t>(got.ids.begin() + 1, got.ids.end()));
    tokens += got.steps;
  }
  const DecodeBatcher::Counters counters = batcher.counters();
  EXPECT_EQ(counters.sequences, tokens);  // every sequence-step ran exactly once
  EXPECT_LE(counters.steps, counters.sequences);
}

TEST(DecodeBatcher, MinNewTokensAsAlone) {
  const T5Decoder decoder(demo_model());
  const std::vector<CrossMemory> mems = memories();
  GenerationOptions options = greedy(10);
  options.min_new_tokens = 7;
  DecodeBatcher batcher(decoder, 4, 1);
  EXPECT_EQ(batcher.generate(mems[1], options, {}).ids, generate(decoder, mems[1], options).ids);
}

// A deadline or a failed callback ends its own sequence only.
TEST(DecodeBatcher, AFailingSequenceLeavesTheOthers) {
  const T5Decoder decoder(demo_model());
  const std::vector<CrossMemory> mems = memories();
  const Generation alone = generate(decoder, mems[2], greedy());
  DecodeBatcher batcher(decoder, 4, 1);

  GenerationOptions expiring = greedy();
  int steps = 0;
  expiring.before_step = [&steps] {
    if (++steps == 3) throw Error(ErrorKind::kDeadlineExceeded, "deadline passed while decoding");
  };
  auto deadline =
      std::async(std::launch::async, [&] { return batcher.generate(mems[0], expiring, {}); });
  auto failing_callback = std::async(std::launch::async, [&] {
    return batcher.generate(mems[1], greedy(),
                            [](int32_t) { throw std::runtime_error("client went away"); });
  });
  auto fine =
      std::async(std::launch::async, [&] { return batcher.generate(mems[2], greedy(), {}); });
  EXPECT_THROW(deadline.get(), Error);
  EXPECT_THROW(failing_callback.get(), std::runtime_error);
  EXPECT_EQ(fine.get().ids, alone.ids);
}

TEST(DecodeBatcher, RefusesBeamSearchAndBadOptions) {
  const T5Decoder decoder(demo_model());
  const std::vector<CrossMemory> mems = memories();
  DecodeBatcher batcher(decoder, 2, 1);
  GenerationOptions beams = greedy();
  beams.num_beams = 4;
  EXPECT_THROW(batcher.generate(mems[0], beams, {}), Error);
  EXPECT_THROW(batcher.generate(mems[0], greedy(0), {}), Error);
  EXPECT_THROW(batcher.generate(CrossMemory(), greedy(), {}), Error);
  EXPECT_THROW(DecodeBatcher(decoder, 0, 1), Error);
  EXPECT_THROW(DecodeBatcher(decoder, 2, 0), Error);
}

}  // namespace
}  // namespace kvrag

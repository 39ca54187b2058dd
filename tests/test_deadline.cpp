// Request deadlines: the Deadline type, the encoder's and decoder's hooks it
// is checked through, and RagPipeline::ask stopping with
// Error(kDeadlineExceeded) at every stage without changing the index.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/error.h"
#include "data/corpus_reader.h"
#include "decoder/generation.h"
#include "decoder/t5_model.h"
#include "encoder/cross_kv.h"
#include "encoder/t5_encoder.h"
#include "pipeline/deadline.h"
#include "pipeline/rag_pipeline.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {

using std::chrono::milliseconds;
using testing::kDemoModel;

struct Stop {};

TEST(Deadline, UnsetNeverExpiresAndHasNoChecker) {
  const Deadline none;
  EXPECT_FALSE(none.is_set());
  EXPECT_FALSE(none.expired());
  EXPECT_NO_THROW(none.check("anything"));
  EXPECT_FALSE(static_cast<bool>(none.checker("anything")));
  EXPECT_EQ(none.remaining(), Deadline::Clock::duration::max());
}

TEST(Deadline, ExpiredThrowsDeadlineExceededNamingTheStage) {
  const Deadline past = Deadline::after(milliseconds(5), Deadline::Clock::now() - milliseconds(10));
  EXPECT_TRUE(past.expired());
  EXPECT_EQ(past.remaining(), Deadline::Clock::duration::zero());
  try {
    past.checker("decoding")();
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kDeadlineExceeded);
    EXPECT_NE(std::string(e.what()).find("the request's deadline of 5 ms passed during decoding"),
              std::string::npos)
        << e.what();
  }
  EXPECT_STREQ(error_kind_name(ErrorKind::kDeadlineExceeded), "deadline_exceeded");
  EXPECT_THROW(Deadline::after(milliseconds(0)), Error);
  EXPECT_FALSE(Deadline::after(milliseconds(60000)).expired());
}

TEST(Deadline, EncoderCallsTheHookBeforeEveryLayerAndStopsWhenItThrows) {
  const auto model = load_t5_model(kDemoModel);
  const T5Encoder encoder(model);
  const std::vector<int32_t> ids = {100, 200, 300, 1};
  int calls = 0;
  const Tensor full = encoder.encode(ids, [&calls] { ++calls; });
  EXPECT_EQ(calls, static_cast<int>(model->config.num_layers));
  EXPECT_EQ(full.rows(), 4);
  calls = 0;
  EXPECT_THROW(encoder.encode(ids,
                              [&calls] {
                                if (++calls == 2) throw Stop{};
                              }),
               Stop);
  EXPECT_EQ(calls, 2);
}

TEST(Deadline, GenerationCallsTheHookBeforeEveryStepAndStopsWhenItThrows) {
  const auto model = load_t5_model(kDemoModel);
  const T5Encoder encoder(model);
  const T5Decoder decoder(model);
  const std::vector<int32_t> ids = {100, 200, 300, 1};
  const CrossMemory memory(project_cross_kv(*model, encoder.encode(ids).view()));
  for (const int64_t beams : {1, 2}) {
    SCOPED_TRACE(beams);
    GenerationOptions options{.max_new_tokens = 8, .num_beams = beams};
    int steps = 0;
    options.before_step = [&steps] { ++steps; };
    const Generation whole = generate(decoder, memory, options);
    EXPECT_EQ(steps, whole.steps);
    steps = 0;
    options.before_step = [&steps] {
      if (++steps == 2) throw Stop{};
    };
    EXPECT_THROW(generate(decoder, memory, options), Stop);
    EXPECT_EQ(steps, 2);
  }
}

TEST(Deadline, AskStopsWithDeadlineExceededInEveryModeAndLeavesTheIndexAlone) {
  testing::TempDir dir("kvrag_test_deadline");
  auto pipeline = RagPipeline::create(dir.file("index"), kDemoModel, IndexSettings{});
  CorpusReadResult read = read_corpus({testing::kSampleCorpus});
  read.documents.resize(4);
  pipeline->add_documents(read.documents);
  const IndexStats before = pipeline->stats();
  for (const Mode mode : {Mode::kCached, Mode::kConcat, Mode::kFid}) {
    SCOPED_TRACE(mode_name(mode));
    AskOptions options;
    options.mode = mode;
    options.deadline = Deadline::after(milliseconds(1), Deadline::Clock::now() - milliseconds(5));
    try {
      pipeline->ask("Which river flows through the capital?", options);
      FAIL() << "no throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kDeadlineExceeded) << e.what();
    }
    // A deadline far away changes nothing.
    options.deadline = Deadline::after(milliseconds(600000));
    EXPECT_FALSE(pipeline->ask("Which river flows through the capital?", options).text.empty());
  }
  EXPECT_EQ(pipeline->stats().store.documents, before.store.documents);
  EXPECT_EQ(pipeline->stats().store.chunks, before.store.chunks);
}

}  // namespace
}  // namespace kvrag

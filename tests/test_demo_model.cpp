// The bundled demo model (models/kvrag-demo) against the outputs of the
// training code's own forward pass, saved with it as reference.safetensors
// (training/export.py re-creates it from the weights): the weights mean to the C++
// engine what they meant to the code that trained them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include "core/safetensors.h"
#include "decoder/generation.h"
#include "decoder/t5_decoder.h"
#include "encoder/cross_kv.h"
#include "encoder/t5_encoder.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {

using testing::kDemoModel;

// Same bound as the Hugging Face fixtures: max |diff| ≤ 5e-5 · max |ref|.
constexpr double kTolerance = 5e-5;

std::vector<int32_t> read_ids(const SafeTensorsFile& file, const std::string& name) {
  const std::vector<int64_t> all = file.read_i64(name);
  return {all.begin(), all.end()};
}

void expect_close(const std::string& what, const Tensor& got, const std::vector<float>& want) {
  ASSERT_EQ(static_cast<size_t>(got.size()), want.size()) << what;
  double max_diff = 0.0;
  double max_ref = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(got.data()[i]) - double(want[i])));
    max_ref = std::max(max_ref, std::abs(double(want[i])));
  }
  const double err = max_diff / std::max(max_ref, 1e-30);
  std::cout << "[demo parity] " << what << ": max|diff|/max|ref| = " << err << "\n";
  EXPECT_LE(err, kTolerance) << what;
}

TEST(DemoModel, MatchesTheTrainingCodesForwardPass) {
  const auto model = load_t5_model(kDemoModel);
  const SafeTensorsFile reference(kDemoModel + "/reference.safetensors");
  const T5Encoder encoder(model);
  const T5Decoder decoder(model);

  const Tensor question = encoder.encode(read_ids(reference, "input_ids"));
  expect_close("encoder_last_hidden_state", question,
               reference.read_f32("encoder_last_hidden_state"));

  // The cached-mode memory: question and passages encoded alone, concatenated.
  CrossMemory memory(project_cross_kv(*model, question.view()));
  for (int p = 0; p < 3; ++p) {
    const Tensor passage = encoder.encode(read_ids(reference, "passage_ids.p" + std::to_string(p)));
    memory.add(std::make_shared<const CrossKV>(project_cross_kv(*model, passage.view())));
  }
  const DecoderOutputs out =
      decoder.teacher_forced(read_ids(reference, "decoder_input_ids"), memory);
  expect_close("logits", out.logits, reference.read_f32("logits"));

  GenerationOptions greedy;
  greedy.max_new_tokens = 24;
  EXPECT_EQ(generate(decoder, memory, greedy).ids, read_ids(reference, "greedy_ids"));
}

// A memory value large enough to overflow the attention scores (as a
// weight finite when loaded can make one): the step's logits come out NaN,
// and greedy and beam search stop with an error rather than answer. Greedy
// used to take NaN's argmax, token 0, and answer nothing without an error.
TEST(DemoModel, NonFiniteLogitsAreAnErrorNotAnAnswer) {
  const auto model = load_t5_model(kDemoModel);
  const T5Encoder encoder(model);
  const T5Decoder decoder(model);
  const std::vector<int32_t> ids = {100, 200, 300, 1};
  CrossKV kv = project_cross_kv(*model, encoder.encode(ids).view());
  for (Tensor& k : kv.k) {
    for (int64_t j = 0; j < k.cols(); ++j) k.at(1, j) = 3e38f;
  }
  const CrossMemory memory(std::move(kv));
  for (const int64_t beams : {1, 2}) {
    GenerationOptions options{.max_new_tokens = 4, .num_beams = beams};
    EXPECT_TRUE(testing::throws_error([&] { generate(decoder, memory, options); },
                                      ErrorKind::kInternal,
                                      {"decoder step 0 gave a non-finite logit"}))
        << beams << " beams";
  }
}

TEST(DemoModel, FingerprintIgnoresTheReferenceFile) {
  // reference.safetensors sits in the model folder but is not a weight file:
  // indexes built before it was written must still open with this model.
  const auto model = load_t5_model(kDemoModel);
  const SafeTensorsCheckpoint checkpoint(kDemoModel);
  ASSERT_EQ(checkpoint.files().size(), 1u);
  EXPECT_EQ(checkpoint.files().front(), kDemoModel + "/model.safetensors");
}

}  // namespace
}  // namespace kvrag

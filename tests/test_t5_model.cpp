// load_t5_model on broken, half-precision and sharded copies of the fixture
// model folders: every broken folder's error names the file or tensor at
// fault, and every valid storage of the same weights gives the same model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "core/safetensors.h"
#include "decoder/t5_model.h"
#include "encoder/t5_encoder.h"
#include "pipeline/text_generation.h"
#include "tests/fixtures.h"
#include "tests/model_files.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;
using testing::copy_model;
using testing::find_tensor;
using testing::NamedTensor;
using testing::relative_error;
using testing::throws_error;

constexpr const char* kRelu = "t5v1_relu_tied";
constexpr const char* kGated = "t5v11_gatedgelu_untied";

// Valid in both fixture vocabularies (96 and 100), ending with eos.
const std::vector<int32_t> kIds = {13, 7, 42, 5, 88, 21, 3, 64, 9, 30, 77, 2, 1};

// Every weight tensor of a loaded model, by a readable name (weight
// matrices unpacked from their panels).
std::vector<std::pair<std::string, Tensor>> all_tensors(const T5Model& m) {
  const EncoderWeights& e = m.encoder_weights;
  const DecoderWeights& d = m.decoder_weights;
  std::vector<std::pair<std::string, Tensor>> out = {
      {"shared", e.shared.f32().unpacked()},      {"lm_head", d.lm_head.f32().unpacked()},
      {"encoder_relative_bias", e.relative_bias}, {"decoder_relative_bias", d.relative_bias},
      {"encoder_final_norm", e.final_norm},       {"decoder_final_norm", d.final_norm},
      {"cross_kv", e.cross_kv.f32().unpacked()}};
  for (size_t i = 0; i < e.blocks.size(); ++i) {
    const EncoderBlockWeights& b = e.blocks[i];
    const std::string p = "encoder." + std::to_string(i) + ".";
    for (const auto& [name, t] : {std::pair{"self_norm", b.self_norm},
                                  {"qkv", b.self.qkv.f32().unpacked()},
                                  {"o", b.self.o.f32().unpacked()},
                                  {"ffn_norm", b.ffn_norm},
                                  {"wi", b.ffn.wi.f32().unpacked()},
                                  {"wo", b.ffn.wo.f32().unpacked()}}) {
      out.emplace_back(p + name, t);
    }
  }
  for (size_t i = 0; i < d.blocks.size(); ++i) {
    const DecoderBlockWeights& b = d.blocks[i];
    const std::string p = "decoder." + std::to_string(i) + ".";
    for (const auto& [name, t] : {std::pair{"self_norm", b.self_norm},
                                  {"qkv", b.self.qkv.f32().unpacked()},
                                  {"o", b.self.o.f32().unpacked()},
                                  {"cross_norm", b.cross_norm},
                                  {"cross_q", b.cross_q.f32().unpacked()},
                                  {"cross_o", b.cross_o.f32().unpacked()},
                                  {"ffn_norm", b.ffn_norm},
                                  {"wi", b.ffn.wi.f32().unpacked()},
                                  {"wo", b.ffn.wo.f32().unpacked()}}) {
      out.emplace_back(p + name, t);
    }
  }
  return out;
}

Tensor encode(const std::shared_ptr<const T5Model>& model) { return T5Encoder(model).encode(kIds); }

TEST(T5ModelLoad, MissingFolderIsNotFound) {
  const testing::TempDir tmp("kvrag_test_t5_model");
  const std::string dir = tmp.file("no_such_model");
  EXPECT_TRUE(throws_error([&] { load_t5_model(dir); }, ErrorKind::kNotFound,
                           {dir, "no such model folder"}));
}

TEST(T5ModelLoad, UnstatablePathIsNotFound) {
  // stat fails with ENAMETOOLONG, not ENOENT: still a kvrag::Error.
  const std::string dir = "/tmp/" + std::string(300, 'x');
  EXPECT_TRUE(
      throws_error([&] { load_t5_model(dir); }, ErrorKind::kNotFound, {"no such model folder"}));
}

// Each test gets a fresh temporary folder `model_` (to fill with a copy of
// a fixture case) and the paths of the two fixture cases.
class T5ModelFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    relu_ = testing::fixture_case(kRelu);
    gated_ = testing::fixture_case(kGated);
    if (relu_.empty() || gated_.empty()) {
      KVRAG_SKIP_OR_FAIL("T5 fixtures " + std::string(kRelu) + " and " + kGated + " not under " +
                         testing::t5_fixtures_dir());
    }
    model_ = tmp_.path() / "model";
  }

  std::string model() const { return model_.string(); }
  std::string model_file(const char* name) const { return (model_ / name).string(); }

  testing::TempDir tmp_{"kvrag_test_t5_model"};
  std::string relu_;
  std::string gated_;
  fs::path model_;
};

TEST_F(T5ModelFiles, CopyLoadsLikeTheFixture) {
  copy_model(relu_, model_);
  const auto copy = load_t5_model(model());
  const auto original = load_t5_model(relu_);
  EXPECT_EQ(copy->dir, model());
  EXPECT_FALSE(copy->tokenizer.has_value());
  EXPECT_EQ(relative_error(encode(copy), encode(original)), 0.0);
}

// What a question's encoding reads, counted from the checkpoint's names: every
// encoder tensor and each decoder layer's cross-attention k and v, float32.
TEST_F(T5ModelFiles, QuestionWeightBytesAreTheEncoderAndTheCrossKvProjections) {
  const SafeTensorsFile checkpoint(gated_ + "/model.safetensors");
  int64_t values = 0;
  for (const std::string& name : checkpoint.names()) {
    if (name.starts_with("encoder.") || name.ends_with("EncDecAttention.k.weight") ||
        name.ends_with("EncDecAttention.v.weight")) {
      values += checkpoint.info(name).numel();
    }
  }
  const T5Encoder encoder(load_t5_model(gated_));
  EXPECT_EQ(encoder.question_weight_bytes(), values * int64_t{sizeof(float)});
}

TEST_F(T5ModelFiles, MissingConfigIsNotFound) {
  copy_model(relu_, model_);
  fs::remove(model_ / "config.json");
  EXPECT_TRUE(throws_error([&] { load_t5_model(model()); }, ErrorKind::kNotFound,
                           {model_file("config.json"), "no such file"}));
}

TEST_F(T5ModelFiles, MissingWeightsIsNotFound) {
  copy_model(relu_, model_);
  fs::remove(model_ / "model.safetensors");
  EXPECT_TRUE(throws_error([&] { load_t5_model(model()); }, ErrorKind::kNotFound,
                           {model(), "model.safetensors", "model.safetensors.index.json"}));
}

TEST_F(T5ModelFiles, TruncatedWeightsIsFormatError) {
  copy_model(relu_, model_);
  testing::write_text(model_file("model.safetensors"), "abcd");
  EXPECT_TRUE(throws_error([&] { load_t5_model(model()); }, ErrorKind::kFormat,
                           {model_file("model.safetensors"), "truncated"}));
}

TEST_F(T5ModelFiles, MissingTensorIsNotFound) {
  const std::string name = "decoder.block.1.layer.1.EncDecAttention.k.weight";
  copy_model(relu_, model_, [&](std::vector<NamedTensor>& tensors) {
    std::erase_if(tensors, [&](const NamedTensor& t) { return t.name == name; });
  });
  EXPECT_TRUE(throws_error([&] { load_t5_model(model()); }, ErrorKind::kNotFound,
                           {"tensor '" + name + "' not found in " + model()}));
}

TEST_F(T5ModelFiles, MissingEmbeddingIsNotFound) {
  copy_model(relu_, model_, [](std::vector<NamedTensor>& tensors) {
    std::erase_if(tensors, [](const NamedTensor& t) { return t.name == "shared.weight"; });
  });
  EXPECT_TRUE(
      throws_error([&] { load_t5_model(model()); }, ErrorKind::kNotFound, {"'shared.weight'"}));
}

TEST_F(T5ModelFiles, UntiedModelWithoutLmHeadIsNotFound) {
  copy_model(gated_, model_, [](std::vector<NamedTensor>& tensors) {
    std::erase_if(tensors, [](const NamedTensor& t) { return t.name == "lm_head.weight"; });
  });
  EXPECT_TRUE(throws_error([&] { load_t5_model(model()); }, ErrorKind::kNotFound,
                           {"tensor 'lm_head.weight' not found in " + model()}));
}

TEST_F(T5ModelFiles, TransposedTensorIsFormatError) {
  // [d_ff, d_model] = [64, 32] stored transposed, as a converter bug would.
  const std::string name = "encoder.block.1.layer.1.DenseReluDense.wi.weight";
  copy_model(relu_, model_, [&](std::vector<NamedTensor>& tensors) {
    NamedTensor& t = find_tensor(tensors, name);
    ASSERT_EQ(t.shape, (std::vector<int64_t>{64, 32}));
    t.shape = {32, 64};
  });
  EXPECT_TRUE(
      throws_error([&] { load_t5_model(model()); }, ErrorKind::kFormat,
                   {"tensor '" + name + "' has wrong shape in model file " +
                    model_file("model.safetensors") + ": got [32, 64], expected [64, 32]"}));
}

TEST_F(T5ModelFiles, VectorStoredAsMatrixIsFormatError) {
  const std::string name = "decoder.final_layer_norm.weight";
  copy_model(gated_, model_, [&](std::vector<NamedTensor>& tensors) {
    find_tensor(tensors, name).shape = {1, 48};
  });
  EXPECT_TRUE(throws_error([&] { load_t5_model(model()); }, ErrorKind::kFormat,
                           {name, "has wrong shape", "got [1, 48], expected [48]"}));
}

TEST_F(T5ModelFiles, BartConfigIsFormatError) {
  copy_model(relu_, model_);
  testing::replace_in_file(model_file("config.json"), R"("model_type": "t5")",
                           R"("model_type": "bart")");
  EXPECT_TRUE(throws_error([&] { load_t5_model(model()); }, ErrorKind::kFormat,
                           {model_file("config.json"), "unsupported model_type 'bart'"}));
}

// Loads a copy of `case_dir` stored in `dtype` and checks that (1) every
// weight is exactly the F32 weight rounded to `dtype`, so the reader
// converts every value, and (2) the encoder output is within `bound` of the
// F32 model's (max |diff| / max |ref|).
void expect_half_copy_matches(const std::string& case_dir, const fs::path& dir, DType dtype,
                              double bound) {
  fs::create_directories(dir);
  fs::copy_file(fs::path(case_dir) / "config.json", dir / "config.json");
  ASSERT_NO_FATAL_FAILURE(
      testing::write_safetensors((dir / "model.safetensors").string(),
                                 testing::read_tensors(case_dir + "/model.safetensors"), dtype));
  const auto f32 = load_t5_model(case_dir);
  const auto half = load_t5_model(dir.string());
  const auto want = all_tensors(*f32);
  const auto got = all_tensors(*half);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Tensor& g = got[i].second;
    const Tensor& w = want[i].second;
    ASSERT_EQ(g.size(), w.size()) << got[i].first;
    int64_t mismatches = 0;
    for (int64_t j = 0; j < g.size(); ++j) {
      mismatches += g.data()[j] != testing::round_to_dtype(w.data()[j], dtype);
    }
    EXPECT_EQ(mismatches, 0) << got[i].first << " in " << dtype_name(dtype);
  }
  const double err = relative_error(encode(half), encode(f32));
  std::cout << "[half] " << fs::path(case_dir).filename().string() << " " << dtype_name(dtype)
            << ": encoder max|diff|/max|ref| = " << err << " (bound " << bound << ")\n";
  EXPECT_LE(err, bound);
  EXPECT_GT(err, 0.0) << "the copy was not rounded";
}

// Rounding a weight to F16 changes it by at most u = 2^-11 ≈ 4.9e-4 of its
// value (BF16: u = 2^-8 ≈ 3.9e-3). The fixtures' attention logits are of
// order 3 (README), so softmax amplifies the perturbed q·k several times;
// observed over the two encoder blocks: 4.5u and 9.2u (F16), 4.0u and 4.5u
// (BF16). 20u leaves room for another BLAS's summation order while a wrong
// conversion (a factor off, swapped bytes: errors of order 1) fails.
constexpr double kF16Bound = 20 * 4.9e-4;
constexpr double kBF16Bound = 20 * 3.9e-3;

TEST_F(T5ModelFiles, F16CopyMatchesF32) {
  expect_half_copy_matches(relu_, tmp_.path() / "relu", DType::kF16, kF16Bound);
  expect_half_copy_matches(gated_, tmp_.path() / "gated", DType::kF16, kF16Bound);
}

TEST_F(T5ModelFiles, BF16CopyMatchesF32) {
  expect_half_copy_matches(relu_, tmp_.path() / "relu", DType::kBF16, kBF16Bound);
  expect_half_copy_matches(gated_, tmp_.path() / "gated", DType::kBF16, kBF16Bound);
}

TEST_F(T5ModelFiles, ShardedCopyEqualsSingleFile) {
  for (const std::string& case_dir : {relu_, gated_}) {
    const fs::path dir = tmp_.path() / fs::path(case_dir).filename();
    copy_model(case_dir, dir);
    fs::remove(dir / "model.safetensors");
    ASSERT_NO_FATAL_FAILURE(
        testing::write_sharded(dir, testing::read_tensors(case_dir + "/model.safetensors"), 2));
    const auto single = load_t5_model(case_dir);
    const auto sharded = load_t5_model(dir.string());
    const auto want = all_tensors(*single);
    const auto got = all_tensors(*sharded);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const Tensor& g = got[i].second;
      const Tensor& w = want[i].second;
      ASSERT_EQ(g.rows(), w.rows()) << got[i].first;
      ASSERT_EQ(g.cols(), w.cols()) << got[i].first;
      EXPECT_TRUE(std::equal(g.data(), g.data() + g.size(), w.data())) << got[i].first;
    }
    GenerationOptions options;
    options.max_new_tokens = 8;
    options.num_beams = 3;
    const TextGeneration a = generate_text(single, "", kIds, options);
    const TextGeneration b = generate_text(sharded, "", kIds, options);
    EXPECT_EQ(a.output_ids, b.output_ids);
    EXPECT_EQ(a.score, b.score);
    EXPECT_EQ(relative_error(encode(sharded), encode(single)), 0.0);
  }
}

TEST_F(T5ModelFiles, MissingShardIsNotFound) {
  copy_model(relu_, model_);
  fs::remove(model_ / "model.safetensors");
  ASSERT_NO_FATAL_FAILURE(
      testing::write_sharded(model_, testing::read_tensors(relu_ + "/model.safetensors"), 2));
  fs::remove(model_ / "model-00002-of-00002.safetensors");
  EXPECT_TRUE(throws_error(
      [&] { load_t5_model(model()); }, ErrorKind::kNotFound,
      {model_file("model-00002-of-00002.safetensors"), "model.safetensors.index.json"}));
}

TEST_F(T5ModelFiles, FingerprintFollowsTheFiles) {
  // Both copies go through write_safetensors, so they differ in the one value only.
  copy_model(relu_, model_, [](std::vector<NamedTensor>&) {});
  const std::string first = load_t5_model(model())->fingerprint;
  EXPECT_EQ(first.size(), 16u);
  EXPECT_EQ(load_t5_model(model())->fingerprint, first);

  copy_model(relu_, model_, [](std::vector<NamedTensor>& tensors) {
    find_tensor(tensors, "encoder.block.1.layer.0.SelfAttention.v.weight").values[7] += 0.01f;
  });
  const std::string changed_weight = load_t5_model(model())->fingerprint;
  EXPECT_NE(changed_weight, first);

  testing::replace_in_file(model_file("config.json"), R"("use_cache": true)",
                           R"("use_cache": false)");
  EXPECT_NE(load_t5_model(model())->fingerprint, changed_weight);
}

}  // namespace
}  // namespace kvrag

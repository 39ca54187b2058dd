// SentenceEmbedder (retriever/sentence_embedder.h) on the tiny random
// sentence-transformers fixture: its embeddings equal the ones
// training/make_embedder_fixture.py computed in PyTorch, and every folder in
// a wrong layout fails naming the file and what is wrong with it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "retriever/sentence_embedder.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;
using testing::kTinySentenceT5;
using testing::TempDir;
using testing::throws_error;

// PyTorch and kvrag both compute in float32 but sum in other orders (and
// kvrag pools and projects in double): components of a unit vector agree
// to a few float32 ulps of the encoder output, far inside this bound.
constexpr double kTolerance = 2e-6;

struct Reference {
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<float>> embeddings;
};

Reference read_reference() {
  const SafeTensorsFile file(kTinySentenceT5 + "/reference.safetensors");
  Reference r;
  for (const auto& t : nlohmann::json::parse(file.metadata().at("texts"))) {
    r.texts.push_back(t.get<std::string>());
  }
  const std::vector<float> all = file.read_f32("embedding");
  const int64_t dim = file.info("embedding").shape.at(1);
  for (size_t i = 0; i < r.texts.size(); ++i) {
    const std::vector<int64_t> ids = file.read_i64("input_ids." + std::to_string(i));
    r.ids.emplace_back(ids.begin(), ids.end());
    r.embeddings.emplace_back(all.begin() + static_cast<int64_t>(i) * dim,
                              all.begin() + static_cast<int64_t>(i + 1) * dim);
  }
  return r;
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, double tolerance,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t j = 0; j < got.size(); ++j)
    EXPECT_NEAR(got[j], want[j], tolerance) << what << " [" << j << "]";
}

TEST(SentenceEmbedder, MatchesTheReferenceEmbeddings) {
  const auto embedder = SentenceEmbedder::load(kTinySentenceT5);
  EXPECT_EQ(embedder->dim(), 24);  // Dense out_features, not d_model 32
  EXPECT_EQ(embedder->encoder_model().config.d_model, 32);
  EXPECT_EQ(embedder->max_seq_length(), 16);
  const Reference ref = read_reference();
  ASSERT_EQ(ref.texts.size(), 6u);
  std::vector<std::vector<int32_t>> batch;
  for (size_t i = 0; i < ref.texts.size(); ++i) {
    const std::vector<int32_t> ids = embedder->input_ids(ref.texts[i]);
    EXPECT_EQ(ids, ref.ids[i]) << ref.texts[i];
    EXPECT_EQ(ids.back(), 1) << "eos";
    const std::vector<float> e = embedder->embed(ids);
    expect_near(e, ref.embeddings[i], kTolerance, ref.texts[i]);
    double norm = 0.0;
    for (const float x : e) norm += double(x) * x;
    EXPECT_NEAR(norm, 1.0, 1e-6);
    batch.push_back(ids);
  }
  // The last text is longer than max_seq_length: cut to 15 tokens and eos.
  EXPECT_EQ(ref.ids.back().size(), 16u);
  // Encoded together (no padding work), each is what it is alone.
  const std::vector<std::vector<float>> together = embedder->embed_batch(batch);
  ASSERT_EQ(together.size(), batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    expect_near(together[i], embedder->embed(batch[i]), 1e-6, "batch " + std::to_string(i));
  }
}

// A writable copy of the fixture for a test to break.
class SentenceEmbedderLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::copy(kTinySentenceT5, dir_, fs::copy_options::recursive);
    for (const auto& entry : fs::recursive_directory_iterator(dir_)) {
      fs::permissions(entry.path(), fs::perms::owner_all, fs::perm_options::add);
    }
  }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  // The copy's fingerprint (loading it).
  std::string fingerprint() const { return SentenceEmbedder::load(dir_.string())->fingerprint(); }
  ::testing::AssertionResult load_fails(ErrorKind kind, const std::vector<std::string>& parts) {
    return throws_error([&] { SentenceEmbedder::load(dir_.string()); }, kind, parts);
  }
  // Rewrites 2_Dense/model.safetensors with `edit` applied to its tensors.
  void edit_dense(const std::function<void(std::vector<testing::NamedTensor>&)>& edit) {
    std::vector<testing::NamedTensor> tensors =
        testing::read_tensors(file("2_Dense/model.safetensors"));
    edit(tensors);
    testing::write_safetensors(file("2_Dense/model.safetensors"), tensors);
  }

  TempDir tmp_{"kvrag_test_embedder"};
  fs::path dir_ = tmp_.path() / "embedder";
};

TEST_F(SentenceEmbedderLayout, FingerprintFollowsTheContentNotThePath) {
  const std::string original = SentenceEmbedder::load(kTinySentenceT5)->fingerprint();
  EXPECT_EQ(fingerprint(), original);
  testing::replace_in_file(file("sentence_bert_config.json"), "16", "12");
  const std::string shorter = fingerprint();
  EXPECT_NE(shorter, original);
  edit_dense([](std::vector<testing::NamedTensor>& t) {
    testing::find_tensor(t, "linear.bias").values[0] += 0.5f;
  });
  EXPECT_NE(fingerprint(), shorter);
}

TEST_F(SentenceEmbedderLayout, MissingFilesAreNamed) {
  EXPECT_TRUE(throws_error([&] { SentenceEmbedder::load(file("nowhere")); }, ErrorKind::kNotFound,
                           {"nowhere: no such embedder folder"}));
  // Removed in the reverse of the order they are read, so that each is the
  // first missing file.
  fs::remove(file("2_Dense/model.safetensors"));
  EXPECT_TRUE(load_fails(ErrorKind::kNotFound,
                         {"2_Dense/model.safetensors: no such file (the Dense weights"}));
  fs::remove(file("sentence_bert_config.json"));
  EXPECT_TRUE(load_fails(ErrorKind::kNotFound, {"sentence_bert_config.json: no such file"}));
  fs::remove(file("1_Pooling/config.json"));
  EXPECT_TRUE(load_fails(ErrorKind::kNotFound, {"1_Pooling/config.json: no such file"}));
  fs::remove(file("modules.json"));
  EXPECT_TRUE(load_fails(ErrorKind::kNotFound, {"modules.json: no such file",
                                                "an embedder folder is a "
                                                "sentence-transformers model"}));
}

TEST_F(SentenceEmbedderLayout, TheEncoderNeedsItsTokenizerAndWeights) {
  fs::remove(file("spiece.model"));
  EXPECT_TRUE(load_fails(ErrorKind::kNotFound, {"spiece.model: no such file"}));
  fs::remove(file("model.safetensors"));
  EXPECT_TRUE(load_fails(ErrorKind::kNotFound, {"model.safetensors"}));
}

TEST_F(SentenceEmbedderLayout, UnsupportedModulesAreNamed) {
  testing::replace_in_file(file("modules.json"), "models.Dense", "models.LayerNorm");
  EXPECT_TRUE(load_fails(ErrorKind::kFormat,
                         {"modules.json: module 2 is 'sentence_transformers.models.LayerNorm'",
                          "kvrag reads Transformer (a T5 encoder), Pooling (mean)"}));
  testing::write_text(file("modules.json"),
                      R"([{"idx": 0, "name": "0", "path": "1_Pooling",
                           "type": "sentence_transformers.models.Pooling"}])");
  EXPECT_TRUE(load_fails(ErrorKind::kFormat,
                         {"modules.json: module 0 is 'sentence_transformers.models.Pooling'"}));
  testing::write_text(file("modules.json"),
                      R"([{"idx": 0, "name": "0", "path": "",
                           "type": "sentence_transformers.models.Transformer"}])");
  EXPECT_TRUE(load_fails(ErrorKind::kFormat, {"modules.json: no Pooling module"}));
}

TEST_F(SentenceEmbedderLayout, OnlyMeanPooling) {
  testing::replace_in_file(file("1_Pooling/config.json"), R"("pooling_mode_cls_token": false)",
                           R"("pooling_mode_cls_token": true)");
  EXPECT_TRUE(
      load_fails(ErrorKind::kFormat, {"1_Pooling/config.json: pooling_mode_cls_token is true",
                                      "kvrag pools by the mean of the tokens only"}));
  testing::replace_in_file(file("1_Pooling/config.json"), R"("pooling_mode_mean_tokens": true)",
                           R"("pooling_mode_mean_tokens": false)");
  EXPECT_TRUE(load_fails(ErrorKind::kFormat,
                         {"1_Pooling/config.json: pooling_mode_mean_tokens is not true"}));
}

TEST_F(SentenceEmbedderLayout, DenseShapesMustAgree) {
  testing::replace_in_file(file("2_Dense/config.json"), R"("in_features": 32)",
                           R"("in_features": 48)");
  EXPECT_TRUE(load_fails(ErrorKind::kFormat,
                         {"2_Dense/config.json: in_features 48 differs from d_model 32"}));
  testing::replace_in_file(file("2_Dense/config.json"), R"("in_features": 48)",
                           R"("in_features": 32)");
  testing::replace_in_file(file("2_Dense/config.json"), R"("out_features": 24)",
                           R"("out_features": 20)");
  EXPECT_TRUE(load_fails(ErrorKind::kFormat,
                         {"tensor 'linear.weight' has wrong shape in model file",
                          "2_Dense/model.safetensors: got [24, 32], expected [20, 32]"}));
}

TEST_F(SentenceEmbedderLayout, DenseBiasAndActivation) {
  edit_dense([](std::vector<testing::NamedTensor>& t) {
    t.erase(std::remove_if(t.begin(), t.end(),
                           [](const testing::NamedTensor& x) { return x.name == "linear.bias"; }),
            t.end());
  });
  EXPECT_TRUE(load_fails(ErrorKind::kNotFound, {"tensor 'linear.bias' not found"}));
  testing::replace_in_file(file("2_Dense/config.json"), R"("bias": true)", R"("bias": false)");
  EXPECT_NE(fingerprint(), "");  // GTR-T5's Dense has no bias
  testing::replace_in_file(file("2_Dense/config.json"), "torch.nn.modules.linear.Identity",
                           "torch.nn.modules.activation.Tanh");
  EXPECT_TRUE(
      load_fails(ErrorKind::kFormat, {"2_Dense/config.json: activation_function "
                                      "\"torch.nn.modules.activation.Tanh\" is not supported"}));
}

TEST_F(SentenceEmbedderLayout, NonFiniteWeightsAreRefused) {
  edit_dense([](std::vector<testing::NamedTensor>& t) {
    testing::find_tensor(t, "linear.weight").values[5] = std::numeric_limits<float>::quiet_NaN();
  });
  EXPECT_TRUE(
      load_fails(ErrorKind::kFormat, {"tensor 'linear.weight' in model file",
                                      "2_Dense/model.safetensors", "at index 5", "NaN or Inf"}));
}

TEST_F(SentenceEmbedderLayout, BadSizesAreNamed) {
  testing::replace_in_file(file("sentence_bert_config.json"), "16", "0");
  EXPECT_TRUE(load_fails(ErrorKind::kFormat,
                         {"sentence_bert_config.json: 'max_seq_length' must be an integer in "
                          "1..1048576, got 0"}));
  testing::replace_in_file(file("sentence_bert_config.json"), "0", "16");
  testing::replace_in_file(file("1_Pooling/config.json"), R"("word_embedding_dimension": 32)",
                           R"("word_embedding_dimension": 64)");
  EXPECT_TRUE(load_fails(ErrorKind::kFormat,
                         {"the Pooling module's word_embedding_dimension 64 differs from "
                          "d_model 32"}));
}

}  // namespace
}  // namespace kvrag

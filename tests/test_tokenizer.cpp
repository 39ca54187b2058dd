// The SentencePiece tokenizer, on a tiny model trained at test time with
// T5's special ids (pad 0, eos 1, unk 2, no bos).
#include <gtest/gtest.h>

#include <filesystem>

#include "decoder/t5_model.h"
#include "encoder/tokenizer.h"
#include "tests/fixtures.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;
using testing::throws_error;

constexpr int kVocab = 64;

// One trained model for the whole suite: training takes a moment.
class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new testing::TempDir("kvrag_test_tokenizer");
    testing::train_tiny_spiece(tmp_->file("spiece.model"), kVocab);
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(fs::exists(tmp_->file("spiece.model"))) << "training failed";
    tokenizer_ = std::make_unique<Tokenizer>(tmp_->file("spiece.model"));
  }

  static testing::TempDir* tmp_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

testing::TempDir* TokenizerTest::tmp_ = nullptr;

TEST_F(TokenizerTest, VocabularySize) { EXPECT_EQ(tokenizer_->vocab_size(), kVocab); }

TEST_F(TokenizerTest, EncodeDecodeRoundTrip) {
  for (const std::string& text : {std::string(testing::kTinySpieceSentence),
                                  std::string("the model reads the question"), std::string("a")}) {
    const std::vector<int32_t> ids = tokenizer_->encode(text);
    ASSERT_FALSE(ids.empty()) << text;
    for (const int32_t id : ids) {
      // No pad, no eos (callers append it), no unk for words of the corpus.
      EXPECT_GT(id, 2) << text;
      EXPECT_LT(id, kVocab) << text;
    }
    EXPECT_EQ(tokenizer_->decode(ids), text);
  }
}

TEST_F(TokenizerTest, UnknownCharactersBecomeUnk) {
  const std::vector<int32_t> ids = tokenizer_->encode("### the");
  EXPECT_NE(std::find(ids.begin(), ids.end(), 2), ids.end());
}

TEST_F(TokenizerTest, EmptyTextHasNoIds) {
  EXPECT_TRUE(tokenizer_->encode("").empty());
  EXPECT_EQ(tokenizer_->decode({}), "");
}

TEST_F(TokenizerTest, DecodeSkipsPadAndEos) {
  const std::vector<int32_t> ids = tokenizer_->encode(testing::kTinySpieceSentence);
  // As generation returns them: a pad start, the tokens, eos, then padding.
  std::vector<int32_t> generated = {0};
  generated.insert(generated.end(), ids.begin(), ids.end());
  generated.insert(generated.end(), {1, 0, 0});
  EXPECT_EQ(tokenizer_->decode(generated), testing::kTinySpieceSentence);
  EXPECT_EQ(tokenizer_->decode({0, 1, 0}), "");
}

TEST_F(TokenizerTest, DecodeSkipsIdsOutsideTheVocabulary) {
  // A model's vocabulary may be larger than its tokenizer's (T5: 32128 vs
  // 32100), and an untrained model may generate those ids.
  const std::vector<int32_t> ids = tokenizer_->encode("the lazy dog");
  std::vector<int32_t> with_extra = ids;
  with_extra.insert(with_extra.begin() + 1, kVocab + 5);
  with_extra.push_back(-3);
  EXPECT_EQ(tokenizer_->decode(with_extra), "the lazy dog");
}

TEST_F(TokenizerTest, StreamedPiecesConcatenateToTheDecode) {
  const std::string text = testing::kTinySpieceSentence;
  std::vector<int32_t> ids = {0};  // the decoder start token, as streamed
  const std::vector<int32_t> encoded = tokenizer_->encode(text);
  ids.insert(ids.end(), encoded.begin(), encoded.end());
  ids.push_back(1);
  std::vector<int32_t> prefix;
  std::string streamed;
  int pieces = 0;
  for (const int32_t id : ids) {
    const std::string piece = tokenizer_->piece_text(prefix, id);
    pieces += !piece.empty();
    streamed += piece;
    prefix.push_back(id);
    EXPECT_EQ(streamed, tokenizer_->decode(prefix)) << "after id " << id;
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(pieces, static_cast<int>(encoded.size()));
  EXPECT_EQ(tokenizer_->piece_text(encoded, 1), "");
  EXPECT_EQ(tokenizer_->piece_text(encoded, 0), "");
}

TEST_F(TokenizerTest, MovedTokenizerStillWorks) {
  Tokenizer moved = std::move(*tokenizer_);
  EXPECT_EQ(moved.decode(moved.encode("the quick dog")), "the quick dog");
}

TEST(TokenizerFile, MissingFileIsNotFound) {
  const testing::TempDir tmp("kvrag_test_tokenizer");
  const std::string path = tmp.file("spiece.model");
  EXPECT_TRUE(
      throws_error([&] { Tokenizer t(path); }, ErrorKind::kNotFound, {path, "no such file"}));
}

TEST(TokenizerFile, GarbageFileIsFormatError) {
  const testing::TempDir tmp("kvrag_test_tokenizer");
  const std::string path = tmp.file("spiece.model");
  testing::write_text(path, "this is not a protobuf \x01\x02\x03\xff");
  EXPECT_TRUE(throws_error([&] { Tokenizer t(path); }, ErrorKind::kFormat,
                           {path, "not a SentencePiece model"}));
  testing::write_text(path, "");
  EXPECT_TRUE(throws_error([&] { Tokenizer t(path); }, ErrorKind::kFormat, {path}));
}

// A model folder with spiece.model gets a tokenizer; one without says so.
TEST(TokenizerFile, ModelFolderTokenizer) {
  const std::string relu = testing::fixture_case("t5v1_relu_tied");
  if (relu.empty()) KVRAG_SKIP_OR_FAIL("no T5 fixtures under " + testing::t5_fixtures_dir());
  const testing::TempDir tmp("kvrag_test_tokenizer");
  const fs::path dir = tmp.path() / "model";
  testing::copy_model(relu, dir);

  const auto without = load_t5_model(dir.string());
  EXPECT_FALSE(without->tokenizer.has_value());
  EXPECT_TRUE(throws_error([&] { without->require_tokenizer(); }, ErrorKind::kNotFound,
                           {(dir / "spiece.model").string()}));

  ASSERT_NO_FATAL_FAILURE(testing::train_tiny_spiece((dir / "spiece.model").string(), kVocab));
  const auto with = load_t5_model(dir.string());
  ASSERT_TRUE(with->tokenizer.has_value());
  EXPECT_EQ(with->require_tokenizer().vocab_size(), kVocab);

  testing::write_text((dir / "spiece.model").string(), "garbage");
  EXPECT_TRUE(throws_error([&] { load_t5_model(dir.string()); }, ErrorKind::kFormat,
                           {(dir / "spiece.model").string()}));
}

}  // namespace
}  // namespace kvrag

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "encoder/t5_config.h"

namespace kvrag {
namespace {

using ::testing::HasSubstr;

TEST(T5Config, DefaultsFollowTransformers) {
  const T5Config c = parse_t5_config(R"({"model_type": "t5", "num_layers": 3})", "cfg");
  EXPECT_EQ(c.num_decoder_layers, 3) << "absent num_decoder_layers means num_layers";
  EXPECT_TRUE(c.tie_word_embeddings) << "absent tie_word_embeddings means true";
  EXPECT_EQ(c.activation, Activation::kRelu);
  EXPECT_FALSE(c.is_gated_act);
  EXPECT_EQ(c.decoder_start_token_id, 0);
  EXPECT_FLOAT_EQ(c.layer_norm_epsilon, 1e-6f);
  EXPECT_EQ(c.retrieval_temperature, 0.0f) << "a Hugging Face checkpoint declares none";
}

TEST(T5Config, ReadsTheRetrievalTemperatureKvragTrainedWith) {
  const T5Config c =
      parse_t5_config(R"({"model_type": "t5", "kvrag_retrieval_temperature": 0.05})", "cfg");
  EXPECT_FLOAT_EQ(c.retrieval_temperature, 0.05f);
}

TEST(T5Config, GatedGeluIsTanhGelu) {
  const T5Config c = parse_t5_config(
      R"({"model_type": "t5", "feed_forward_proj": "gated-gelu", "d_kv": 12, "num_heads": 3,
          "d_model": 48, "tie_word_embeddings": false})",
      "cfg");
  EXPECT_TRUE(c.is_gated_act);
  EXPECT_EQ(c.activation, Activation::kGeluTanh);
  EXPECT_EQ(c.inner_dim(), 36);
  EXPECT_FALSE(c.tie_word_embeddings);
}

void expect_format_error(const std::string& json, const std::string& phrase) {
  try {
    parse_t5_config(json, "my/config.json");
    FAIL() << "accepted " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_THAT(e.what(), HasSubstr("my/config.json"));
    EXPECT_THAT(e.what(), HasSubstr(phrase));
  }
}

TEST(T5Config, RejectsWhatItCannotRun) {
  expect_format_error("{not json", "invalid JSON");
  expect_format_error(R"({"model_type": "t5", "layer_norm_epsilon": 1e999})",
                      "field 'layer_norm_epsilon': number 1e999 is out of range");
  expect_format_error(R"({"model_type": "bart"})", "unsupported model_type 'bart'");
  expect_format_error(R"({"d_model": 4})", "model_type");
  expect_format_error(R"({"model_type": "t5", "feed_forward_proj": "gated-silu"})",
                      "unsupported feed_forward_proj 'gated-silu'");
  expect_format_error(R"({"model_type": "t5", "d_model": "512"})", "'d_model' must be an integer");
  expect_format_error(R"({"model_type": "t5", "num_heads": 0})", "'num_heads' must be positive");
  expect_format_error(R"({"model_type": "t5", "layer_norm_epsilon": 0})",
                      "'layer_norm_epsilon' must be a positive number, got 0");
  expect_format_error(R"({"model_type": "t5", "kvrag_retrieval_temperature": -1})",
                      "'kvrag_retrieval_temperature' must be a positive number, got -1");
  expect_format_error(R"({"model_type": "t5", "tie_word_embeddings": 1})",
                      "'tie_word_embeddings' must be true or false");
  expect_format_error(R"({"model_type": "t5", "vocab_size": 10, "eos_token_id": 12})",
                      "outside the vocabulary");
  // With 32 buckets the decoder's log-spaced ones start at 16: a distance of
  // 16 divided by log(1) and read the bias table out of bounds.
  for (const char* distance : {"16", "4"}) {
    expect_format_error(
        str_cat(R"({"model_type": "t5", "relative_attention_max_distance": )", distance, "}"),
        str_cat("'relative_attention_max_distance' (", distance,
                ") must be more than half of 'relative_attention_num_buckets' (32)"));
  }
  EXPECT_EQ(parse_t5_config(R"({"model_type": "t5", "relative_attention_max_distance": 17})", "cfg")
                .relative_attention_max_distance,
            17);
}

TEST(T5Config, AbsurdSizesAreAConfigErrorNamingTheField) {
  expect_format_error(R"({"model_type": "t5", "num_decoder_layers": 100000000})",
                      "'num_decoder_layers' must be in 1..1024, got 100000000 (more than any T5 "
                      "model has; is config.json damaged?)");
  expect_format_error(R"({"model_type": "t5", "num_layers": 5000})", "'num_layers' must be in");
  expect_format_error(R"({"model_type": "t5", "d_model": 9223372036854775807})",
                      "'d_model' must be in 1..1048576");
  expect_format_error(R"({"model_type": "t5", "vocab_size": 18446744073709551615})",
                      "'vocab_size' must be in 1..16777216");
  expect_format_error(R"({"model_type": "t5", "num_heads": 4096, "d_kv": 1024})",
                      "num_heads × d_kv = 4096 × 1024 is more than 1048576");
  // The largest real ones still load: T5-11B and mT5-XXL sizes.
  const T5Config c = parse_t5_config(
      R"({"model_type": "t5", "d_ff": 65536, "num_heads": 128, "d_kv": 128, "d_model": 1024,
          "vocab_size": 250112, "num_layers": 24})",
      "cfg");
  EXPECT_EQ(c.d_ff, 65536);
}

TEST(T5Config, MissingFileIsNotFound) {
  try {
    load_t5_config("/nonexistent/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/config.json: no such file"));
  }
}

}  // namespace
}  // namespace kvrag

// SQuAD v1.1 scoring: normalisation, exact match, token F1, answer-bearing
// chunks. Expected values are what the official evaluate-v1.1.py gives.
#include <gtest/gtest.h>

#include "model_files.h"
#include "pipeline/evaluation.h"
#include "pipeline/qa_metrics.h"

namespace kvrag {
namespace {

TEST(QaMetrics, NormalisesLikeSquad) {
  EXPECT_EQ(normalize_answer("The  Mount-Yydyst!"), "mountyydyst");
  EXPECT_EQ(normalize_answer("  a river, AN island and the sea.  "), "river island and sea");
  // Articles go only as whole words, after punctuation is removed.
  EXPECT_EQ(normalize_answer("Theatre (the.)"), "theatre");
  EXPECT_EQ(normalize_answer("93,034"), "93034");
  EXPECT_EQ(normalize_answer("\tLine\none\r\n"), "line one");
  EXPECT_EQ(normalize_answer("The"), "");
  EXPECT_EQ(answer_tokens("1677 Kilometres long"),
            (std::vector<std::string>{"1677", "kilometres", "long"}));
}

TEST(QaMetrics, ExactMatchTakesTheBestGold) {
  EXPECT_EQ(exact_match("the Violin strings.", {"violin strings"}), 1.0);
  EXPECT_EQ(exact_match("violin", {"violin strings"}), 0.0);
  EXPECT_EQ(exact_match("1725", {"1724", "1725"}), 1.0);
  EXPECT_TRUE(testing::throws_error([] { exact_match("x", {}); }, ErrorKind::kInvalidArgument,
                                    {"answers", "at least one"}));
}

TEST(QaMetrics, TokenF1CountsSharedWords) {
  EXPECT_DOUBLE_EQ(token_f1("Konrad Draerk", {"Konrad Draerk"}), 1.0);
  // P = 1/3, R = 1/2: F1 = 2·(1/6)/(5/6) = 0.4.
  EXPECT_DOUBLE_EQ(token_f1("Konrad the merchant Smith", {"Konrad Draerk"}), 0.4);
  // Repeated words count only as often as the gold has them: P = 1/2, R = 1.
  EXPECT_NEAR(token_f1("river river", {"river"}), 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(token_f1("nothing shared", {"1725"}), 0.0);
  EXPECT_DOUBLE_EQ(token_f1("1677 kilometres", {"321", "1677 km", "1677 kilometres"}), 1.0);
  // Empty after normalisation: 1 only when both are empty.
  EXPECT_DOUBLE_EQ(token_f1("the", {"a"}), 1.0);
  EXPECT_DOUBLE_EQ(token_f1("", {"1725"}), 0.0);
}

TEST(QaMetrics, AnswerBearingChunkNeedsWholeWords) {
  const std::string chunk = "It is 1677 kilometres long. Bettina Olei charted it in 1725.";
  EXPECT_TRUE(contains_answer(chunk, {"1677 Kilometres"}));
  EXPECT_TRUE(contains_answer(chunk, {"nobody", "bettina olei"}));
  EXPECT_FALSE(contains_answer(chunk, {"172"}));
  EXPECT_FALSE(contains_answer(chunk, {"the"}));  // nothing left after normalisation
}

}  // namespace
}  // namespace kvrag

// The passage prior's arithmetic (pipeline/passage_prior.h): log(k · p) of
// the softmax at the given temperature, computed stably, and the per-position
// bias that puts each chunk's weight on its span; and their refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "pipeline/passage_prior.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {

using testing::throws_error;

TEST(PassagePrior, LogWeightsAreLogKTimesTheSoftmax) {
  const std::vector<double> similarities{0.9, 0.5, 0.7};
  const double temperature = 0.1;
  double sum = 0.0;
  for (const double s : similarities) sum += std::exp(s / temperature);
  const std::vector<float> weights = passage_log_weights(similarities, temperature);
  ASSERT_EQ(weights.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const double p = std::exp(similarities[i] / temperature) / sum;
    EXPECT_NEAR(weights[i], std::log(3.0 * p), 1e-6) << i;
  }
}

TEST(PassagePrior, EqualSimilaritiesWeighNothing) {
  for (const float w : passage_log_weights(std::vector<double>{0.3, 0.3, 0.3, 0.3}, 0.05)) {
    EXPECT_NEAR(w, 0.0f, 1e-6);
  }
  EXPECT_TRUE(passage_log_weights(std::vector<double>{}, 0.05).empty());
}

// exp(1/0.0001) overflows a double: the largest logit is subtracted first.
TEST(PassagePrior, SharpTemperaturesStayFinite) {
  const std::vector<float> weights = passage_log_weights(std::vector<double>{1.0, 0.0}, 1e-4);
  EXPECT_NEAR(weights[0], std::log(2.0), 1e-6);
  EXPECT_TRUE(std::isfinite(weights[1]));
  EXPECT_NEAR(weights[1], std::log(2.0) - 1e4, 1e-2);
}

TEST(PassagePrior, RefusesATemperatureOrSimilarityItCannotUse) {
  EXPECT_TRUE(throws_error([] { passage_log_weights(std::vector<double>{0.1}, 0.0); },
                           ErrorKind::kInvalidArgument, {"temperature must be > 0, got 0"}));
  const std::vector<double> damaged{0.1, std::numeric_limits<double>::quiet_NaN()};
  EXPECT_TRUE(throws_error([&] { passage_log_weights(damaged, 0.05); },
                           ErrorKind::kInvalidArgument,
                           {"similarity of passage 1", "not finite", "damaged embedding"}));
}

TEST(PassagePrior, BiasPutsEachWeightOnItsSpan) {
  const std::vector<std::pair<int64_t, int64_t>> spans{{3, 5}, {5, 9}};
  const std::vector<float> weights{0.5f, -2.0f};
  EXPECT_EQ(passage_bias(10, spans, weights),
            (std::vector<float>{0, 0, 0, 0.5f, 0.5f, -2, -2, -2, -2, 0}));
}

TEST(PassagePrior, RefusesSpansThatDoNotFit) {
  const std::vector<std::pair<int64_t, int64_t>> spans{{3, 5}, {5, 11}};
  EXPECT_TRUE(throws_error([&] { passage_bias(10, spans, std::vector<float>{0.0f}); },
                           ErrorKind::kInvalidArgument, {"2 passage spans and 1 passage weights"}));
  EXPECT_TRUE(throws_error([&] { passage_bias(10, spans, std::vector<float>{0.0f, 0.0f}); },
                           ErrorKind::kInvalidArgument,
                           {"passage 1 spans [5, 11) of a memory of 10 tokens"}));
}

}  // namespace
}  // namespace kvrag

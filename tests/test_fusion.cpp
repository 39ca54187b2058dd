#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "retriever/fusion.h"

namespace kvrag {
namespace {

using Ranked = std::vector<std::pair<int64_t, double>>;

std::vector<int64_t> ids_of(const Ranked& list) {
  std::vector<int64_t> out;
  for (const auto& [id, score] : list) out.push_back(id);
  return out;
}

TEST(Fusion, ScoresAreSummedReciprocalRanks) {
  // Scores of the inputs are on different scales and must not matter.
  const Ranked dense = {{10, 0.91}, {20, 0.90}, {30, 0.10}};
  const Ranked bm25 = {{30, 25.0}, {10, 3.0}};
  const Ranked fused = reciprocal_rank_fusion({dense, bm25});
  ASSERT_EQ(fused.size(), 3u);
  EXPECT_EQ(ids_of(fused), (std::vector<int64_t>{10, 30, 20}));
  EXPECT_DOUBLE_EQ(fused[0].second, 1.0 / 61 + 1.0 / 62);  // ranks 1 and 2
  EXPECT_DOUBLE_EQ(fused[1].second, 1.0 / 63 + 1.0 / 61);  // ranks 3 and 1
  EXPECT_DOUBLE_EQ(fused[2].second, 1.0 / 62);             // rank 2, one list
}

TEST(Fusion, AgreementBeatsOneTopHit) {
  // 5 is second in both lists; 1 and 2 are first in one list only.
  const Ranked fused = reciprocal_rank_fusion({{{1, 9.0}, {5, 8.0}}, {{2, 9.0}, {5, 8.0}}});
  EXPECT_EQ(ids_of(fused), (std::vector<int64_t>{5, 1, 2}));
}

TEST(Fusion, TiesAreBrokenByAscendingId) {
  const Ranked a = reciprocal_rank_fusion({{{9, 1.0}, {4, 0.5}}, {{4, 1.0}, {9, 0.5}}});
  EXPECT_EQ(ids_of(a), (std::vector<int64_t>{4, 9}));
  const Ranked b = reciprocal_rank_fusion({{{4, 1.0}, {9, 0.5}}, {{9, 1.0}, {4, 0.5}}});
  EXPECT_EQ(a, b);
}

TEST(Fusion, RepeatedIdCountsAtItsFirstRankAndEmptyInputs) {
  const Ranked fused = reciprocal_rank_fusion({{{7, 1.0}, {7, 0.9}, {8, 0.8}}});
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_DOUBLE_EQ(fused[0].second, 1.0 / 61);
  EXPECT_DOUBLE_EQ(fused[1].second, 1.0 / 63);  // rank 3 of its list
  EXPECT_TRUE(reciprocal_rank_fusion({}).empty());
  EXPECT_TRUE(reciprocal_rank_fusion({{}, {}}).empty());
  EXPECT_EQ(ids_of(reciprocal_rank_fusion({{}, {{3, 1.0}}})), (std::vector<int64_t>{3}));
}

}  // namespace
}  // namespace kvrag

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "retriever/fusion.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {

using Ranked = std::vector<std::pair<int64_t, double>>;
using testing::throws_error;

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

TEST(Fusion, WeightsAndRankConstantScaleEachList) {
  const Ranked a = {{1, 0.0}, {2, 0.0}};
  const Ranked b = {{2, 0.0}, {3, 0.0}};
  const Ranked fused = reciprocal_rank_fusion({a, b}, {3.0, 1.0}, 1.0);
  ASSERT_EQ(fused.size(), 3u);
  EXPECT_EQ(ids_of(fused), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(fused[0].second, 3.0 / 2);            // rank 1 of a
  EXPECT_DOUBLE_EQ(fused[1].second, 3.0 / 3 + 1.0 / 2);  // rank 2 of a, rank 1 of b
  EXPECT_DOUBLE_EQ(fused[2].second, 1.0 / 3);            // rank 2 of b
  // Equal weights of 1 are the plain fusion.
  EXPECT_EQ(reciprocal_rank_fusion({a, b}, {1.0, 1.0}), reciprocal_rank_fusion({a, b}));
}

TEST(Fusion, BadWeightsOrRankConstantAreErrors) {
  const Ranked a = {{1, 0.0}};
  EXPECT_TRUE(throws_error(
      [&] {
        reciprocal_rank_fusion({a, a}, {1.0});
      },
      ErrorKind::kInvalidArgument, {"1 weights for 2 lists"}));
  EXPECT_TRUE(throws_error(
      [&] {
        reciprocal_rank_fusion({a, a}, {1.0, 0.0});
      },
      ErrorKind::kInvalidArgument, {"weight of list 1", "got 0"}));
  EXPECT_TRUE(throws_error([&] { reciprocal_rank_fusion({a}, {}, -1.0); },
                           ErrorKind::kInvalidArgument, {"rank constant", "got -1"}));
  EXPECT_TRUE(throws_error([&] { hybrid_fusion(a, a, 0); }, ErrorKind::kInvalidArgument,
                           {"k >= 1", "got 0"}));
}

// Dense ids 101..120 best first, as hybrid retrieval fetches them for k 5.
Ranked dense_candidates() {
  Ranked dense;
  for (int64_t id = 101; id <= 100 + hybrid_candidates(5); ++id) dense.emplace_back(id, 0.5);
  return dense;
}

TEST(Fusion, HybridLiftsADenseHitBm25RanksHigh) {
  // 999 is BM25's first but not among dense's candidates; 106, dense's 6th,
  // is BM25's second. Plain RRF (equal weights, k 60) lets 999 displace a
  // dense hit; the hybrid settings keep dense's top 4 and lift 106 past 105.
  const Ranked bm25 = {{999, 9.0}, {106, 8.0}, {150, 7.0}};
  Ranked plain = reciprocal_rank_fusion({dense_candidates(), bm25});
  plain.resize(5);
  EXPECT_EQ(ids_of(plain), (std::vector<int64_t>{106, 101, 999, 102, 103}));

  const Ranked hybrid = hybrid_fusion(dense_candidates(), bm25, 5);
  EXPECT_EQ(ids_of(hybrid), (std::vector<int64_t>{101, 102, 103, 104, 106}));
  EXPECT_DOUBLE_EQ(hybrid[4].second, kHybridDenseWeight / (kHybridRankConstant + 6) +
                                         kHybridBm25Weight / (kHybridRankConstant + 2));
}

TEST(Fusion, HybridKeepsDenseFirstAndShortListsGiveFewer) {
  // BM25 agreeing on dense's second does not outrank dense's first.
  const Ranked hybrid = hybrid_fusion(dense_candidates(), {{102, 9.0}, {101, 1.0}}, 1);
  EXPECT_EQ(ids_of(hybrid), (std::vector<int64_t>{101}));
  // BM25 alone (no dense hit at all) still ranks; fewer ids than k is fine.
  EXPECT_EQ(ids_of(hybrid_fusion({}, {{7, 2.0}, {8, 1.0}}, 5)), (std::vector<int64_t>{7, 8}));
}

}  // namespace
}  // namespace kvrag

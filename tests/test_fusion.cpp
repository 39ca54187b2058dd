#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "retriever/fusion.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {

using Ranked = std::vector<std::pair<int64_t, double>>;
using List = std::vector<Candidate>;
using testing::throws_error;

// 1/σ for scores whose MAD is 1: the unit of u in the cases below, which use
// dense scores {3, 2, 1} and BM25 scores {30, 20, 10} (median 2 resp. 20,
// MAD 1 resp. 10), so that u = {2a, a, 0} in both lists.
constexpr double a = 1.0 / kMadToSigma;
constexpr double kTol = 1e-12;

std::vector<int64_t> ids_of(const Ranked& list) {
  std::vector<int64_t> out;
  for (const auto& [id, score] : list) out.push_back(id);
  return out;
}

void expect_scores(const Ranked& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i].second, want[i], kTol) << "place " << i;
}

TEST(RobustShiftedZ, OddCountUsesTheMiddleScoreAndTheMad) {
  // median 3, |s − 3| = {2, 1, 0, 1, 2}, MAD 1: u = (s − 1) / 1.4826.
  const std::vector<double> u = robust_shifted_z({5, 4, 3, 2, 1});
  ASSERT_EQ(u.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(u[i], (4 - i) * a, kTol);
}

TEST(RobustShiftedZ, EvenCountAveragesTheTwoMiddleScores) {
  // median 2.5, |s − 2.5| = {5.5, 0.5, 0.5, 1.5}, MAD (0.5 + 1.5) / 2 = 1.
  const std::vector<double> u = robust_shifted_z({8, 3, 2, 1});
  ASSERT_EQ(u.size(), 4u);
  EXPECT_NEAR(u[0], 7 * a, kTol);
  EXPECT_NEAR(u[1], 2 * a, kTol);
  EXPECT_NEAR(u[2], 1 * a, kTol);
  EXPECT_EQ(u[3], 0.0);
}

TEST(RobustShiftedZ, ScaleFreeAndTiesAndNoSpread) {
  // Only the shape of the list counts, not the scale of the retriever's scores.
  const std::vector<double> small = robust_shifted_z({0.9, 0.5, 0.4, 0.1});
  const std::vector<double> large = robust_shifted_z({90, 50, 40, 10});
  for (size_t i = 0; i < small.size(); ++i) EXPECT_NEAR(small[i], large[i], 1e-9);
  // Tied scores get equal u; MAD 0 (more than half the scores equal) leaves
  // σ at its floor, 5 % of the range (0.1 here); no range at all: σ = 1.
  const std::vector<double> tied = robust_shifted_z({3, 3, 1});
  ASSERT_EQ(tied.size(), 3u);
  EXPECT_NEAR(tied[0], 20.0, kTol);
  EXPECT_NEAR(tied[1], 20.0, kTol);
  EXPECT_EQ(tied[2], 0.0);
  EXPECT_EQ(robust_shifted_z({2, 2, 2}), (std::vector<double>{0, 0, 0}));
}

TEST(RobustShiftedZ, AFewMatchesAmongNearZerosStayWithinTwentyOfTheLast) {
  // A small index: BM25's real matches among candidates that only share a
  // common word (scores ~1e-6, MAD ~1e-7). Without the floor the first u
  // would be about 1e8 and drown the dense list.
  const std::vector<double> u =
      robust_shifted_z({21.5, 3.5, 2e-6, 1.5e-6, 1.2e-6, 1.1e-6, 1e-6});
  ASSERT_EQ(u.size(), 7u);
  EXPECT_NEAR(u[0], 21.5 / (0.05 * (21.5 - 1e-6)), 1e-6);  // = 20
  EXPECT_NEAR(u[1], 3.5 / (0.05 * (21.5 - 1e-6)), 1e-6);
  EXPECT_LT(u[2], 1e-4);
}

TEST(RobustShiftedZ, ListsOfOneOrTwoScoresCountOneEach) {
  EXPECT_TRUE(robust_shifted_z({}).empty());
  EXPECT_EQ(robust_shifted_z({7}), (std::vector<double>{1}));
  EXPECT_EQ(robust_shifted_z({7, -3}), (std::vector<double>{1, 1}));
}

TEST(HybridFusion, AgreementOnTheTopDocumentWeighsDenseFour) {
  // Both lists start in document 10: dense weighs 4.
  const List dense = {{1, 10, 3}, {2, 20, 2}, {3, 30, 1}};
  const List bm25 = {{4, 10, 30}, {2, 20, 20}, {5, 50, 10}};
  const Ranked fused = hybrid_fusion(dense, bm25, 5);
  // 1: 4·2a; 2: 4·a + a; 4: 2a (missing from dense: 0 there); 3 and 5 score
  // 0 and are tied, so ascending chunk id.
  EXPECT_EQ(ids_of(fused), (std::vector<int64_t>{1, 2, 4, 3, 5}));
  expect_scores(fused, {8 * a, 5 * a, 2 * a, 0, 0});
}

TEST(HybridFusion, DisagreementWeighsDenseOneHalf) {
  // Dense starts in document 10, BM25 in document 50: dense weighs 0.5, and
  // BM25's first chunk leads.
  const List dense = {{1, 10, 3}, {2, 20, 2}, {3, 30, 1}};
  const List bm25 = {{5, 50, 30}, {2, 20, 20}, {4, 10, 10}};
  const Ranked fused = hybrid_fusion(dense, bm25, 5);
  EXPECT_EQ(ids_of(fused), (std::vector<int64_t>{5, 2, 1, 3, 4}));
  expect_scores(fused, {2 * a, 1.5 * a, a, 0, 0});
  // Cut to k.
  EXPECT_EQ(ids_of(hybrid_fusion(dense, bm25, 2)), (std::vector<int64_t>{5, 2}));
}

TEST(HybridFusion, DenseChoosesTheChunkWithinADocument) {
  // BM25 finds document 20 first, but through chunk 6; dense prefers chunk 2
  // of the same document. Fused order of chunks: 6 (2a), 1 (a), 7 (a), 2
  // (0.5a), 3, 8 (0): document 20 holds places 1 and 4, filled in dense
  // order: chunk 2 first, chunk 6 (not in dense's list) after.
  // (BM25 scores on dense's scale here, so that 1 and 7 tie exactly.)
  const List dense = {{1, 10, 3}, {2, 20, 2}, {3, 30, 1}};
  const List bm25 = {{6, 20, 3}, {7, 40, 2}, {8, 50, 1}};
  const Ranked fused = hybrid_fusion(dense, bm25, 6);
  EXPECT_EQ(ids_of(fused), (std::vector<int64_t>{2, 1, 7, 6, 3, 8}));
  // A chunk carries the score of the place it fills.
  expect_scores(fused, {2 * a, a, a, 0.5 * a, 0, 0});
  EXPECT_EQ(ids_of(hybrid_fusion(dense, bm25, 1)), (std::vector<int64_t>{2}));
}

TEST(HybridFusion, ShortListsCountOneForEachChunk) {
  // Lists of 1 or 2 chunks: u = 1 for each present chunk.
  const Ranked disagree = hybrid_fusion({{1, 10, 0.3}}, {{2, 20, 7.0}, {1, 10, 5.0}}, 5);
  EXPECT_EQ(ids_of(disagree), (std::vector<int64_t>{1, 2}));
  expect_scores(disagree, {0.5 + 1, 1});
  const Ranked agree = hybrid_fusion({{1, 10, 0.3}}, {{1, 10, 7.0}, {2, 20, 5.0}}, 5);
  EXPECT_EQ(ids_of(agree), (std::vector<int64_t>{1, 2}));
  expect_scores(agree, {4 + 1, 1});
}

TEST(HybridFusion, AnEmptyListLeavesTheOtherUnchanged) {
  const List bm25 = {{7, 70, 2.5}, {8, 80, 1.5}, {9, 90, 0.5}};
  EXPECT_EQ(hybrid_fusion({}, bm25, 2), (Ranked{{7, 2.5}, {8, 1.5}}));
  EXPECT_EQ(hybrid_fusion(bm25, {}, 5), (Ranked{{7, 2.5}, {8, 1.5}, {9, 0.5}}));
  EXPECT_TRUE(hybrid_fusion({}, {}, 5).empty());
}

TEST(HybridFusion, ARepeatedChunkCountsAtItsFirstPlace) {
  const List bm25 = {{5, 50, 30}, {2, 20, 20}, {4, 10, 10}};
  const List dense = {{1, 10, 3}, {2, 20, 2}, {3, 30, 1}};
  const List repeated = {{1, 10, 3}, {1, 10, 2.5}, {2, 20, 2}, {3, 30, 1}, {2, 20, 0.5}};
  EXPECT_EQ(hybrid_fusion(repeated, bm25, 5), hybrid_fusion(dense, bm25, 5));
}

TEST(HybridFusion, ReadsTheFirstHundredCandidatesOfEachList) {
  // Dense: 100 candidates scored 100..1, then 50 far below. Only the first
  // 100 are normalised: median 50.5, MAD 25, u of the first = 99 / (1.4826·25).
  List dense;
  for (int64_t i = 0; i < 150; ++i) dense.push_back({i + 1, i + 1, i < 100 ? 100.0 - i : -1000.0});
  ASSERT_EQ(hybrid_candidates(5), 100);
  ASSERT_EQ(hybrid_candidates(150), 150);
  const Ranked fused = hybrid_fusion(dense, {{9999, 9999, 1.0}}, 100);
  ASSERT_EQ(fused.size(), 100u);
  EXPECT_EQ(fused[0].first, 1);
  EXPECT_NEAR(fused[0].second, 0.5 * 99 / (kMadToSigma * 25), kTol);
  // BM25's one chunk scores 1 (u = 1, weight 1): below dense's chunks with
  // 0.5 (s − 1) / 37.065 > 1, i.e. s = 100..76, the first 25.
  EXPECT_EQ(fused[25].first, 9999);
  for (const auto& [id, score] : fused) EXPECT_TRUE(id <= 100 || id == 9999) << id;
}

TEST(HybridFusion, KBelowOneIsAnError) {
  EXPECT_TRUE(throws_error(
      [&] {
        hybrid_fusion({{1, 1, 1.0}}, {}, 0);
      },
      ErrorKind::kInvalidArgument, {"hybrid fusion needs k >= 1, got 0"}));
}

}  // namespace
}  // namespace kvrag

#include "retriever/fusion.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace kvrag {

std::vector<std::pair<int64_t, double>> reciprocal_rank_fusion(
    const std::vector<std::vector<std::pair<int64_t, double>>>& lists,
    const std::vector<double>& weights, double rank_constant) {
  KVRAG_CHECK(weights.empty() || weights.size() == lists.size(), kInvalidArgument, "RRF got ",
              weights.size(), " weights for ", lists.size(), " lists");
  KVRAG_CHECK(rank_constant >= 0.0, kInvalidArgument, "RRF rank constant must be >= 0, got ",
              rank_constant);
  std::unordered_map<int64_t, double> fused;
  for (size_t i = 0; i < lists.size(); ++i) {
    const double weight = weights.empty() ? 1.0 : weights[i];
    KVRAG_CHECK(weight > 0.0, kInvalidArgument, "RRF weight of list ", i, " must be > 0, got ",
                weight);
    std::unordered_set<int64_t> seen;
    const auto& list = lists[i];
    for (size_t rank = 0; rank < list.size(); ++rank) {
      const int64_t id = list[rank].first;
      if (!seen.insert(id).second) continue;
      fused[id] += weight / (rank_constant + static_cast<double>(rank + 1));
    }
  }
  std::vector<std::pair<int64_t, double>> out(fused.begin(), fused.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

std::vector<std::pair<int64_t, double>> hybrid_fusion(
    const std::vector<std::pair<int64_t, double>>& dense,
    const std::vector<std::pair<int64_t, double>>& bm25, int64_t k) {
  KVRAG_CHECK(k >= 1, kInvalidArgument, "hybrid fusion needs k >= 1, got ", k);
  std::vector<std::pair<int64_t, double>> fused = reciprocal_rank_fusion(
      {dense, bm25}, {kHybridDenseWeight, kHybridBm25Weight}, kHybridRankConstant);
  if (static_cast<int64_t>(fused.size()) > k) fused.resize(static_cast<size_t>(k));
  return fused;
}

}  // namespace kvrag

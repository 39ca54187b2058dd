#include "retriever/fusion.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace kvrag {

std::vector<std::pair<int64_t, double>> reciprocal_rank_fusion(
    const std::vector<std::vector<std::pair<int64_t, double>>>& lists) {
  std::unordered_map<int64_t, double> fused;
  for (const auto& list : lists) {
    std::unordered_set<int64_t> seen;
    for (size_t rank = 0; rank < list.size(); ++rank) {
      const int64_t id = list[rank].first;
      if (!seen.insert(id).second) continue;
      fused[id] += 1.0 / (kRrfK + static_cast<double>(rank + 1));
    }
  }
  std::vector<std::pair<int64_t, double>> out(fused.begin(), fused.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

}  // namespace kvrag

// Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) of ranked
// lists from different retrievers (dense inner product, BM25), whose scores
// are on incomparable scales: only ranks are used.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace kvrag {

// The constant k of RRF: an item at 1-based rank r in a list scores
// 1 / (kRrfK + r). 60 is the paper's value; it damps the weight of the very
// first ranks so that agreement between lists counts more than one top hit.
inline constexpr double kRrfK = 60.0;

// lists: each a list of (chunk id, score), best first (scores are ignored;
// an id repeated within one list counts at its first rank). Returns every id
// found in any list with its summed RRF score, best first; equal scores in
// ascending id order.
std::vector<std::pair<int64_t, double>> reciprocal_rank_fusion(
    const std::vector<std::vector<std::pair<int64_t, double>>>& lists);

}  // namespace kvrag

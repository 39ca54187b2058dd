#include "retriever/fusion.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace kvrag {
namespace {

// The median of `values` (reordered in place); values not empty.
double median(std::vector<double>& values) {
  const size_t n = values.size();
  const size_t mid = n / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (n % 2 == 1) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lower + upper);
}

// The first `depth` distinct chunks of a ranked list.
std::vector<Candidate> first_distinct(const std::vector<Candidate>& list, int64_t depth) {
  std::vector<Candidate> out;
  std::unordered_set<int64_t> seen;
  for (const Candidate& c : list) {
    if (static_cast<int64_t>(out.size()) == depth) break;
    if (seen.insert(c.chunk_id).second) out.push_back(c);
  }
  return out;
}

struct Fused {
  int64_t chunk_id = 0;
  int64_t document_id = 0;
  double score = 0.0;
  // Place in the dense list; chunks dense did not return come after all.
  size_t dense_rank = std::numeric_limits<size_t>::max();
};

bool better(const Fused& a, const Fused& b) {
  return a.score != b.score ? a.score > b.score : a.chunk_id < b.chunk_id;
}

}  // namespace

std::vector<double> robust_shifted_z(const std::vector<double>& scores) {
  if (scores.size() < 3) return std::vector<double>(scores.size(), 1.0);
  std::vector<double> work = scores;
  const double med = median(work);
  for (size_t i = 0; i < scores.size(); ++i) work[i] = std::abs(scores[i] - med);
  const auto [lowest, highest] = std::minmax_element(scores.begin(), scores.end());
  double sigma = std::max(kMadToSigma * median(work), kMinSigmaOfRange * (*highest - *lowest));
  if (!(sigma > 1e-12)) sigma = 1.0;
  const double last = (scores.back() - med) / sigma;
  std::vector<double> u(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) u[i] = (scores[i] - med) / sigma - last;
  return u;
}

std::vector<std::pair<int64_t, double>> hybrid_fusion(const std::vector<Candidate>& dense_list,
                                                      const std::vector<Candidate>& bm25_list,
                                                      int64_t k) {
  KVRAG_CHECK(k >= 1, kInvalidArgument, "hybrid fusion needs k >= 1, got ", k);
  const int64_t depth = hybrid_candidates(k);
  const std::vector<Candidate> dense = first_distinct(dense_list, depth);
  const std::vector<Candidate> bm25 = first_distinct(bm25_list, depth);

  std::vector<std::pair<int64_t, double>> out;
  if (dense.empty() || bm25.empty()) {
    for (const Candidate& c : dense.empty() ? bm25 : dense) {
      if (static_cast<int64_t>(out.size()) == k) break;
      out.emplace_back(c.chunk_id, c.score);
    }
    return out;
  }

  const double dense_weight = dense.front().document_id == bm25.front().document_id
                                  ? kHybridDenseAgreeWeight
                                  : kHybridDenseDisagreeWeight;
  std::vector<Fused> fused;
  std::unordered_map<int64_t, size_t> index;  // chunk id -> place in fused
  auto add = [&](const std::vector<Candidate>& list, double weight, bool is_dense) {
    std::vector<double> scores;
    for (const Candidate& c : list) scores.push_back(c.score);
    const std::vector<double> u = robust_shifted_z(scores);
    for (size_t i = 0; i < list.size(); ++i) {
      auto [it, inserted] = index.emplace(list[i].chunk_id, fused.size());
      if (inserted)
        fused.push_back({.chunk_id = list[i].chunk_id, .document_id = list[i].document_id});
      Fused& f = fused[it->second];
      f.score += weight * u[i];
      if (is_dense) f.dense_rank = i;
    }
  };
  add(dense, dense_weight, true);
  add(bm25, kHybridBm25Weight, false);
  std::sort(fused.begin(), fused.end(), better);

  // Step 5 of fusion.h: the places of the top k go to documents; each
  // document fills its places with its chunks in dense order.
  std::unordered_map<int64_t, std::vector<const Fused*>> by_document;
  for (const Fused& f : fused) by_document[f.document_id].push_back(&f);
  for (auto& [document, chunks] : by_document) {
    std::stable_sort(chunks.begin(), chunks.end(), [](const Fused* a, const Fused* b) {
      return a->dense_rank < b->dense_rank;  // equal (both absent): fused order kept
    });
  }
  std::unordered_map<int64_t, size_t> filled;  // document -> places filled so far
  const size_t places = std::min(fused.size(), static_cast<size_t>(k));
  for (size_t place = 0; place < places; ++place) {
    const int64_t document = fused[place].document_id;
    const Fused* chunk = by_document[document][filled[document]++];
    out.emplace_back(chunk->chunk_id, fused[place].score);
  }
  return out;
}

}  // namespace kvrag

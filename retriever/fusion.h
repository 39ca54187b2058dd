// Hybrid retrieval's fusion of a dense list (inner product) and a BM25 list
// (−bm25()), whose scores are on incomparable scales and whose reliability
// differs by corpus: the demo embedder is strong on the demo corpus and weak
// on any other text, where BM25 is far better (issue 13). Fixed weights
// cannot hold across both, so the fusion reads the evidence per query:
//
//  1. Candidates: the first kHybridCandidates chunks of each list, whatever
//     k is (an id repeated within one list counts at its first place).
//  2. Each list's scores are made comparable by a robust z-score over the
//     list (robust_shifted_z): z = (s − median) / σ, σ = 1.4826 · MAD but at
//     least kMinSigmaOfRange of the list's score range, shifted by
//     the last candidate's z, u = z − z_last, so that u >= 0 and a chunk the
//     list did not return has u = 0 there. Lists of 1 or 2 chunks have no
//     spread to measure: u = 1 for each.
//  3. Agreement gate: BM25 weighs 1; dense weighs kHybridDenseAgreeWeight
//     when the document of dense's first chunk is the document of BM25's
//     first chunk, else kHybridDenseDisagreeWeight. When they agree, the
//     embedder is on its ground and its finer chunk order is worth following;
//     when they do not, BM25's lexical evidence is the safer bet on real text.
//  4. score = w_dense · u_dense + w_bm25 · u_bm25; the top k by score (equal
//     scores by ascending chunk id) decide which DOCUMENT holds each of the k
//     places.
//  5. Within a document, dense orders the chunks: a document's places are
//     filled with its candidate chunks in dense order (chunks dense did not
//     return follow, by score, then id). BM25 often finds the right document
//     but the wrong chunk of it (a chunk that repeats the question's words,
//     not the one with the answer); the embedder is better at that choice.
//     Document recall is the one of step 4; only the chunks change.
//  If one list is empty the result is the other list's first k, unchanged.
//
// How it was chosen (scripts/retrieval_lab/, offline over both retrievers'
// top-100 lists of every question): the constants on SQuAD dev document
// recall (grid dense weight {0.3, 0.5} × {1, 2, 4, 7, 15, 30, 100}, gate at
// BM25's first 1, 3 or 5 documents), with 4 taken over larger values for the
// sample corpus's answer-bearing-chunk recall; step 5 was added to recover
// that recall (sample dev, @5/@20: 81.9/89.2 without it, 95.2/97.1 with it,
// dense 94.3/97.8). Document recall @5/@20 with the porter tokenizer:
// sample 99.0/100 (dense 97.8/99.4, BM25 98.7/99.7), SQuAD 86.8/94.8
// (23.9/39.0, 87.2/95.2), Debian man pages 80.3/89.8 (21.6/37.2, 80.4/90.6).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace kvrag {

// One entry of a retriever's ranked list.
struct Candidate {
  int64_t chunk_id = 0;
  int64_t document_id = 0;  // the store's row id of the chunk's document
  double score = 0.0;       // the retriever's score, higher is better
};

inline constexpr int64_t kHybridCandidates = 100;
inline constexpr double kHybridBm25Weight = 1.0;
inline constexpr double kHybridDenseAgreeWeight = 4.0;
inline constexpr double kHybridDenseDisagreeWeight = 0.5;
// σ = 1.4826 · MAD estimates the standard deviation of normal scores.
inline constexpr double kMadToSigma = 1.4826;
// On a small index most BM25 candidates match only a common word and score
// about 1e-6: the MAD collapses and the few real matches get z-scores in the
// millions, which drown the dense list whatever its weight. A floor of 5 % of
// the list's range keeps z within tens there; on SQuAD, the Debian man pages
// and the sample corpus it never binds (document recall unchanged, measured
// with scripts/retrieval_lab over the dumped lists).
inline constexpr double kMinSigmaOfRange = 0.05;

// How many candidates hybrid retrieval takes from each retriever for top k:
// kHybridCandidates, or k when k is larger.
inline int64_t hybrid_candidates(int64_t k) {
  return k > kHybridCandidates ? k : kHybridCandidates;
}

// The shifted robust z-score u of each score of `scores` (a ranked list's
// scores, best first), in the same order: med = median (the mean of the two
// middle values for an even count), MAD = median |s − med|, σ = 1.4826 MAD
// or kMinSigmaOfRange · (max − min) if larger (1 when σ <= 1e-12),
// z = (s − med) / σ, u = z − z of the last score. Fewer
// than 3 scores: u = 1 for each. Empty in, empty out.
std::vector<double> robust_shifted_z(const std::vector<double>& scores);

// The hybrid ranking of the steps above: dense and bm25 each best first (any
// length; only the first hybrid_candidates(k) distinct chunks of each are
// read), the top k (chunk id, score) best first, where score is the fused
// score of the place the chunk fills (so scores never increase down the
// list). k < 1 is Error(kInvalidArgument).
std::vector<std::pair<int64_t, double>> hybrid_fusion(const std::vector<Candidate>& dense,
                                                      const std::vector<Candidate>& bm25,
                                                      int64_t k);

}  // namespace kvrag

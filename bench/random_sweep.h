// The benchmark's model-size sweep: random-weight models of T5-small and
// T5-base shape (bench/random_model.h), each indexing enough of a corpus
// for the largest k at each chunk length, timed like a trained index.
// Speed only: the cells are marked random_weights and carry no quality.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/rag_bench.h"

namespace kvrag::bench {

struct RandomSweepSettings {
  std::vector<std::string> shapes;        // random_shape_names()
  std::vector<int64_t> chunk_tokens{64};  // one index per shape and chunk length
  std::string corpus_path;                // documents to index (read_corpus)
  std::string spiece_path;                // vocabulary copied into the model folders
  KvDtype kv_dtype = KvDtype::kF16;
  // Each index is timed once per weight dtype, the model loaded in it (the
  // index is built with the first), labelled by weights_label.
  std::vector<WeightDtype> weights{WeightDtype::kF32, WeightDtype::kF16, WeightDtype::kBf16,
                                   WeightDtype::kInt8};
  int64_t kv_cache_bytes = 2ll << 30;  // the RAM cache of cached-ram
  uint64_t seed = 20240607;
};

struct RandomSweepResult {
  std::vector<BenchCell> cells;
  std::vector<StorageSummary> storage;
  double stream_bytes_per_s = 0.0;  // the best of its runs' (BenchResult)
};

// Called with a line saying what is being built.
using StatusFn = std::function<void(const std::string&)>;

// For each shape: writes the random model folder into a temporary folder
// (removed afterwards, also on error); for each chunk length: indexes
// corpus documents, a few at a time, until the index holds max(ks) chunks,
// then run_bench on it once per sweep.weights. Error(kInvalidArgument) for
// an unknown shape, no shapes, no weights, a chunk length < 1, or a corpus
// too small for the largest k.
RandomSweepResult run_random_sweep(const RandomSweepSettings& sweep,
                                   const std::vector<EvalQuestion>& questions,
                                   const BenchSettings& settings, const BenchProgressFn& progress,
                                   const StatusFn& status);

}  // namespace kvrag::bench

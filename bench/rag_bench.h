// The benchmark driver behind `kvrag bench`: times the answering modes of
// RagPipeline on the same questions and the same retrieved chunks, and
// summarises an index's storage. It holds no model logic: every answer is a
// RagPipeline::answer call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench/bench_report.h"
#include "pipeline/evaluation.h"
#include "pipeline/rag_pipeline.h"

namespace kvrag::bench {

// The variants timed for `modes`: cached becomes cached-sqlite and
// cached-ram (in that order), concat and fid stay themselves.
// Error(kInvalidArgument) for no modes or a mode given twice.
std::vector<Variant> variants_for(const std::vector<Mode>& modes);

struct BenchSettings {
  std::vector<int64_t> ks{1, 5, 10, 20, 50};  // each in 1..kMaxK
  std::vector<Variant> variants;
  int64_t repeat = 3;  // timed answers per question, variant and k (>= 1)
  int64_t warmup = 1;  // untimed answers per variant and k before the timed ones (>= 0)
  RetrieverKind retriever = kDefaultRetriever;
  GenerationOptions generation = AskOptions{}.generation;
};

// One index, opened twice: `ram` with its RAM cache of chunk K/V on (large
// enough for the largest k's chunks) and `sqlite` with it off
// (OpenOptions.kv_cache_bytes = 0), so that cached-sqlite always reads the
// store. Both must be the same index folder; the caller owns them.
struct BenchTarget {
  std::string model;  // the label the report uses
  bool random_weights = false;
  const RagPipeline* ram = nullptr;
  const RagPipeline* sqlite = nullptr;
  // Per question, its chunks at the largest k (retrieve_questions), shared
  // by the targets of one index's weight dtypes so that every dtype answers
  // from the same chunks; null: run_bench retrieves them with `ram`.
  const std::vector<std::vector<RetrievedChunk>>* retrieved = nullptr;
};

// Each question's top-k chunks with `pipeline`'s retriever `retriever`:
// retrieved once for all of an index's weight dtypes, since a question's
// embedding, and so its chunks, differ with the weights' rounding.
std::vector<std::vector<RetrievedChunk>> retrieve_questions(
    const RagPipeline& pipeline, const std::vector<EvalQuestion>& questions, int64_t k,
    RetrieverKind retriever);

// A BenchTarget's two pipelines over the index in `dir`: `ram` opened with
// `options` (its RAM cache on), `sqlite` with the RAM cache off and ram's
// model (OpenOptions::model): one copy of the weights, as a server holds,
// so that both variants read the same memory and the process holds one
// model's worth of it.
struct BenchPipelines {
  std::unique_ptr<RagPipeline> ram;
  std::unique_ptr<RagPipeline> sqlite;
};
BenchPipelines open_bench_pipelines(const std::string& dir, const OpenOptions& options);

struct BenchProgress {
  std::string model;
  int64_t question = 0;  // 1-based
  int64_t questions = 0;
  int64_t k = 0;
  std::string variant;
  int64_t answers_done = 0;  // timed and untimed, this target
  int64_t answers_total = 0;
};
using BenchProgressFn = std::function<void(const BenchProgress&)>;

struct BenchResult {
  std::vector<BenchCell> cells;  // per k (ascending), per variant in settings order
  std::vector<AgreementRow> agreement;
  // The best StreamProbe::best_of measured around each (question, k) round.
  double stream_bytes_per_s = 0.0;
};

// Runs the benchmark on `target`: each question retrieved once at the
// largest k from `target.ram`; for each k the top-k prefix is answered by
// every variant with settings.generation. Per k and variant, settings.warmup
// untimed answers to the first question come first. Timed answers are
// interleaved (per question and repeat, every variant in turn) so that a
// slow spell of a shared machine does not fall on one variant; StreamProbe
// passes before and after each (question, k) round give its answers the
// rate they are set against (BenchCell.paired_bound_multiple). Peak resident
// memory is reset before each timed answer (Linux /proc/self/clear_refs)
// and read after it. Quality (EM, F1, agreement) is scored from the first
// repeat's answers unless target.random_weights.
// Error(kInvalidArgument) for no questions, no variants, no k, a k outside
// 1..kMaxK or above the index's chunk count, repeat < 1 or warmup < 0.
BenchResult run_bench(const BenchTarget& target, const std::vector<EvalQuestion>& questions,
                      const BenchSettings& settings, const BenchProgressFn& progress = {});

// The index's document text and cached memory, and what the memory would
// take in each dtype (f32, f16, int8) and granularity (kv, hidden),
// computed from its token counts with kv_blob_size.
StorageSummary storage_summary(const RagPipeline& pipeline, const std::string& model);

// This process's resident memory now (VmRSS of /proc/self/status); 0 where
// that is unreadable (not Linux).
int64_t resident_bytes();

// CPU model (from /proc/cpuinfo), online cores, physical memory, the
// current compute_threads() and stream_bandwidth() with that many threads
// (run_bench measures it again around each round of answers; the report
// keeps the best).
MachineInfo machine_info();

// Reads `words` once, split over `threads` threads (>= 1), and returns
// their sum, so that the reads cannot be optimised away.
uint64_t stream_read(std::span<const uint64_t> words, int64_t threads);

// A buffer far larger than any cache (256 MiB, small beside the models
// measured), kept to time stream_read over it again and again: run_bench
// reads it before and after each (question, k) round of answers, so that
// the round's answers can be set against the rate memory gave then.
class StreamProbe {
 public:
  StreamProbe();
  // Bytes per second of the fastest of `passes` stream_reads by `threads`
  // threads (>= 1): the rate a memory-bound decoder step could reach.
  double best_of(int64_t threads, int passes) const;
  // The kept buffer's bytes, resident while the probe lives.
  int64_t bytes() const;

 private:
  double pass(int64_t threads) const;  // one of them

  std::vector<uint64_t> words_;
};

// StreamProbe().best_of(threads, 5).
double stream_bandwidth(int64_t threads);

}  // namespace kvrag::bench

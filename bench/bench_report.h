// What `kvrag bench` measured, and the writers of its report: a Markdown
// page, a CSV with one row per measured cell, and SVG charts. Everything
// here is plain data; bench/rag_bench.h fills it from RagPipeline runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_stats.h"
#include "core/weight_matrix.h"

namespace kvrag::bench {

// Median and 95th percentile of one figure over a cell's timed answers.
struct Spread {
  double median = 0.0;
  double p95 = 0.0;
};
Spread spread_of(const std::vector<double>& values);

// One way of answering as the benchmark times it: a mode, and for `cached`
// where the chunks' K/V came from. "cached-sqlite" reads every chunk from the
// store (the pipeline is opened with its RAM cache disabled); "cached-ram"
// finds every chunk in the RAM cache (an untimed answer on the same chunks
// runs first). "concat" and "fid" read nothing from the store.
struct Variant {
  std::string name;  // "cached-sqlite" | "cached-ram" | "concat" | "fid"
  std::string mode;  // "cached" | "concat" | "fid"
};

// The figures of one (model, chunk length, k, variant): medians and p95 over
// questions × repeats.
struct BenchCell {
  std::string model;  // e.g. "kvrag-demo" or "t5-base shape"
  bool random_weights = false;
  std::string variant;
  std::string mode;
  int64_t chunk_tokens = 0;  // the index's chunk length (max tokens)
  int64_t k = 0;
  int64_t questions = 0;
  int64_t samples = 0;          // timed answers
  double context_tokens = 0.0;  // median positions the decoder cross-attended to
  Spread first_token_ms;
  Spread total_ms;
  Spread encode_ms;
  Spread load_kv_ms;
  Spread decode_ms_per_token;
  double tokens_per_s = 0.0;      // median
  double generated_tokens = 0.0;  // mean
  double store_bytes_read = 0.0;  // median per answer
  // Median bytes the first decoder step must read: the memory's K/V (each
  // block in the dtype it is kept in) and the decoder's weights.
  double step_bytes = 0.0;
  // Bytes of weights encoding the question and projecting its K/V read
  // (T5Encoder::question_weight_bytes): with step_bytes, what a cached
  // answer's first token must read.
  double question_bytes = 0.0;
  // Median of the rates StreamProbe measured around its answers' rounds
  // (run_bench), and median over its answers of each one's bound_multiple
  // at its round's rate: of step_bytes, and of step_bytes + question_bytes.
  // A shared machine's bandwidth moved between 18 and 59 GB/s within a
  // run, so a bound from the run's best rate sets answers timed in slow
  // spells against the fastest moment; these set each answer against the
  // rate around it.
  double stream_bytes_per_s = 0.0;
  double paired_bound_multiple = 0.0;
  double paired_with_question_multiple = 0.0;
  double ram_hit_rate = 0.0;     // RAM cache hits / chunks looked up (cached mode), else 0
  int64_t peak_rss_bytes = 0;    // process peak resident memory during the answers
  int64_t rss_growth_bytes = 0;  // the most an answer raised it above its start
  // Over the questions, in percent; only for trained models with gold answers.
  std::optional<double> exact_match;
  std::optional<double> f1;
};

// How often two modes gave the same answer (SQuAD-normalised text).
struct AgreementRow {
  std::string model;
  int64_t chunk_tokens = 0;
  int64_t k = 0;
  std::string mode_a;
  std::string mode_b;
  int64_t questions = 0;
  double rate = 0.0;  // in [0, 1]
};

// The size of an index's cached memory for one dtype and granularity,
// computed from its token counts (the index itself stores one of them).
struct StorageRow {
  std::string granularity;  // "kv" | "hidden"
  std::string dtype;        // "f32" | "f16" | "int8"
  double bytes_per_token = 0.0;
  double bytes_per_chunk = 0.0;  // mean over the index's chunks
  int64_t index_bytes = 0;
  bool stored = false;  // the combination the index was built with
};

struct StorageSummary {
  std::string model;
  int64_t chunk_tokens = 0;
  int64_t documents = 0;
  int64_t chunks = 0;
  int64_t memory_tokens = 0;
  int64_t text_bytes = 0;
  int64_t stored_memory_bytes = 0;  // as the store counts it
  int64_t file_bytes = 0;           // store.sqlite on disk
  std::vector<StorageRow> rows;
};

// How a variant's cost grows with the tokens of context it reads.
struct ScalingFit {
  std::string model;
  std::string variant;
  std::string figure;  // "encode_ms" | "first_token_ms"
  PowerLawFit fit;
};

// A time to first token as a multiple of the time `bytes` take to stream
// at bytes_per_s; 0 when bytes_per_s <= 0 (not measured).
double bound_multiple(double first_token_ms, double bytes, double bytes_per_s);

// Speed-up of cached mode over concatenation in time to first token.
struct SpeedupRow {
  std::string model;
  int64_t chunk_tokens = 0;
  int64_t k = 0;
  std::optional<double> sqlite_over_concat;  // concat TTFT / cached-sqlite TTFT
  std::optional<double> ram_over_concat;     // concat TTFT / cached-ram TTFT
  std::optional<double> ram_over_fid;        // fid TTFT / cached-ram TTFT
};

// The memory bound of a cached answer at one k: the bytes its first decoder
// step must read (BenchCell.step_bytes of the cached cell) at the streaming
// bandwidth measured in the same run, and every variant's time to first
// token as a multiple of it. Then the same with the question's encoding
// added (BenchCell.question_bytes), against the cached cell alone.
struct BoundRow {
  std::string model;
  int64_t chunk_tokens = 0;
  int64_t k = 0;
  double step_bytes = 0.0;
  double bound_ms = 0.0;
  std::vector<std::pair<std::string, double>> multiples;  // variant, TTFT / bound_ms
  double question_bytes = 0.0;
  double with_question_ms = 0.0;
  std::string cached_variant;    // cached-ram, or cached-sqlite without it
  double cached_multiple = 0.0;  // its TTFT / with_question_ms
  // Its BenchCell.paired_bound_multiple, paired_with_question_multiple
  // and stream_bytes_per_s.
  double paired_multiple = 0.0;
  double paired_with_question_multiple = 0.0;
  double paired_bytes_per_s = 0.0;
};

struct MachineInfo {
  std::string cpu_model;
  int64_t cores = 0;
  int64_t memory_bytes = 0;
  int64_t threads = 0;  // compute threads every variant ran with
  // Bytes per second streamed from RAM in this run: the best of
  // stream_bandwidth() at the start and the StreamProbe passes around each
  // (question, k) round of answers; 0 when not measured.
  double stream_bytes_per_s = 0.0;
};

struct BenchReport {
  MachineInfo machine;
  std::string command;  // the command line, for rerunning
  int64_t max_new_tokens = 0;
  int64_t num_beams = 1;
  int64_t repeat = 0;
  int64_t warmup = 0;
  std::vector<BenchCell> cells;
  std::vector<AgreementRow> agreement;
  std::vector<StorageSummary> storage;
  std::vector<std::string> notes;  // printed under the heading
};

// Per model and variant, power-law fits of encoder time and of time to
// first token against context tokens, over the cells with at least two
// distinct context lengths (variants with no encoder time get no encode fit).
std::vector<ScalingFit> fit_scaling(const std::vector<BenchCell>& cells);

// One row per (model, chunk length, k) that has a concat or fid cell.
std::vector<SpeedupRow> speedups(const std::vector<BenchCell>& cells);

// One row per (model, chunk length, k) with a cached cell (cached-ram's
// bytes, else cached-sqlite's); none when bytes_per_s <= 0.
std::vector<BoundRow> memory_bounds(const std::vector<BenchCell>& cells, double bytes_per_s);

// One header line, then one line per cell, in order; times in ms, bytes as
// integers, quality empty when absent. Fields with commas or quotes are quoted.
std::string cells_csv(const std::vector<BenchCell>& cells);

// The whole report as Markdown: settings and machine, per model a table of
// the cells, speed-ups, agreement, storage and the fitted growth exponents;
// models with random weights are labelled as such and show no quality.
// `chart_files` are linked as images.
// The report's label of `model` run with `weights`: the model's own for f32,
// "<model>, int8 weights" for int8 (", f16 weights" for f16) — a section of
// its own, which the report sets beside the f32 section of the same model in
// a weights table.
std::string weights_label(const std::string& model, WeightDtype weights);

std::string report_markdown(const BenchReport& report, const std::vector<std::string>& chart_files);

// Writes report.md, results.csv and the charts (latency against k for each
// model, and the speed-up of cached over concat against k) into `dir`,
// created if needed; returns the paths written. Error(kIo) when a file
// cannot be written.
std::vector<std::string> write_report(const BenchReport& report, const std::string& dir);

// `name` lower-cased with every run of other characters than [a-z0-9]
// turned into one '-': a file name part ("T5-base shape" -> "t5-base-shape").
std::string slug(const std::string& name);

}  // namespace kvrag::bench

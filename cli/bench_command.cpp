// kvrag bench: times cached, concat and fid answering on the same questions
// and the same retrieved chunks, and writes a Markdown report, a CSV and SVG
// charts (bench/). The measuring itself is bench/rag_bench.h.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "bench/bench_report.h"
#include "bench/rag_bench.h"
#include "bench/random_sweep.h"
#include "cli/args.h"
#include "cli/ask_args.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "core/error.h"
#include "core/parallel.h"
#include "pipeline/evaluation.h"
#include "pipeline/rag_pipeline.h"

namespace kvrag::cli {
namespace {

// Built once from the defaults of bench::BenchSettings and, through it, of the
// pipeline (pipeline/ask_options.h).
const char* bench_usage() {
  static const std::string usage = [] {
    const bench::BenchSettings d;
    std::ostringstream text;
    text << "usage: kvrag bench --questions FILE.jsonl [--index PATH|URI] [--k ";
    for (size_t i = 0; i < d.ks.size(); ++i) text << (i ? "," : "") << d.ks[i];
    text << "]\n"
            "                   [--modes cached,concat,fid] [--repeat "
         << d.repeat << "] [--warmup " << d.warmup
         << "] [--limit 20]\n"
            "                   [--threads N] [--max-new-tokens "
         << d.generation.max_new_tokens << "] [--beams " << d.generation.num_beams
         << "] [--retriever " << retriever_name(d.retriever)
         << "]\n"
            "                   [--kv-cache-mb 2048] [--out bench-results]\n"
            "                   [--random-models t5-small,t5-base] [--random-k LIST]\n"
            "                   [--random-questions 3] [--random-repeat 1] [--random-warmup 1]\n"
            "                   [--random-chunk-tokens 64] [--kv-dtype f16] [--weights LIST]\n"
            "                   [--corpus data/sample/corpus.jsonl]\n"
            "                   [--spiece models/kvrag-demo/spiece.model]\n"
            "  Each question is retrieved once at the largest k; every k answers from the top-k\n"
            "  prefix, and every mode from the same chunks with the same decoding and threads.\n"
            "  cached runs twice: cached-sqlite (RAM cache off, K/V read from SQLite) and\n"
            "  cached-ram (K/V found in the RAM cache). --warmup untimed answers per mode and k,\n"
            "  and one per question of each cached variant (cached-ram's fills its cache);\n"
            "  medians and p95 over --limit questions x --repeat. FILE.jsonl is kvrag eval's\n"
            "  format ({\"question\", \"answers\": [...]}); exact match and F1 are reported for\n"
            "  the index's model.\n"
            "  --random-models adds a speed-only sweep on random-weight models of those shapes\n"
            "  (Flan-T5 layout, vocab 32128): each indexes enough of --corpus (tokenized with\n"
            "  --spiece) for the largest --random-k, one index per --random-chunk-tokens, and\n"
            "  answers the first --random-questions questions. --index or --random-models is\n"
            "  needed. --weights: the weight dtypes to time, each a run of its own with the\n"
            "  model loaded so (default f32; f32,f16,bf16,int8 for --random-models, whose\n"
            "  checkpoints are stored in F16: f16 computes their f32 results), compared in\n"
            "  the report's \"<dtype> weights vs f32\" tables. Writes report.md, results.csv\n"
            "  and *.svg into --out.\n";
    return text.str();
  }();
  return usage.c_str();
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string line = "kvrag bench";
  for (const std::string& arg : argv) {
    line += " ";
    line += arg.find_first_of(" \"'") == std::string::npos ? arg : "'" + arg + "'";
  }
  return line;
}

// The progress line on stderr: rewritten in place on a terminal; in a log,
// one line per question and k.
class ProgressLine {
 public:
  ProgressLine() : tty_(::isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()) {}

  void update(const bench::BenchProgress& p) {
    std::ostringstream line;
    line << "[bench] " << p.model << "  question " << p.question << "/" << p.questions
         << "  k=" << p.k << "  " << p.variant << "  (" << p.answers_done << "/" << p.answers_total
         << " answers, " << human_seconds(elapsed()) << ")";
    const std::string key = p.model + "/" + std::to_string(p.question) + "/" + std::to_string(p.k);
    if (tty_) {
      std::cerr << "\r" << line.str() << "\033[K" << std::flush;
    } else if (key != last_key_) {
      std::cerr << line.str() << "\n";
    }
    last_key_ = key;
  }

  void status(const std::string& text) {
    std::cerr << (tty_ ? "\r\033[K" : "") << "[bench] " << text << "\n";
  }

  void finish() {
    if (tty_) std::cerr << "\r\033[K";
  }

 private:
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::string last_key_;
};

// The label of the index's model in the report: its folder name.
std::string model_label(const RagPipeline& pipeline) {
  const std::string name = std::filesystem::path(pipeline.stats().model_dir).filename().string();
  return name.empty() ? "index model" : name;
}

void print_summary(const bench::BenchReport& report, const std::vector<std::string>& files) {
  std::cout << "time to first token, median ms (speed-up of cached-ram over concat):\n";
  for (const bench::SpeedupRow& row : bench::speedups(report.cells)) {
    std::cout << "  " << row.model << ", chunks of " << row.chunk_tokens << ", k=" << row.k;
    for (const bench::BenchCell& c : report.cells) {
      if (c.model == row.model && c.chunk_tokens == row.chunk_tokens && c.k == row.k) {
        char text[64];
        std::snprintf(text, sizeof(text), "  %s %.1f", c.variant.c_str(), c.first_token_ms.median);
        std::cout << text;
      }
    }
    if (row.ram_over_concat) {
      char text[32];
      std::snprintf(text, sizeof(text), "  (%.2fx)", *row.ram_over_concat);
      std::cout << text;
    }
    std::cout << "\n";
  }
  char bandwidth[96];
  std::snprintf(bandwidth, sizeof(bandwidth), "%.1f GB/s", report.machine.stream_bytes_per_s / 1e9);
  std::cout << "memory bound of a cached answer (its first decoder step's K/V and decoder "
               "weights at the "
            << bandwidth << " streamed in this run; each time to first token as a multiple):\n";
  for (const bench::BoundRow& row :
       bench::memory_bounds(report.cells, report.machine.stream_bytes_per_s)) {
    char text[96];
    std::snprintf(text, sizeof(text), ", k=%lld: %.1f MiB, %.2f ms;", static_cast<long long>(row.k),
                  row.step_bytes / (1024.0 * 1024.0), row.bound_ms);
    std::cout << "  " << row.model << ", chunks of " << row.chunk_tokens << text;
    for (const auto& [variant, multiple] : row.multiples) {
      std::snprintf(text, sizeof(text), "  %s %.1fx", variant.c_str(), multiple);
      std::cout << text;
    }
    std::snprintf(text, sizeof(text), "; with the question's %.1f MiB: %.2f ms, %s %.1fx",
                  row.question_bytes / (1024.0 * 1024.0), row.with_question_ms,
                  row.cached_variant.c_str(), row.cached_multiple);
    std::cout << text << "\n";
  }
  std::cout << "wrote:\n";
  for (const std::string& file : files) std::cout << "  " << file << "\n";
}

int run_bench(const std::vector<std::string>& argv) {
  const Args args(argv,
                  {"index",
                   "questions",
                   "k",
                   "modes",
                   "repeat",
                   "warmup",
                   "limit",
                   "threads",
                   "max-new-tokens",
                   "beams",
                   "retriever",
                   "kv-cache-mb",
                   "out",
                   "random-models",
                   "random-k",
                   "random-questions",
                   "random-repeat",
                   "random-warmup",
                   "random-chunk-tokens",
                   "kv-dtype",
                   "weights",
                   "corpus",
                   "spiece"},
                  {});
  KVRAG_CHECK(args.has("index") || args.has("random-models"), kInvalidArgument,
              "give --index, --random-models or both");
  if (args.has("threads")) set_compute_threads(args.get_int("threads", 1, 1, 1024));

  bench::BenchSettings settings;
  if (args.has("k")) settings.ks = args.get_int_list("k", "", 1, kMaxK);
  settings.variants = bench::variants_for(args.get_list("modes", "cached,concat,fid", parse_mode));
  settings.repeat = args.get_int("repeat", settings.repeat, 1, 1000);
  settings.warmup = args.get_int("warmup", settings.warmup, 0, 1000);
  settings.retriever = read_retriever(args);
  settings.generation = read_generation(args);
  const int64_t kv_cache_bytes = args.get_int("kv-cache-mb", 2048, 1, 1 << 20) << 20;
  const std::string questions_path = args.require("questions");
  const std::string out = args.get("out", "bench-results");

  bench::BenchReport report;
  report.machine = bench::machine_info();
  report.command = command_line(argv);
  report.max_new_tokens = settings.generation.max_new_tokens;
  report.num_beams = settings.generation.num_beams;
  report.repeat = settings.repeat;
  report.warmup = settings.warmup;
  report.notes.push_back(
      "cached-sqlite reads go through SQLite and the OS page cache (warm after the first "
      "read): they measure SQLite plus blob decoding, not a cold disk.");
  ProgressLine progress;
  auto on_progress = [&](const bench::BenchProgress& p) { progress.update(p); };

  const std::vector<WeightDtype> weights = args.get_list(
      "weights", args.has("random-models") ? "f32,f16,bf16,int8" : "f32", parse_weight_dtype);
  KVRAG_CHECK(!weights.empty(), kInvalidArgument, "--weights names no weight dtype");

  if (args.has("index")) {
    const std::vector<EvalQuestion> questions =
        read_eval_questions(questions_path, args.get_int("limit", 20, 0, 1 << 30));
    // One model in memory at a time; the chunks retrieved with the first's.
    std::vector<std::vector<RetrievedChunk>> retrieved;
    for (const WeightDtype w : weights) {
      OpenOptions ram_options;
      ram_options.kv_cache_bytes = kv_cache_bytes;
      ram_options.weights = w;
      const bench::BenchPipelines pipelines =
          bench::open_bench_pipelines(args.get("index", ""), ram_options);
      const RagPipeline& ram = *pipelines.ram;
      if (w == weights.front()) {
        retrieved = bench::retrieve_questions(
            ram, questions, *std::max_element(settings.ks.begin(), settings.ks.end()),
            settings.retriever);
      }
      const bench::BenchTarget target{bench::weights_label(model_label(ram), w), false, &ram,
                                      pipelines.sqlite.get(), &retrieved};
      const bench::BenchResult result = bench::run_bench(target, questions, settings, on_progress);
      report.cells.insert(report.cells.end(), result.cells.begin(), result.cells.end());
      report.agreement.insert(report.agreement.end(), result.agreement.begin(),
                              result.agreement.end());
      report.machine.stream_bytes_per_s =
          std::max(report.machine.stream_bytes_per_s, result.stream_bytes_per_s);
      if (w == weights.front()) report.storage.push_back(bench::storage_summary(ram, target.model));
    }
  }

  if (args.has("random-models")) {
    bench::RandomSweepSettings sweep;
    sweep.shapes = args.get_list("random-models", "");
    sweep.chunk_tokens = args.get_int_list("random-chunk-tokens", "64", 1, 4096);
    sweep.corpus_path = args.get("corpus", "data/sample/corpus.jsonl");
    sweep.spiece_path = args.get("spiece", "models/kvrag-demo/spiece.model");
    sweep.kv_dtype = parse_kv_dtype(args.get("kv-dtype", "f16"));
    sweep.kv_cache_bytes = kv_cache_bytes;
    sweep.weights = weights;
    bench::BenchSettings random_settings = settings;
    if (args.has("random-k")) random_settings.ks = args.get_int_list("random-k", "", 1, kMaxK);
    random_settings.repeat = args.get_int("random-repeat", 1, 1, 1000);
    random_settings.warmup = args.get_int("random-warmup", 1, 0, 1000);
    const std::vector<EvalQuestion> questions =
        read_eval_questions(questions_path, args.get_int("random-questions", 3, 1, 1 << 30));
    const bench::RandomSweepResult result =
        bench::run_random_sweep(sweep, questions, random_settings, on_progress,
                                [&](const std::string& text) { progress.status(text); });
    if (!args.has("index")) {  // the report's header then describes the sweep's runs
      report.repeat = random_settings.repeat;
      report.warmup = random_settings.warmup;
    }
    report.cells.insert(report.cells.end(), result.cells.begin(), result.cells.end());
    report.storage.insert(report.storage.end(), result.storage.begin(), result.storage.end());
    report.machine.stream_bytes_per_s =
        std::max(report.machine.stream_bytes_per_s, result.stream_bytes_per_s);
    report.notes.push_back("random-weight models (" + args.get("random-models", "") +
                           "): " + std::to_string(questions.size()) + " questions, " +
                           std::to_string(random_settings.repeat) + " timed repeat(s), " +
                           std::to_string(random_settings.warmup) +
                           " warm-up(s); speed only, no quality.");
  }
  progress.finish();
  print_summary(report, bench::write_report(report, out));
  return 0;
}

const RegisterCommand kRegisterBench("bench",
                                     {run_bench, bench_usage(),
                                      "time cached vs concat vs fid answering and write a report"});

}  // namespace
}  // namespace kvrag::cli

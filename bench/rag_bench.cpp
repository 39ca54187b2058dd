#include "bench/rag_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/parallel.h"
#include "data/kv_blob.h"
#include "pipeline/qa_metrics.h"

namespace kvrag::bench {
namespace {

// ---------------------------------------------------------------- memory

// A "Vm…:  1234 kB" field of /proc/self/status in bytes; 0 when unreadable
// (not Linux), which the report then shows as 0.
int64_t status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream value(line.substr(field.size() + 1));
      int64_t kb = 0;
      value >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace

int64_t resident_bytes() { return status_bytes("VmRSS"); }

namespace {

// Resets VmHWM to the current resident size (Linux 4.0+), so the peak read
// after one answer belongs to that answer.
void reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

// ---------------------------------------------------------------- samples

struct Sample {
  AskTimings timings;
  int64_t peak_rss = 0;
  int64_t rss_growth = 0;
  double stream_bytes_per_s = 0.0;  // its round's rate (set_round_rate)
};

// Everything measured for one (k, variant).
struct CellData {
  std::vector<Sample> samples;
  std::vector<std::string> answers;  // first repeat, per question
};

// `not_counted`: resident bytes of the benchmark's own (the StreamProbe's
// buffer) left out of the peak, which is otherwise the whole process's.
Sample timed_answer(const RagPipeline& pipeline, const std::string& question,
                    const std::vector<RetrievedChunk>& chunks, const AskOptions& options,
                    std::string* text, int64_t not_counted) {
  reset_peak_rss();
  const int64_t rss_before = resident_bytes();
  const Answer answer = pipeline.answer(question, chunks, options);
  Sample s;
  s.timings = answer.timings;
  s.peak_rss = std::max<int64_t>(0, status_bytes("VmHWM") - not_counted);
  s.rss_growth = std::max<int64_t>(0, s.peak_rss - rss_before);
  if (text) *text = answer.text;
  return s;
}

// The rate memory gave around one (question, k) round of answers: the
// better of StreamProbe's best of three passes before the round's untimed
// answers and after its timed ones. Not a pass before each timed answer:
// that evicted the caches every time, and the demo model's cached answers,
// whose 8 MB of weights otherwise stay in L3 between answers, took 1.2-4.9x
// as long (k = 50 to 1). Three passes, as a first pass after other reads
// measured 3-5 % below the passes after it (a scratch harness, twelve
// rounds).
constexpr int kRoundPasses = 3;

// Gives the samples a round added to each cell (those from first[v] on)
// the round's rate.
void set_round_rate(std::vector<CellData>& cells, const std::vector<size_t>& first, double rate) {
  for (size_t v = 0; v < cells.size(); ++v) {
    for (size_t i = first[v]; i < cells[v].samples.size(); ++i) {
      cells[v].samples[i].stream_bytes_per_s = rate;
    }
  }
}

BenchCell summarise(const BenchTarget& target, const Variant& variant, int64_t chunk_tokens,
                    int64_t k, const CellData& data, const std::vector<EvalQuestion>& questions) {
  BenchCell cell;
  cell.model = target.model;
  cell.random_weights = target.random_weights;
  cell.variant = variant.name;
  cell.mode = variant.mode;
  cell.chunk_tokens = chunk_tokens;
  cell.k = k;
  cell.questions = static_cast<int64_t>(data.answers.size());
  cell.samples = static_cast<int64_t>(data.samples.size());
  std::vector<double> context, first, total, encode, load, per_token, rate, bytes, step, stream,
      paired, paired_with_question;
  const auto weight_bytes = static_cast<double>(target.ram->decoder().step_weight_bytes());
  cell.question_bytes = static_cast<double>(target.ram->encoder().question_weight_bytes());
  double generated = 0, hits = 0, lookups = 0;
  for (const Sample& s : data.samples) {
    const AskTimings& t = s.timings;
    context.push_back(static_cast<double>(t.memory_tokens));
    first.push_back(t.first_token_ms);
    total.push_back(t.total_ms);
    encode.push_back(t.encode_ms);
    load.push_back(t.load_kv_ms);
    per_token.push_back(
        t.generated_tokens > 0 ? t.decode_ms / static_cast<double>(t.generated_tokens) : 0.0);
    rate.push_back(t.tokens_per_s);
    bytes.push_back(static_cast<double>(t.store_bytes_read));
    step.push_back(static_cast<double>(t.memory_bytes) + weight_bytes);
    stream.push_back(s.stream_bytes_per_s);
    paired.push_back(bound_multiple(t.first_token_ms, step.back(), s.stream_bytes_per_s));
    paired_with_question.push_back(
        bound_multiple(t.first_token_ms, step.back() + cell.question_bytes, s.stream_bytes_per_s));
    generated += static_cast<double>(t.generated_tokens);
    hits += static_cast<double>(t.kv_cache_hits);
    lookups += static_cast<double>(t.kv_cache_hits + t.kv_cache_misses);
    cell.peak_rss_bytes = std::max(cell.peak_rss_bytes, s.peak_rss);
    cell.rss_growth_bytes = std::max(cell.rss_growth_bytes, s.rss_growth);
  }
  cell.context_tokens = median(context);
  cell.first_token_ms = spread_of(first);
  cell.total_ms = spread_of(total);
  cell.encode_ms = spread_of(encode);
  cell.load_kv_ms = spread_of(load);
  cell.decode_ms_per_token = spread_of(per_token);
  cell.tokens_per_s = median(rate);
  cell.generated_tokens = generated / static_cast<double>(data.samples.size());
  cell.store_bytes_read = median(bytes);
  cell.step_bytes = median(step);
  cell.stream_bytes_per_s = median(stream);
  cell.paired_bound_multiple = median(paired);
  cell.paired_with_question_multiple = median(paired_with_question);
  cell.ram_hit_rate = lookups > 0 ? hits / lookups : 0.0;
  if (!target.random_weights) {
    double em = 0, f1 = 0;
    for (size_t q = 0; q < data.answers.size(); ++q) {
      em += exact_match(data.answers[q], questions[q].answers);
      f1 += token_f1(data.answers[q], questions[q].answers);
    }
    const double n = static_cast<double>(data.answers.size());
    cell.exact_match = 100.0 * em / n;
    cell.f1 = 100.0 * f1 / n;
  }
  return cell;
}

// The answers each mode gave at one k: cached mode's from cached-ram when it
// ran (cached-sqlite computes the same thing), else from cached-sqlite.
std::vector<std::pair<std::string, const std::vector<std::string>*>> answers_by_mode(
    const std::vector<Variant>& variants, const std::vector<CellData>& cells) {
  std::vector<std::pair<std::string, const std::vector<std::string>*>> out;
  for (size_t v = 0; v < variants.size(); ++v) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& entry) { return entry.first == variants[v].mode; });
    if (it == out.end()) {
      out.emplace_back(variants[v].mode, &cells[v].answers);
    } else if (variants[v].name == "cached-ram") {
      it->second = &cells[v].answers;
    }
  }
  return out;
}

std::vector<AgreementRow> agreement_at(const BenchTarget& target, int64_t chunk_tokens, int64_t k,
                                       const std::vector<Variant>& variants,
                                       const std::vector<CellData>& cells) {
  const auto by_mode = answers_by_mode(variants, cells);
  std::vector<AgreementRow> rows;
  for (size_t a = 0; a < by_mode.size(); ++a) {
    for (size_t b = a + 1; b < by_mode.size(); ++b) {
      const std::vector<std::string>& x = *by_mode[a].second;
      const std::vector<std::string>& y = *by_mode[b].second;
      int64_t same = 0;
      for (size_t q = 0; q < x.size(); ++q)
        same += normalize_answer(x[q]) == normalize_answer(y[q]);
      rows.push_back({target.model, chunk_tokens, k, by_mode[a].first, by_mode[b].first,
                      static_cast<int64_t>(x.size()),
                      static_cast<double>(same) / static_cast<double>(x.size())});
    }
  }
  return rows;
}

// cached-sqlite answers from the index opened with the RAM cache off, every
// other variant from the one with it on.
const RagPipeline& pipeline_for(const BenchTarget& target, const Variant& variant) {
  return variant.name == "cached-sqlite" ? *target.sqlite : *target.ram;
}

// The same decoding for every variant; only the mode differs.
AskOptions ask_options(const Variant& variant, const BenchSettings& settings) {
  AskOptions options;
  options.mode = parse_mode(variant.mode);
  options.generation = settings.generation;
  return options;
}

void check_settings(const BenchTarget& target, const std::vector<EvalQuestion>& questions,
                    const BenchSettings& settings) {
  KVRAG_CHECK(target.ram && target.sqlite, kInvalidArgument,
              "run_bench needs the index opened twice (RAM cache on and off)");
  KVRAG_CHECK(!questions.empty(), kInvalidArgument, "run_bench: no questions");
  KVRAG_CHECK(!settings.variants.empty(), kInvalidArgument, "run_bench: no modes");
  KVRAG_CHECK(!settings.ks.empty(), kInvalidArgument, "run_bench: no k");
  KVRAG_CHECK(settings.repeat >= 1, kInvalidArgument, "--repeat must be at least 1, got ",
              settings.repeat);
  KVRAG_CHECK(settings.warmup >= 0, kInvalidArgument, "--warmup must be at least 0, got ",
              settings.warmup);
  const int64_t chunks = target.ram->stats().store.chunks;
  for (const int64_t k : settings.ks) {
    KVRAG_CHECK(k >= 1 && k <= kMaxK, kInvalidArgument, "--k ", k, " is outside 1..", kMaxK);
    KVRAG_CHECK(k <= chunks, kInvalidArgument, "--k ", k, " needs at least ", k,
                " chunks, but the index of ", target.model, " holds ", chunks);
  }
}

}  // namespace

std::vector<Variant> variants_for(const std::vector<Mode>& modes) {
  KVRAG_CHECK(!modes.empty(), kInvalidArgument, "no modes to benchmark");
  std::vector<Variant> variants;
  std::set<Mode> seen;
  for (const Mode mode : modes) {
    KVRAG_CHECK(seen.insert(mode).second, kInvalidArgument, "mode '", mode_name(mode),
                "' given twice");
    if (mode == Mode::kCached) {
      variants.push_back({"cached-sqlite", "cached"});
      variants.push_back({"cached-ram", "cached"});
    } else {
      variants.push_back({mode_name(mode), mode_name(mode)});
    }
  }
  return variants;
}

BenchPipelines open_bench_pipelines(const std::string& dir, const OpenOptions& options) {
  BenchPipelines pipelines;
  pipelines.ram = RagPipeline::open(dir, options);
  OpenOptions sqlite_options = options;
  sqlite_options.kv_cache_bytes = 0;
  sqlite_options.model = pipelines.ram->shared_model();
  pipelines.sqlite = RagPipeline::open(dir, sqlite_options);
  return pipelines;
}

std::vector<std::vector<RetrievedChunk>> retrieve_questions(
    const RagPipeline& pipeline, const std::vector<EvalQuestion>& questions, int64_t k,
    RetrieverKind retriever) {
  std::vector<std::vector<RetrievedChunk>> out;
  out.reserve(questions.size());
  for (const EvalQuestion& q : questions)
    out.push_back(pipeline.retrieve(q.question, k, retriever));
  return out;
}

BenchResult run_bench(const BenchTarget& target, const std::vector<EvalQuestion>& questions,
                      const BenchSettings& settings, const BenchProgressFn& progress) {
  check_settings(target, questions, settings);
  std::vector<int64_t> ks = settings.ks;
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  const std::vector<Variant>& variants = settings.variants;
  const int64_t chunk_tokens = target.ram->settings().chunking.max_tokens;
  const auto n_questions = static_cast<int64_t>(questions.size());
  const auto n_ks = static_cast<int64_t>(ks.size());
  const auto n_variants = static_cast<int64_t>(variants.size());
  const auto n_cached = static_cast<int64_t>(std::count_if(
      variants.begin(), variants.end(), [](const Variant& v) { return v.mode == "cached"; }));

  BenchProgress state{target.model, 0, n_questions, 0, "", 0, 0};
  state.answers_total = n_ks * n_variants * (settings.warmup + n_questions * settings.repeat) +
                        n_ks * n_questions * n_cached;
  auto report = [&](int64_t question, int64_t k, const std::string& variant) {
    ++state.answers_done;
    state.question = question;
    state.k = k;
    state.variant = variant;
    if (progress) progress(state);
  };

  // data[k index][variant index]
  std::vector<std::vector<CellData>> data(ks.size(), std::vector<CellData>(variants.size()));
  // Measured around every round, not once: a shared VM streamed anything
  // from 21 to 48 GB/s within minutes, and a bound from one slow spell was
  // beaten by the answers themselves (1.36x of a bound at 21.0 GB/s).
  double best_stream = 0.0;
  const StreamProbe probe;
  for (int64_t q = 0; q < n_questions; ++q) {
    const std::string& question = questions[q].question;
    const std::vector<RetrievedChunk> retrieved =
        target.retrieved ? target.retrieved->at(static_cast<size_t>(q))
                         : target.ram->retrieve(question, ks.back(), settings.retriever);
    for (int64_t ki = 0; ki < n_ks; ++ki) {
      const std::vector<RetrievedChunk> chunks(
          retrieved.begin(), retrieved.begin() + std::min<int64_t>(ks[ki], retrieved.size()));
      const double rate_before = probe.best_of(compute_threads(), kRoundPasses);
      for (int64_t v = 0; v < n_variants; ++v) {
        const RagPipeline& pipeline = pipeline_for(target, variants[v]);
        const AskOptions options = ask_options(variants[v], settings);
        for (int64_t w = 0; q == 0 && w < settings.warmup; ++w) {
          pipeline.answer(question, chunks, options);
          report(q + 1, ks[ki], variants[v].name + " (warm-up)");
        }
      }
      // An untimed answer of each cached variant per question: cached-ram's
      // fills its RAM cache; then cached-sqlite's, so that its timed reads
      // find the heap as a server reading SQLite has it. Without it (or with
      // it before the fill), cached-sqlite's reads went into memory the
      // cache fill had just taken from the heap, fresh pages faulted in for
      // each question (T5-base, k = 50: 4,600-23,500 page faults, K/V load
      // 110-415 ms, where the repeats after it had none and took 19-41 ms).
      for (const std::string name : {"cached-ram", "cached-sqlite"}) {
        for (const Variant& variant : variants) {
          if (variant.name != name) continue;
          pipeline_for(target, variant).answer(question, chunks, ask_options(variant, settings));
          report(q + 1, ks[ki],
                 name + (name == "cached-ram" ? " (filling the cache)" : " (untimed)"));
        }
      }
      std::vector<size_t> first(variants.size());
      for (int64_t v = 0; v < n_variants; ++v) first[v] = data[ki][v].samples.size();
      for (int64_t r = 0; r < settings.repeat; ++r) {
        for (int64_t v = 0; v < n_variants; ++v) {
          const RagPipeline& pipeline = pipeline_for(target, variants[v]);
          const AskOptions options = ask_options(variants[v], settings);
          CellData& cell = data[ki][v];
          std::string text;
          cell.samples.push_back(timed_answer(pipeline, question, chunks, options,
                                              r == 0 ? &text : nullptr, probe.bytes()));
          if (r == 0) cell.answers.push_back(text);
          report(q + 1, ks[ki], variants[v].name);
        }
      }
      const double rate_after = probe.best_of(compute_threads(), kRoundPasses);
      set_round_rate(data[ki], first, std::max(rate_before, rate_after));
      best_stream = std::max({best_stream, rate_before, rate_after});
    }
  }

  BenchResult result;
  result.stream_bytes_per_s = best_stream;
  for (int64_t ki = 0; ki < n_ks; ++ki) {
    for (int64_t v = 0; v < n_variants; ++v) {
      result.cells.push_back(
          summarise(target, variants[v], chunk_tokens, ks[ki], data[ki][v], questions));
    }
    if (!target.random_weights) {
      const auto rows = agreement_at(target, chunk_tokens, ks[ki], variants, data[ki]);
      result.agreement.insert(result.agreement.end(), rows.begin(), rows.end());
    }
  }
  return result;
}

StorageSummary storage_summary(const RagPipeline& pipeline, const std::string& model) {
  const IndexStats stats = pipeline.stats();
  const T5Config& config = pipeline.model().config;
  StorageSummary s;
  s.model = model;
  s.chunk_tokens = stats.settings.chunking.max_tokens;
  s.documents = stats.store.documents;
  s.chunks = stats.store.chunks;
  s.memory_tokens = stats.store.memory_tokens;
  s.text_bytes = stats.store.text_bytes;
  s.stored_memory_bytes = stats.store.memory_bytes;
  s.file_bytes = stats.store.file_bytes;
  for (const CacheGranularity granularity : {CacheGranularity::kKv, CacheGranularity::kHidden}) {
    // The blob layouts of CacheGranularity (pipeline/index_settings.h).
    const bool kv = granularity == CacheGranularity::kKv;
    const int64_t matrices = kv ? 2 * config.num_decoder_layers : 1;
    const int64_t cols = kv ? config.inner_dim() : config.d_model;
    for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
      // A blob's size is a header plus a fixed number of bytes per token.
      const auto header = static_cast<int64_t>(kv_blob_size(dtype, matrices, 0, cols));
      const auto per_token = static_cast<int64_t>(kv_blob_size(dtype, matrices, 1, cols)) - header;
      StorageRow row;
      row.granularity = cache_granularity_name(granularity);
      row.dtype = kv_dtype_name(dtype);
      row.bytes_per_token = static_cast<double>(per_token);
      row.index_bytes = s.chunks * header + s.memory_tokens * per_token;
      row.bytes_per_chunk =
          s.chunks > 0 ? static_cast<double>(row.index_bytes) / static_cast<double>(s.chunks) : 0;
      row.stored = granularity == stats.settings.cache && dtype == stats.settings.kv_dtype;
      s.rows.push_back(row);
    }
  }
  return s;
}

MachineInfo machine_info() {
  MachineInfo m;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      m.cpu_model = colon == std::string::npos ? line : line.substr(colon + 2);
      break;
    }
  }
  if (m.cpu_model.empty()) m.cpu_model = "unknown CPU";
  m.cores = sysconf(_SC_NPROCESSORS_ONLN);
  m.memory_bytes = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  m.threads = compute_threads();
  m.stream_bytes_per_s = stream_bandwidth(m.threads);
  return m;
}

uint64_t stream_read(std::span<const uint64_t> words, int64_t threads) {
  KVRAG_CHECK(threads >= 1, kInvalidArgument, "stream_read: threads must be >= 1, got ", threads);
  const auto n = static_cast<int64_t>(words.size());
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int64_t t = 0; t < threads; ++t) {
    // Integer sums vectorise without reassociating floats.
    workers.emplace_back([&sums, words, t, begin = n * t / threads, end = n * (t + 1) / threads] {
      sums[static_cast<size_t>(t)] =
          std::accumulate(words.begin() + begin, words.begin() + end, uint64_t{0});
    });
  }
  for (std::thread& w : workers) w.join();
  return std::accumulate(sums.begin(), sums.end(), uint64_t{0});
}

StreamProbe::StreamProbe() : words_((size_t{256} << 20) / sizeof(uint64_t), 1) {}

int64_t StreamProbe::bytes() const {
  return static_cast<int64_t>(words_.size() * sizeof(uint64_t));
}

double StreamProbe::pass(int64_t threads) const {
  const auto start = std::chrono::steady_clock::now();
  const uint64_t sum = stream_read(words_, threads);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  KVRAG_CHECK(sum == words_.size(), kInternal, "StreamProbe: the buffer summed to ", sum);
  return static_cast<double>(words_.size() * sizeof(uint64_t)) / s;
}

double StreamProbe::best_of(int64_t threads, int passes) const {
  double best = 0.0;
  for (int p = 0; p < passes; ++p) best = std::max(best, pass(threads));
  return best;
}

double stream_bandwidth(int64_t threads) { return StreamProbe().best_of(threads, 5); }

}  // namespace kvrag::bench

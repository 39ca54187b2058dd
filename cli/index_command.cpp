// kvrag index: reads a corpus and adds it to an index folder (creating it on
// first use), with a progress display and a summary.
#include <unistd.h>

#include <iostream>
#include <sstream>

#include "cli/args.h"
#include "cli/ask_args.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/open_args.h"
#include "core/error.h"
#include "data/corpus_reader.h"
#include "pipeline/rag_pipeline.h"

namespace kvrag::cli {
namespace {

const std::string kIndexUsage =
    "usage: kvrag index [--model DIR] --index PATH|URI [--chunk-tokens 64] [--overlap 0]\n"
    "                   [--cache kv|hidden] [--kv-dtype f16|f32|int8] [--faiss Flat]\n"
    "                   [--embedder DIR] [--batch 16] " +
    std::string(kWeightsSynopsis) +
    " FILES_OR_DIRS...\n"
    "  Reads .txt, .md and .jsonl files (folders recursively), splits them into\n"
    "  chunks, encodes every chunk once and stores its cross-attention K/V (or,\n"
    "  with --cache hidden, its encoder output) in PATH/store.sqlite and its\n"
    "  embedding in PATH/vectors.faiss. --model is required to create an index;\n"
    "  on an existing one it may be omitted, and settings given must equal the\n"
    "  index's. A document whose id is already indexed is replaced, or left\n"
    "  alone when unchanged. --batch documents are written per transaction.\n"
    "  --embedder DIR embeds chunks and questions with a separate retriever in\n"
    "  the sentence-transformers layout (GTR-T5, sentence-T5: modules.json, a T5\n"
    "  encoder, mean pooling, 2_Dense) instead of the reader's encoder; the index\n"
    "  records it and every command that opens the index uses it.\n" +
    std::string(kWeightsUsage);

// `parse(text)` with its error message prefixed by the option's name.
template <typename Parse>
auto parse_option(const Args& args, const std::string& name, const std::string& fallback,
                  Parse parse) {
  try {
    return parse(args.get(name, fallback));
  } catch (const Error& e) {
    throw UsageError(str_cat("--", name, ": ", e.what()));
  }
}

IndexSettings settings_from_args(const Args& args) {
  IndexSettings s;
  const ChunkOptions defaults;
  s.chunking.max_tokens =
      static_cast<int>(args.get_int("chunk-tokens", defaults.max_tokens, 1, kMaxChunkTokens));
  // Checked against --chunk-tokens when an index is created (check_settings),
  // against the index's own when it exists (check_settings_match): not here,
  // where a --chunk-tokens left out reads as the default.
  s.chunking.overlap =
      static_cast<int>(args.get_int("overlap", defaults.overlap, 0, kMaxChunkTokens - 1));
  s.cache = parse_option(args, "cache", "kv", parse_cache_granularity);
  s.kv_dtype = parse_option(args, "kv-dtype", "f16", parse_kv_dtype);
  s.faiss_factory = args.get("faiss", "Flat");
  KVRAG_USAGE_CHECK(!s.faiss_factory.empty(), "--faiss is empty");
  s.embedder_dir = args.get("embedder", "");
  return s;
}

// An existing index's settings are fixed: an option given with another
// value is an error naming it, never silently ignored.
void check_settings_match(const Args& args, const IndexSettings& wanted,
                          const IndexSettings& index) {
  const auto check = [&](const char* name, const std::string& want, const std::string& have) {
    KVRAG_CHECK(!args.has(name) || want == have, kInvalidArgument, "--", name, " ", want,
                " differs from the index's ", have,
                " (settings are fixed when an index is created; use a new --index folder)");
  };
  check("chunk-tokens", std::to_string(wanted.chunking.max_tokens),
        std::to_string(index.chunking.max_tokens));
  check("overlap", std::to_string(wanted.chunking.overlap), std::to_string(index.chunking.overlap));
  check("cache", cache_granularity_name(wanted.cache), cache_granularity_name(index.cache));
  check("kv-dtype", kv_dtype_name(wanted.kv_dtype), kv_dtype_name(index.kv_dtype));
  check("faiss", wanted.faiss_factory, index.faiss_factory);
}

std::unique_ptr<RagPipeline> open_index(const Args& args, const IndexSettings& settings) {
  const std::string dir = args.require("index");
  // On an existing index, --model and --embedder must have its fingerprints.
  const OpenOptions options = read_open_options(args);
  if (RagPipeline::exists(dir)) {
    auto pipeline = RagPipeline::open(dir, options);
    check_settings_match(args, settings, pipeline->settings());
    return pipeline;
  }
  KVRAG_USAGE_CHECK(args.has("model"), "missing --model (", dir,
                    " holds no index yet, and creating one needs the model)");
  return RagPipeline::create(dir, args.require("model"), settings, options);
}

// A bar redrawn in place on a terminal; elsewhere (a log, a pipe) a plain
// line at most every kPlainInterval seconds and at the end.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::ostream& out, bool tty) : out_(out), tty_(tty) {}

  void operator()(const IndexProgress& p) {
    const bool done = p.documents_done == p.documents_total;
    if (!tty_ && !done && p.seconds - last_line_ < kPlainInterval) return;
    last_line_ = p.seconds;
    std::ostringstream line;
    if (tty_) line << "\r" << bar(p) << " ";
    line << p.documents_done << "/" << p.documents_total << " documents, " << p.chunks_done
         << " chunks, " << rate(p.chunks_done, p.seconds) << " chunks/s";
    if (!done && p.documents_done > 0) {
      const double eta = p.seconds * static_cast<double>(p.documents_total - p.documents_done) /
                         static_cast<double>(p.documents_done);
      line << ", ETA " << human_seconds(eta);
    }
    // Pads over the tail of a longer previous line.
    out_ << line.str() << (tty_ ? "    " : "") << (tty_ && !done ? "" : "\n") << std::flush;
  }

 private:
  static constexpr double kPlainInterval = 5.0;
  static constexpr int kBarWidth = 24;

  static std::string bar(const IndexProgress& p) {
    const int filled = p.documents_total > 0
                           ? static_cast<int>(kBarWidth * p.documents_done / p.documents_total)
                           : kBarWidth;
    std::string text = "[";
    text.append(static_cast<size_t>(filled), '#')
        .append(static_cast<size_t>(kBarWidth - filled), '-');
    return text.append("]");
  }

  static std::string rate(int64_t count, double seconds) {
    return fixed(seconds > 0 ? static_cast<double>(count) / seconds : 0.0, 1);
  }

  std::ostream& out_;
  bool tty_;
  double last_line_ = 0.0;
};

void print_summary(const std::string& dir, const IndexReport& r, size_t skipped,
                   const IndexSettings& settings) {
  std::cout << "indexed into " << dir << " in " << human_seconds(r.seconds) << "\n"
            << "documents: " << r.documents_added << " added, " << r.documents_replaced
            << " replaced, " << r.documents_unchanged << " unchanged, " << skipped << " skipped\n"
            << "chunks: " << r.chunks_added << " written (" << r.chunks_reused
            << " reused from equal chunks), "
            << (r.seconds > 0 ? static_cast<int64_t>(r.chunks_added / r.seconds) : 0)
            << " chunks/s\n";
  const std::string what = settings.cache == CacheGranularity::kKv ? "K/V" : "encoder output";
  std::cout << "cached " << what << " (" << cache_granularity_name(settings.cache) << ", "
            << kv_dtype_name(settings.kv_dtype) << "): ";
  if (r.chunks_added == 0) {
    std::cout << "nothing new written\n";
    return;
  }
  const double per_chunk = static_cast<double>(r.memory_bytes_added) / r.chunks_added;
  std::cout << static_cast<int64_t>(per_chunk) << " bytes (" << human_bytes(per_chunk)
            << ") per chunk, " << r.memory_bytes_added << " bytes ("
            << human_bytes(static_cast<double>(r.memory_bytes_added)) << ") in all\n";
}

int run_index(const std::vector<std::string>& argv) {
  const Args args(argv,
                  {"model", "index", "chunk-tokens", "overlap", "cache", "kv-dtype", "faiss",
                   "embedder", "batch", "weights"},
                  {});
  const std::string dir = args.require("index");
  const IndexSettings settings = settings_from_args(args);
  const int64_t batch = args.get_int("batch", 16, 1, 1 << 20);
  KVRAG_USAGE_CHECK(!args.positional().empty(), "give the files or folders to index");

  const CorpusReadResult corpus = read_corpus(args.positional());
  for (const SkippedInput& s : corpus.skipped) {
    std::cerr << "skipped " << s.source << ": " << s.reason << "\n";
  }
  KVRAG_CHECK(!corpus.documents.empty(), kInvalidArgument, "no documents to index (",
              corpus.skipped.size(), " inputs skipped)");
  const auto pipeline = open_index(args, settings);
  ProgressPrinter progress(std::cerr, isatty(STDERR_FILENO) != 0);
  const IndexReport report = pipeline->add_documents(
      corpus.documents, batch, [&progress](const IndexProgress& p) { progress(p); });
  print_summary(dir, report, corpus.skipped.size(), pipeline->settings());
  return 0;
}

const RegisterCommand kRegisterIndex("index", {run_index, kIndexUsage.c_str(),
                                               "add .txt/.md/.jsonl documents to an index"});

}  // namespace
}  // namespace kvrag::cli

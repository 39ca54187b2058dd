// kvrag info: what an index folder holds and what it costs.
#include <iomanip>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/open_args.h"
#include "core/error.h"
#include "pipeline/rag_pipeline.h"

namespace kvrag::cli {
namespace {

constexpr const char* kInfoUsage =
    "usage: kvrag info --index PATH|URI [--model DIR] [--embedder DIR]\n"
    "  Prints the index's model, embedder, counts, bytes by table, cached K/V\n"
    "  bytes per token and per chunk, FAISS type and size, and settings.\n";

// "12345 bytes (12.1 KiB)".
std::string bytes_text(int64_t bytes) {
  return std::to_string(bytes) + " bytes (" + human_bytes(static_cast<double>(bytes)) + ")";
}

void print_row(const std::string& name, const std::string& value) {
  std::cout << std::left << std::setw(22) << name << value << "\n";
}

int run_info(const std::vector<std::string>& argv) {
  const Args args(argv, {"index", "model", "embedder"}, {});
  const std::string dir = args.require("index");
  KVRAG_USAGE_CHECK(args.positional().empty(), "unexpected argument '", args.positional().front(),
                    "'");
  const OpenOptions options = read_open_options(args);
  const auto pipeline = RagPipeline::open(dir, options);
  const IndexStats s = pipeline->stats();
  const T5Config& c = pipeline->model().config;
  const IndexSettings& settings = s.settings;
  const bool kv = settings.cache == CacheGranularity::kKv;

  print_row("index", pipeline->dir());
  print_row("model", s.model_dir + " (fingerprint " + s.model_fingerprint + ")");
  print_row("model shape",
            "d_model " + std::to_string(c.d_model) + ", " + std::to_string(c.num_layers) +
                " encoder / " + std::to_string(c.num_decoder_layers) + " decoder layers, " +
                std::to_string(c.num_heads) + " heads x d_kv " + std::to_string(c.d_kv));
  const std::string dim = std::to_string(s.embedding_dim) + " dimensions";
  print_row("embedder", s.embedder_dir.empty() ? "the model's encoder (mean-pooled), " + dim
                                               : s.embedder_dir + " (fingerprint " +
                                                     s.embedder_fingerprint + "), " + dim);
  print_row("documents", std::to_string(s.store.documents));
  print_row("chunks", std::to_string(s.store.chunks));
  print_row("cached tokens", std::to_string(s.store.memory_tokens));
  if (s.shared) {
    print_row("metadata store", bytes_text(s.store.file_bytes) + " in the database");
    print_row("  document text", bytes_text(s.store.text_bytes));
    print_row("  chunk embeddings", bytes_text(s.store.embedding_bytes));
    print_row("blob store", bytes_text(s.store.memory_bytes) + " of chunk memories");
  } else {
    print_row("store.sqlite", bytes_text(s.store.file_bytes) + " on disk, WAL included");
    print_row("  documents.text", bytes_text(s.store.text_bytes));
    print_row("  chunks.embedding", bytes_text(s.store.embedding_bytes));
    print_row("  chunk_kv.data", bytes_text(s.store.memory_bytes));
  }
  const std::string what = kv ? "cached K/V" : "cached hidden";
  print_row(what + "/token", bytes_text(s.memory_bytes_per_token));
  if (s.store.chunks > 0) {
    print_row(what + "/chunk", bytes_text(s.store.memory_bytes / s.store.chunks) + " average, " +
                                   std::to_string(s.store.memory_tokens / s.store.chunks) +
                                   " tokens");
  }
  print_row("faiss", s.faiss_factory + ", " + std::to_string(s.faiss_vectors) + " vectors, " +
                         (s.shared ? std::string("built in memory from the stored embeddings")
                                   : "vectors.faiss " + bytes_text(s.faiss_file_bytes)));
  print_row("chunk tokens", std::to_string(settings.chunking.max_tokens));
  print_row("overlap", std::to_string(settings.chunking.overlap));
  print_row("cache", cache_granularity_name(settings.cache));
  print_row("kv dtype", kv_dtype_name(settings.kv_dtype));
  print_row("prompt question", settings.prompts.question);
  print_row("prompt chunk", settings.prompts.chunk);
  print_row("prompt fid", settings.prompts.fid);
  print_row("prompt concat", settings.prompts.concat);
  print_row("prompt concat passage", settings.prompts.concat_passage);
  return 0;
}

const RegisterCommand kRegisterInfo("info", {run_info, kInfoUsage,
                                             "show an index's model, sizes and settings"});

}  // namespace
}  // namespace kvrag::cli

// kvrag search: the chunks a retriever finds for a query, no generation.
#include <chrono>
#include <iostream>

#include "api/result_json.h"
#include "cli/args.h"
#include "cli/ask_args.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/open_args.h"
#include "core/error.h"
#include "pipeline/rag_pipeline.h"

namespace kvrag::cli {
namespace {

constexpr const char* kSearchUsage =
    "usage: kvrag search --index PATH|URI [--k 5] [--retriever dense|bm25|hybrid] [--model DIR]\n"
    "                    [--embedder DIR] [--json] \"query\"\n"
    "  Prints the top k chunks with their document, title and retriever score\n"
    "  (inner product for dense, -bm25 for bm25, for hybrid the fused score of both\n"
    "  lists' robust z-scores, retriever/fusion.h);\n"
    "  --json prints the HTTP API's /v1/search body.\n";

int run_search(const std::vector<std::string>& argv) {
  const Args args(argv, {"index", "k", "retriever", "model", "embedder"}, {"json"});
  const int64_t k = read_k(args);
  const RetrieverKind retriever = read_retriever(args);
  std::string query;
  for (const std::string& word : args.positional()) query += (query.empty() ? "" : " ") + word;
  KVRAG_USAGE_CHECK(!query.empty(), "give the query to search for");

  const OpenOptions open = read_open_options(args);
  const auto pipeline = RagPipeline::open(args.require("index"), open);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<RetrievedChunk> chunks = pipeline->retrieve(query, k, retriever);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (args.flag("json")) {
    std::cout << api::dump(api::search_json(chunks, ms)) << "\n";
    return 0;
  }
  for (size_t i = 0; i < chunks.size(); ++i) {
    const RetrievedChunk& chunk = chunks[i];
    std::cout << i + 1 << ". " << chunk.external_id << " \"" << chunk.title << "\" chunk "
              << chunk.position << " (chunk id " << chunk.chunk_id << ")  score "
              << fixed(chunk.score, 4) << "\n   " << chunk.text << "\n";
  }
  std::cerr << chunks.size() << " chunks (" << retriever_name(retriever) << ") in " << fixed(ms, 1)
            << " ms\n";
  return 0;
}

const RegisterCommand kRegisterSearch("search", {run_search, kSearchUsage,
                                                 "print the chunks a retriever finds for a query"});

}  // namespace
}  // namespace kvrag::cli

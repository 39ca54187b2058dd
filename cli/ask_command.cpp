// kvrag ask: answers a question over an index folder.
#include <iostream>
#include <sstream>

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

// Built once from the pipeline's defaults (pipeline/ask_options.h).
const char* ask_usage() {
  static const std::string usage = [] {
    std::ostringstream text;
    text << "usage: kvrag ask --index PATH|URI [--mode cached|concat|fid] [--retriever "
            "dense|bm25|hybrid]\n"
            "                 [--k "
         << kDefaultK
         << "] [--passage-prior on|off] [--beams N] [--max-new-tokens N]\n"
            "                 [--model DIR] [--embedder DIR] "
         << kWeightsSynopsis
         << " [--json]\n"
            "                 \"question\"\n"
            "  Retrieves the top k chunks and answers from them. cached (default): the decoder\n"
            "  reads the question's K/V followed by the chunks' cached K/V; concat: one joint\n"
            "  encoding of question and passages; fid: each passage encoded with the question.\n"
            "  Prints the answer (streamed as it is generated, greedy only), the sources with\n"
            "  their share of the decoder's cross-attention, and the timings; --json prints\n"
            "  the HTTP API's /v1/ask body instead.\n"
         << kPassagePriorUsage << kWeightsUsage;
    return text.str();
  }();
  return usage.c_str();
}

std::string joined_words(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : " ") + word;
  return text;
}

void print_sources(const Answer& answer) {
  std::cout << "\nsources:\n";
  for (size_t i = 0; i < answer.sources.size(); ++i) {
    const Source& source = answer.sources[i];
    const RetrievedChunk& chunk = source.chunk;
    std::cout << "  " << i + 1 << ". " << chunk.external_id << " \"" << chunk.title << "\" chunk "
              << chunk.position << "  score " << fixed(chunk.score, 4);
    if (source.prior) std::cout << "  prior " << percent(*source.prior);
    std::cout << "  attention " << percent(source.attention) << "\n";
  }
  std::cout << "  question itself: attention " << percent(answer.question_attention) << "\n";
}

void print_timings(const AskTimings& t) {
  std::cout << "\ntimings: retrieve " << fixed(t.retrieve_ms, 1) << " ms, load K/V "
            << fixed(t.load_kv_ms, 1) << " ms (" << t.kv_cache_misses << " from the store, "
            << human_bytes(static_cast<double>(t.store_bytes_read)) << "; " << t.kv_cache_hits
            << " from RAM), encode " << fixed(t.encode_ms, 1) << " ms, first token "
            << fixed(t.first_token_ms, 1) << " ms, decode " << fixed(t.decode_ms, 1) << " ms ("
            << t.generated_tokens << " tokens, " << fixed(t.tokens_per_s, 0)
            << " tokens/s), memory " << t.memory_tokens << " tokens, total " << fixed(t.total_ms, 1)
            << " ms\n";
}

int run_ask(const std::vector<std::string>& argv) {
  const Args args(argv,
                  {"index", "mode", "retriever", "k", "passage-prior", "beams", "max-new-tokens",
                   "model", "embedder", "weights"},
                  {"json"});
  const AskOptions options = read_ask_options(args);
  const std::string question = joined_words(args.positional());
  KVRAG_USAGE_CHECK(!question.empty(), "give the question to answer");

  const OpenOptions open = read_open_options(args);
  const auto pipeline = RagPipeline::open(args.require("index"), open);
  if (args.flag("json")) {
    const Answer answer = pipeline->ask(question, options);
    nlohmann::json body = api::answer_json(answer);
    body["retriever"] = retriever_name(options.retriever);
    body["k"] = options.k;
    std::cout << api::dump(body) << "\n";
    return 0;
  }
  // Greedy decoding hands out pieces as it makes them; beam search all at
  // the end, once the best hypothesis is known.
  const Answer answer = pipeline->ask(
      question, options, [](const std::string& piece) { std::cout << piece << std::flush; });
  std::cout << "\n";
  print_sources(answer);
  print_timings(answer.timings);
  return 0;
}

const RegisterCommand kRegisterAsk("ask",
                                   {run_ask, ask_usage(),
                                    "answer a question from an index (cached, concat, fid)"});

}  // namespace
}  // namespace kvrag::cli

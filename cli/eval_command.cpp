// kvrag eval: exact match and F1 per answering mode, retrieval recall@k per
// retriever, over a question file.
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/args.h"
#include "cli/ask_args.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/open_args.h"
#include "core/error.h"
#include "data/question_reader.h"
#include "pipeline/evaluation.h"
#include "pipeline/rag_pipeline.h"

namespace kvrag::cli {
namespace {

// Built once from the pipeline's defaults (pipeline/ask_options.h).
const char* eval_usage() {
  static const std::string usage = [] {
    std::ostringstream text;
    text
        << "usage: kvrag eval --index PATH|URI --questions FILE.jsonl [--modes cached,concat,fid]\n"
           "                  [--k "
        << kDefaultK << "] [--retrievers dense,bm25,hybrid] [--retriever "
        << retriever_name(kDefaultRetriever)
        << "]\n"
           "                  [--passage-prior on|off] [--limit N] [--beams N]\n"
           "                  [--max-new-tokens N] [--model DIR] [--embedder DIR]\n"
           "                  "
        << kWeightsSynopsis
        << " [--json]\n"
           "  FILE.jsonl: one {\"question\", \"answers\": [...], \"document_id\"?} per line.\n"
           "  Every mode answers from the same top k chunks of --retriever; exact match and F1\n"
           "  use SQuAD normalisation. For questions with a document_id, recall@k of each of\n"
           "  --retrievers: an answer-bearing chunk of the gold document among the top k, and\n"
           "  any chunk of it. --modes \"\" or --retrievers \"\" skips that part.\n"
        << kPassagePriorUsage << kWeightsUsage;
    return text.str();
  }();
  return usage.c_str();
}

std::string padded(const std::string& text, size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

void print_table(const EvalReport& report) {
  std::cout << report.questions << " questions, k=" << report.k << ", answers from "
            << retriever_name(report.answer_retriever) << " retrieval"
            << (report.passage_prior ? " weighed by the passage prior, " : ", ")
            << human_seconds(report.seconds) << "\n";
  if (!report.modes.empty()) {
    std::cout << "\n" << padded("mode", 9) << padded("EM", 9) << padded("F1", 9) << "ms/question\n";
    for (const ModeScore& score : report.modes) {
      std::cout << padded(mode_name(score.mode), 9) << padded(percent(score.exact_match, 6), 9)
                << padded(percent(score.f1, 6), 9) << fixed(score.answer_ms, 1) << "\n";
    }
  }
  if (!report.retrievers.empty()) {
    const std::string at = str_cat("@", report.k);
    std::cout << "\n"
              << padded("retriever", 11) << padded("questions", 11)
              << padded(str_cat("answer recall", at), 19) << "document recall" << at << "\n";
    for (const RetrievalScore& score : report.retrievers) {
      std::cout << padded(retriever_name(score.retriever), 11)
                << padded(std::to_string(score.questions), 11)
                << padded(percent(score.answer_recall, 6), 19) << percent(score.document_recall, 6)
                << "\n";
    }
  }
}

nlohmann::json report_json(const EvalReport& report) {
  nlohmann::json out = {{"questions", report.questions},
                        {"k", report.k},
                        {"answer_retriever", retriever_name(report.answer_retriever)},
                        {"passage_prior", report.passage_prior},
                        {"seconds", report.seconds},
                        {"modes", nlohmann::json::array()},
                        {"retrieval", nlohmann::json::array()},
                        {"predictions", nlohmann::json::array()}};
  for (const ModeScore& score : report.modes) {
    out["modes"].push_back({{"mode", mode_name(score.mode)},
                            {"exact_match", score.exact_match},
                            {"f1", score.f1},
                            {"answer_ms", score.answer_ms}});
  }
  for (const RetrievalScore& score : report.retrievers) {
    out["retrieval"].push_back({{"retriever", retriever_name(score.retriever)},
                                {"questions", score.questions},
                                {"answer_recall", score.answer_recall},
                                {"document_recall", score.document_recall}});
  }
  for (const EvalItem& item : report.items) {
    nlohmann::json answers = nlohmann::json::object();
    for (size_t m = 0; m < report.modes.size(); ++m) {
      answers[mode_name(report.modes[m].mode)] = item.predictions[m];
    }
    out["predictions"].push_back({{"question", item.question}, {"answers", answers}});
  }
  return out;
}

int run_eval(const std::vector<std::string>& argv) {
  const Args args(argv,
                  {"index", "questions", "modes", "k", "retrievers", "retriever", "passage-prior",
                   "limit", "beams", "max-new-tokens", "model", "embedder", "weights"},
                  {"json"});
  EvalOptions options;
  options.modes = args.get_list("modes", "cached,concat,fid", parse_mode);
  options.retrievers = args.get_list("retrievers", "dense,bm25,hybrid", parse_retriever);
  options.answer_retriever = read_retriever(args);
  options.k = read_k(args);
  options.passage_prior = read_passage_prior(args);
  options.generation = read_generation(args);
  const int64_t limit = args.get_int("limit", 0, 0, INT64_MAX);
  const std::vector<EvalQuestion> questions = read_eval_questions(args.require("questions"), limit);

  const OpenOptions open = read_open_options(args);
  const auto pipeline = RagPipeline::open(args.require("index"), open);
  const bool show_progress = isatty(STDERR_FILENO);
  const EvalReport report =
      evaluate(*pipeline, questions, options, [&](int64_t done, int64_t total) {
        if (show_progress) std::cerr << "\r" << done << "/" << total << " questions" << std::flush;
      });
  if (show_progress) std::cerr << "\n";
  if (args.flag("json")) {
    std::cout << report_json(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    print_table(report);
  }
  return 0;
}

const RegisterCommand kRegisterEval("eval",
                                    {run_eval, eval_usage(),
                                     "exact match, F1 and retrieval recall on a question file"});

}  // namespace
}  // namespace kvrag::cli

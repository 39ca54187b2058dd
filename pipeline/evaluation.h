// Evaluation of an index on a question file: exact match and F1 of each
// answering mode (SQuAD scoring, pipeline/qa_metrics.h) and, when questions
// name their gold document, retrieval recall@k of each retriever. What
// `kvrag eval` runs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/question_reader.h"  // EvalQuestion, read_eval_questions
#include "pipeline/rag_pipeline.h"

namespace kvrag {

struct EvalOptions {
  std::vector<Mode> modes{Mode::kCached, Mode::kConcat, Mode::kFid};
  // Retrievers whose recall@k is measured (questions with a document_id only).
  std::vector<RetrieverKind> retrievers{RetrieverKind::kDense, RetrieverKind::kBm25,
                                        RetrieverKind::kHybrid};
  // The retrieval every mode answers from: one retrieval per question,
  // shared by all modes, as the benchmark does.
  RetrieverKind answer_retriever = kDefaultRetriever;
  int64_t k = kDefaultK;  // 1..kMaxK
  bool passage_prior = kDefaultPassagePrior;
  GenerationOptions generation = AskOptions{}.generation;
};

struct ModeScore {
  Mode mode = Mode::kCached;
  double exact_match = 0.0;  // mean over questions, 0..1
  double f1 = 0.0;           // mean over questions, 0..1
  double answer_ms = 0.0;    // mean RagPipeline::answer time per question
};

struct RetrievalScore {
  RetrieverKind retriever = RetrieverKind::kDense;
  int64_t questions = 0;  // questions with a document_id
  // Share of them with a chunk of the gold document that contains a gold
  // answer (after SQuAD normalisation) among the top k.
  double answer_recall = 0.0;
  // Share of them with any chunk of the gold document among the top k.
  double document_recall = 0.0;
};

// One question's outcome, for a per-question listing.
struct EvalItem {
  std::string question;
  std::vector<std::string> predictions;  // parallel to EvalOptions::modes
};

struct EvalReport {
  int64_t questions = 0;
  int64_t k = 0;
  RetrieverKind answer_retriever = kDefaultRetriever;
  // Whether the passage prior weighed the answers (asked for, and declared
  // by the reader: RagPipeline::ask).
  bool passage_prior = false;
  std::vector<ModeScore> modes;            // parallel to EvalOptions::modes
  std::vector<RetrievalScore> retrievers;  // parallel to EvalOptions::retrievers
  std::vector<EvalItem> items;             // parallel to the questions
  double seconds = 0.0;
};

// Called after each question with (questions done, questions total).
using EvalProgress = std::function<void(int64_t done, int64_t total)>;

// True when `chunk_text` contains one of `answers` as a run of whole words
// after SQuAD normalisation (what makes a chunk answer-bearing).
bool contains_answer(const std::string& chunk_text, const std::vector<std::string>& answers);

// Runs every question: one retrieval with answer_retriever, an answer in
// each mode over the same chunks, and one retrieval per measured retriever.
// Error(kInvalidArgument) for no questions, no modes and no retrievers, or
// k outside 1..kMaxK; Error(kConflict), as ask(), when modes are to answer
// from an index with no documents; errors of the pipeline pass through.
EvalReport evaluate(const RagPipeline& pipeline, const std::vector<EvalQuestion>& questions,
                    const EvalOptions& options, const EvalProgress& progress = {});

}  // namespace kvrag

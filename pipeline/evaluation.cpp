#include "pipeline/evaluation.h"

#include <chrono>

#include "core/error.h"
#include "pipeline/qa_metrics.h"

namespace kvrag {
namespace {

using Clock = std::chrono::steady_clock;

// What one retrieval says about a question with a gold document.
struct RecallHit {
  bool document = false;
  bool answer = false;
};

RecallHit recall_of(const std::vector<RetrievedChunk>& chunks, const EvalQuestion& q) {
  RecallHit hit;
  for (const RetrievedChunk& chunk : chunks) {
    if (chunk.external_id != q.document_id) continue;
    hit.document = true;
    if (contains_answer(chunk.text, q.answers)) hit.answer = true;
  }
  return hit;
}

double mean(double sum, int64_t n) { return n > 0 ? sum / static_cast<double>(n) : 0.0; }

}  // namespace

bool contains_answer(const std::string& chunk_text, const std::vector<std::string>& answers) {
  // Spaces around both make the search match whole words only.
  const std::string text = str_cat(" ", normalize_answer(chunk_text), " ");
  for (const std::string& answer : answers) {
    const std::string words = normalize_answer(answer);
    if (!words.empty() && text.find(str_cat(" ", words, " ")) != std::string::npos) return true;
  }
  return false;
}

EvalReport evaluate(const RagPipeline& pipeline, const std::vector<EvalQuestion>& questions,
                    const EvalOptions& options, const EvalProgress& progress) {
  KVRAG_CHECK(!questions.empty(), kInvalidArgument, "no questions to evaluate");
  KVRAG_CHECK(!options.modes.empty() || !options.retrievers.empty(), kInvalidArgument,
              "nothing to evaluate: no modes and no retrievers");
  check_k(options.k);
  // Answers from no sources would be scored as if they were answers.
  if (!options.modes.empty()) pipeline.require_documents();
  // Every question checked before the first is answered: one over the
  // token cap found at the end would throw a long run's scores away.
  for (const EvalQuestion& q : questions) {
    try {
      pipeline.check_question(q.question);
    } catch (const Error& e) {
      throw Error(e.kind(), q.where.empty() ? e.what() : str_cat(q.where, ": ", e.what()));
    }
  }
  const auto start = Clock::now();
  EvalReport report;
  report.questions = static_cast<int64_t>(questions.size());
  report.k = options.k;
  report.answer_retriever = options.answer_retriever;
  for (Mode mode : options.modes) report.modes.push_back(ModeScore{mode, 0.0, 0.0, 0.0});
  for (RetrieverKind kind : options.retrievers)
    report.retrievers.push_back(RetrievalScore{kind, 0, 0.0, 0.0});

  AskOptions ask;
  ask.k = options.k;
  ask.passage_prior = options.passage_prior;
  ask.generation = options.generation;
  for (size_t qi = 0; qi < questions.size(); ++qi) {
    const EvalQuestion& q = questions[qi];
    EvalItem item{.question = q.question, .predictions = {}};
    std::vector<RetrievedChunk> shared;
    if (!options.modes.empty())
      shared = pipeline.retrieve(q.question, options.k, options.answer_retriever);
    for (ModeScore& score : report.modes) {
      ask.mode = score.mode;
      const Answer answer = pipeline.answer(q.question, shared, ask);
      if (!answer.sources.empty() && answer.sources[0].prior) report.passage_prior = true;
      score.exact_match += exact_match(answer.text, q.answers);
      score.f1 += token_f1(answer.text, q.answers);
      score.answer_ms += answer.timings.total_ms;
      item.predictions.push_back(answer.text);
    }
    if (!q.document_id.empty()) {
      for (RetrievalScore& score : report.retrievers) {
        const bool reuse = !options.modes.empty() && score.retriever == options.answer_retriever;
        const RecallHit hit = recall_of(
            reuse ? shared : pipeline.retrieve(q.question, options.k, score.retriever), q);
        ++score.questions;
        score.document_recall += hit.document ? 1.0 : 0.0;
        score.answer_recall += hit.answer ? 1.0 : 0.0;
      }
    }
    report.items.push_back(std::move(item));
    if (progress) progress(static_cast<int64_t>(qi + 1), report.questions);
  }
  for (ModeScore& score : report.modes) {
    score.exact_match = mean(score.exact_match, report.questions);
    score.f1 = mean(score.f1, report.questions);
    score.answer_ms = mean(score.answer_ms, report.questions);
  }
  for (RetrievalScore& score : report.retrievers) {
    score.document_recall = mean(score.document_recall, score.questions);
    score.answer_recall = mean(score.answer_recall, score.questions);
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace kvrag

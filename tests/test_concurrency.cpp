// RagPipeline under concurrent readers and a writer: readers only ever see
// committed documents (pipeline/rag_pipeline.h), and an answer() over chunks
// removed since their retrieval fails with a clear Error(kNotFound).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "data/corpus_reader.h"
#include "pipeline/rag_pipeline.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {
using testing::kDemoModel;
using testing::kSampleCorpus;
using testing::TempDir;
using testing::throws_error;

constexpr const char* kQuestion = testing::kPinnedQuestion;

std::map<std::string, Document> pinned_documents() {
  std::map<std::string, Document> by_id;
  for (const Document& doc : read_corpus({kSampleCorpus}).documents) by_id[doc.external_id] = doc;
  std::map<std::string, Document> pinned;
  for (const std::string& id : testing::kPinnedDocumentIds) pinned[id] = by_id.at(id);
  return pinned;
}

std::vector<Document> values(const std::map<std::string, Document>& docs) {
  std::vector<Document> out;
  for (const auto& [id, doc] : docs) out.push_back(doc);
  return out;
}

// Failures seen on reader threads, reported on the test thread.
class Failures {
 public:
  void add(const std::string& what) {
    const std::lock_guard<std::mutex> lock(mutex_);
    messages_.push_back(what);
  }
  std::vector<std::string> messages() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
};

// Every source must be a chunk of a pinned document, with its title and a
// text the document holds (the chunker keeps words, so a chunk's first word
// is in its document).
void check_sources(const Answer& answer, const std::map<std::string, Document>& docs,
                   Failures& failures) {
  for (const Source& source : answer.sources) {
    const auto doc = docs.find(source.chunk.external_id);
    if (doc == docs.end()) {
      failures.add("source of unknown document '" + source.chunk.external_id + "'");
      continue;
    }
    const std::string first_word = source.chunk.text.substr(0, source.chunk.text.find(' '));
    if (source.chunk.title != doc->second.title || first_word.empty() ||
        doc->second.text.find(first_word) == std::string::npos) {
      failures.add("source chunk " + std::to_string(source.chunk.chunk_id) +
                   " does not match document '" + doc->first + "'");
    }
  }
}

TEST(Concurrency, ReadersSeeOnlyCommittedDocumentsWhileOneIsReplaced) {
  const std::map<std::string, Document> docs = pinned_documents();
  TempDir dir("kvrag-concurrency");
  auto pipeline = RagPipeline::create(dir.file("index"), kDemoModel, IndexSettings{});
  pipeline->add_documents(values(docs));
  const RagPipeline& reader = *pipeline;
  const Document& churned = docs.at(testing::kPinnedDocumentId);  // the pinned answer's

  std::atomic<bool> done{false};
  Failures failures;
  std::atomic<int64_t> answers{0};
  std::atomic<int64_t> stale{0};
  auto read_loop = [&](Mode mode, RetrieverKind retriever) {
    AskOptions options;
    options.mode = mode;
    options.retriever = retriever;
    options.k = 4;
    options.generation.max_new_tokens = 2;
    while (!done.load()) {
      try {
        check_sources(reader.ask(kQuestion, options), docs, failures);
        ++answers;
        // Retrieved, then answered: the writer may remove a chunk in between.
        const auto chunks = reader.retrieve(kQuestion, options.k, retriever);
        try {
          check_sources(reader.answer(kQuestion, chunks, options), docs, failures);
          ++answers;
        } catch (const Error& e) {
          const std::string message = e.what();
          if (e.kind() != ErrorKind::kNotFound ||
              message.find("is no longer in the index") == std::string::npos) {
            throw;
          }
          ++stale;
        }
      } catch (const std::exception& e) {
        failures.add(std::string(mode_name(mode)) + ": " + e.what());
      }
    }
  };
  std::vector<std::thread> readers;
  readers.emplace_back(read_loop, Mode::kCached, RetrieverKind::kDense);
  readers.emplace_back(read_loop, Mode::kFid, RetrieverKind::kHybrid);
  readers.emplace_back(read_loop, Mode::kConcat, RetrieverKind::kBm25);
  for (int round = 0; round < 8; ++round) {
    try {
      EXPECT_TRUE(pipeline->remove_document(churned.external_id));
      Document copy = churned;
      // Alternating content, so that each add writes new chunk rows.
      if (round % 2 == 0) copy.text += " It was revised.";
      pipeline->add_documents({copy});
    } catch (const std::exception& e) {
      failures.add(std::string("writer: ") + e.what());
    }
  }
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_THAT(failures.messages(), ::testing::IsEmpty());
  EXPECT_GT(answers.load(), 0);
  RecordProperty("answers", std::to_string(answers.load()));
  RecordProperty("stale_answers_refused", std::to_string(stale.load()));
}

TEST(Concurrency, AnswerOverARemovedChunkNamesIt) {
  const std::map<std::string, Document> docs = pinned_documents();
  TempDir dir("kvrag-concurrency-stale");
  auto pipeline = RagPipeline::create(dir.file("index"), kDemoModel, IndexSettings{});
  pipeline->add_documents(values(docs));
  const std::vector<RetrievedChunk> chunks =
      pipeline->retrieve(kQuestion, 3, RetrieverKind::kDense);
  ASSERT_FALSE(chunks.empty());
  const RetrievedChunk& gone = chunks.front();
  ASSERT_TRUE(pipeline->remove_document(gone.external_id));
  for (const Mode mode : {Mode::kCached, Mode::kConcat, Mode::kFid}) {
    AskOptions options;
    options.mode = mode;
    EXPECT_TRUE(throws_error([&] { pipeline->answer(kQuestion, chunks, options); },
                             ErrorKind::kNotFound,
                             {str_cat("chunk ", gone.chunk_id), gone.external_id,
                              "no longer in the index", "retrieve again"}))
        << mode_name(mode);
  }
  AskTimings timings;
  EXPECT_TRUE(
      throws_error([&] { pipeline->build_memory(kQuestion, chunks, Mode::kCached, timings); },
                   ErrorKind::kNotFound, {str_cat("chunk ", gone.chunk_id)}));
}

// A concat answer encodes the texts its chunks carry after the read lock is
// released: a writer waits only for the check that those chunks are still
// in the index. When the encoding ran under the lock, the writer, and every
// reader queued behind it, waited for all of it. A ratio of one run, not a
// time: the write takes milliseconds, the 8,000-token prompt far longer.
TEST(Concurrency, AWriterDoesNotWaitForAConcatPromptsEncoding) {
  const std::map<std::string, Document> docs = pinned_documents();
  TempDir dir("kvrag-concurrency-long-prompt");
  auto pipeline = RagPipeline::create(dir.file("index"), kDemoModel, IndexSettings{});
  pipeline->add_documents(values(docs));
  std::vector<RetrievedChunk> chunks = pipeline->retrieve(kQuestion, 3, RetrieverKind::kDense);
  ASSERT_EQ(chunks.size(), 3u);
  std::string long_text = "the";
  for (int i = 1; i < 2600; ++i) long_text += " the";
  for (RetrievedChunk& chunk : chunks) chunk.text = long_text;
  AskOptions options;
  options.mode = Mode::kConcat;
  options.generation.max_new_tokens = 1;

  std::atomic<bool> started{false};
  double answer_ms = 0.0;
  std::thread reader([&] {
    const auto start = std::chrono::steady_clock::now();
    started = true;
    pipeline->answer(kQuestion, chunks, options);
    answer_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto start = std::chrono::steady_clock::now();
  Document extra = docs.begin()->second;
  extra.external_id = "written-beside-a-long-prompt";
  pipeline->add_documents({extra});
  const double write_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  reader.join();
  EXPECT_LT(write_ms, answer_ms / 3)
      << "the write took " << write_ms << " ms, the answer " << answer_ms << " ms";
}

}  // namespace
}  // namespace kvrag

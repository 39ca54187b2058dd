// `kvrag index`, `rm` and `info` run as a user runs them, and the crash test:
// a real `kvrag index` killed with SIGKILL part-way must leave an index with
// every document complete or absent and FAISS in step with SQLite.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "data/index_stores.h"
#include "data/sqlite_store.h"
#include "pipeline/document_encoder.h"
#include "pipeline/rag_pipeline.h"
#include "retriever/faiss_index.h"
#include "tests/cli_run.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;
using testing::CliRun;
using testing::describe;
using ::testing::HasSubstr;
using testing::KvragProcess;
using testing::run_kvrag;
using testing::TempDir;

using testing::kDemoModel;

void expect_usage_error(const std::vector<std::string>& args, const std::string& option) {
  const CliRun run = run_kvrag(args);
  EXPECT_EQ(run.exit_code, 2) << describe(run);
  EXPECT_THAT(run.err, HasSubstr(option)) << describe(run);
}

// The chunk ids of vectors.faiss and of the store, which must be equal.
void expect_faiss_matches_store(const std::string& dir) {
  const IndexStores stores = open_index_stores(dir + "/store.sqlite");
  std::vector<int64_t> store_ids;
  int64_t dim = 0;
  stores.metadata->for_each_embedding([&](int64_t id, std::span<const float> embedding) {
    store_ids.push_back(id);
    dim = static_cast<int64_t>(embedding.size());
  });
  const auto index = FaissIndex::load(dir + "/vectors.faiss", dim, "Flat");
  EXPECT_EQ(index->ids(), store_ids);
}

TEST(CliIndex, UsageErrorsExit2NamingTheOption) {
  const TempDir tmp("kvrag_test_cli_index");
  testing::write_text(tmp.file("a.txt"), "Some text.");
  expect_usage_error({"index", "--model", kDemoModel, tmp.file("a.txt")}, "--index");
  expect_usage_error({"index", "--index", tmp.file("i"), "--frobnicate", "1", tmp.file("a.txt")},
                     "--frobnicate");
  expect_usage_error({"index", "--model", kDemoModel, "--index", tmp.file("i"), "--kv-dtype", "f8",
                      tmp.file("a.txt")},
                     "--kv-dtype");
  expect_usage_error({"index", "--model", kDemoModel, "--index", tmp.file("i"), "--cache", "layers",
                      tmp.file("a.txt")},
                     "--cache");
  expect_usage_error({"index", "--model", kDemoModel, "--index", tmp.file("i"), "--chunk-tokens",
                      "200000", tmp.file("a.txt")},
                     "--chunk-tokens");
  expect_usage_error({"index", "--model", kDemoModel, "--index", tmp.file("i"), "--chunk-tokens",
                      "16", "--overlap", "16", tmp.file("a.txt")},
                     "overlap must be in [0, chunk tokens 16), got 16");
  expect_usage_error({"index", "--index", tmp.file("i"), tmp.file("a.txt")}, "--model");
  expect_usage_error({"rm", "x"}, "--index");
  expect_usage_error({"info"}, "--index");
  EXPECT_FALSE(fs::exists(tmp.path() / "i")) << "a usage error must not create the index";
}

TEST(CliIndex, IndexInfoReindexAndRemove) {
  const TempDir tmp("kvrag_test_cli_index");
  const fs::path corpus = tmp.path() / "corpus";
  fs::create_directories(corpus);
  testing::write_text((corpus / "harbour_towns.txt").string(),
                      "Brenna is a harbour town on the eastern coast. It was founded in 1544.");
  testing::write_text((corpus / "rivers.md").string(),
                      "# The Altan\n\nThe Altan rises on Mount Sorrel and empties into Lake Vire.");
  testing::write_text(
      (corpus / "people.jsonl").string(),
      R"({"id": "corvin", "title": "Corvin Hale", "text": "Corvin Hale was a painter."})"
      "\n{not json\n"
      R"({"id": "no-text", "title": "Empty"})"
      "\n"
      R"({"id": 7, "text": "Lake Vire is deep and cold."})"
      "\n");
  testing::write_text((corpus / "notes.pdf").string(), "%PDF");
  const std::string index = tmp.file("index");

  const CliRun first =
      run_kvrag({"index", "--model", kDemoModel, "--index", index, "--chunk-tokens", "32",
                 "--kv-dtype", "int8", "--batch", "2", corpus.string()});
  ASSERT_EQ(first.exit_code, 0) << describe(first);
  EXPECT_THAT(first.err, HasSubstr("people.jsonl:2"));
  EXPECT_THAT(first.err, HasSubstr("people.jsonl:3"));
  EXPECT_THAT(first.err, HasSubstr("notes.pdf"));
  EXPECT_THAT(first.out, HasSubstr("documents: 4 added, 0 replaced, 0 unchanged, 3 skipped"));
  EXPECT_THAT(first.out, HasSubstr("cached K/V (kv, int8)"));
  EXPECT_THAT(first.out, HasSubstr("per chunk"));

  const CliRun info = run_kvrag({"info", "--index", index});
  ASSERT_EQ(info.exit_code, 0) << describe(info);
  EXPECT_THAT(info.out, HasSubstr("kvrag-demo"));
  EXPECT_THAT(info.out, ::testing::ContainsRegex("documents +4\n"));
  EXPECT_THAT(info.out, ::testing::ContainsRegex("kv dtype +int8\n"));
  EXPECT_THAT(info.out, ::testing::ContainsRegex("chunk tokens +32\n"));
  EXPECT_THAT(info.out, HasSubstr("chunk_kv.data"));
  EXPECT_THAT(info.out, ::testing::ContainsRegex("faiss +Flat, 4 vectors"));
  // int8: per token 2 × 3 layers × (128 values + a 4-byte scale).
  EXPECT_THAT(info.out, ::testing::ContainsRegex("K/V/token +792 bytes"));

  // Settings of an existing index are fixed; --model may be left out.
  const CliRun mismatch =
      run_kvrag({"index", "--index", index, "--kv-dtype", "f16", corpus.string()});
  EXPECT_EQ(mismatch.exit_code, 2) << describe(mismatch);
  EXPECT_THAT(mismatch.err, HasSubstr("--kv-dtype f16 differs from the index's int8"));
  testing::write_text((corpus / "harbour_towns.txt").string(),
                      "Brenna is a harbour town on the eastern coast. It was founded in 1545.");
  const CliRun again =
      run_kvrag({"index", "--index", index, "--chunk-tokens", "32", corpus.string()});
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_THAT(again.out, HasSubstr("documents: 0 added, 1 replaced, 3 unchanged, 3 skipped"));

  const CliRun rm = run_kvrag({"rm", "--index", index, "corvin", "nobody"});
  EXPECT_EQ(rm.exit_code, 3) << describe(rm);
  EXPECT_THAT(rm.out, HasSubstr("removed corvin"));
  EXPECT_THAT(rm.err, HasSubstr("'nobody'"));
  const auto p = RagPipeline::open(index);
  EXPECT_FALSE(p->find_document("corvin").has_value());
  EXPECT_TRUE(p->find_document("7").has_value());
  EXPECT_EQ(p->stats().store.documents, 3);
  EXPECT_EQ(SqliteStore(index + "/store.sqlite").orphan_rows(), 0);
  expect_faiss_matches_store(index);
}

// The index's own --overlap, given without --chunk-tokens, is accepted: it
// was checked against the default --chunk-tokens (64) and refused.
TEST(CliIndex, AnExistingIndexsOverlapIsCheckedAgainstItsChunkTokens) {
  const TempDir tmp("kvrag_test_cli_index");
  testing::write_text(tmp.file("a.txt"), "Brenna is a harbour town on the eastern coast.");
  const std::string index = tmp.file("index");
  const CliRun create = run_kvrag({"index", "--model", kDemoModel, "--index", index,
                                   "--chunk-tokens", "128", "--overlap", "100", tmp.file("a.txt")});
  ASSERT_EQ(create.exit_code, 0) << describe(create);
  testing::write_text(tmp.file("b.txt"), "The Altan rises on Mount Sorrel.");
  const CliRun more = run_kvrag({"index", "--index", index, "--overlap", "100", tmp.file("b.txt")});
  ASSERT_EQ(more.exit_code, 0) << describe(more);
  EXPECT_THAT(more.out, HasSubstr("documents: 1 added"));
  const CliRun other = run_kvrag({"index", "--index", index, "--overlap", "90", tmp.file("b.txt")});
  EXPECT_EQ(other.exit_code, 2) << describe(other);
  EXPECT_THAT(other.err, HasSubstr("--overlap 90 differs from the index's 100"));
}

// Every document of the store has exactly the chunks chunking its text
// gives, and every chunk its memory blob and FTS row (orphan_rows).
void expect_complete_documents(const RagPipeline& p, const std::vector<std::string>& ids) {
  EXPECT_EQ(SqliteStore(p.dir() + "/store.sqlite").orphan_rows(), 0);
  const IndexStores stores = open_index_stores(p.dir() + "/store.sqlite");
  for (const std::string& id : ids) {
    const auto doc = p.find_document(id);
    if (!doc) continue;
    Document d;
    d.title = doc->title;
    d.text = doc->text;
    std::vector<ChunkInputs> inputs;
    const auto expected = chunk_document(p.model(), p.embedder(), p.settings(), d, inputs);
    const auto chunks = p.document_chunks(doc->id);
    ASSERT_EQ(chunks.size(), expected.size()) << "document " << id << " is partial";
    for (const ChunkRecord& c : chunks) {
      const auto blob = stores.blobs->get(c.id);
      EXPECT_TRUE(blob && !blob->empty()) << "chunk " << c.id << " has no memory blob";
    }
  }
}

TEST(CliIndex, SigkillPartWayLeavesNoPartialDocument) {
  const TempDir tmp("kvrag_test_cli_index");
  constexpr int kDocuments = 200;
  std::vector<std::string> ids;
  {
    std::ofstream out(tmp.file("corpus.jsonl"));
    for (int i = 0; i < kDocuments; ++i) {
      ids.push_back(std::string("d").append(std::to_string(i)));
      out << R"({"id": ")" << ids.back() << R"(", "title": "Place )" << i << R"(", "text": "Place )"
          << i << " lies " << (i * 7) % 90 << " km north of the capital. It has " << (i * 13) % 400
          << R"( inhabitants."})"
          << "\n";
    }
  }
  const std::string index = tmp.file("index");
  // 12-token chunks: a few per document, so a kill can land between a
  // document's chunks if the writes were not one transaction.
  const std::vector<std::string> args = {
      "index",   "--model", kDemoModel,       "--index", index,
      "--batch", "4",       "--chunk-tokens", "12",      tmp.file("corpus.jsonl")};
  {
    KvragProcess process(args);
    // vectors.faiss is rewritten after every committed batch; once it holds a
    // few batches' vectors (1 KiB each), the process is in the middle of the corpus.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (;;) {
      std::error_code ec;
      const auto size = fs::file_size(index + "/vectors.faiss", ec);
      if (!ec && size > 24 * 1024) break;
      ASSERT_TRUE(process.running()) << describe(process.wait());
      ASSERT_LT(std::chrono::steady_clock::now(), deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    // A little later than the save just seen, so the kill lands inside a later
    // batch's encoding or write rather than right after a commit.
    std::this_thread::sleep_for(std::chrono::milliseconds(37));
    ASSERT_EQ(kill(process.pid(), SIGKILL), 0);
    int end_signal = 0;
    const CliRun killed = process.wait(&end_signal);
    ASSERT_EQ(end_signal, SIGKILL) << "finished before the kill; " << describe(killed);
  }

  {
    const auto p = RagPipeline::open(index);
    const int64_t documents = p->stats().store.documents;
    std::cout << "[crash] " << documents << " of " << kDocuments
              << " documents committed before SIGKILL\n";
    EXPECT_GT(documents, 0);
    EXPECT_LT(documents, kDocuments);
    EXPECT_EQ(p->stats().faiss_vectors, p->stats().store.chunks);
    expect_complete_documents(*p, ids);
  }
  expect_faiss_matches_store(index);

  const CliRun rest = run_kvrag(args);
  ASSERT_EQ(rest.exit_code, 0) << describe(rest);
  EXPECT_THAT(rest.out, HasSubstr("0 replaced"));
  const auto p = RagPipeline::open(index);
  EXPECT_EQ(p->stats().store.documents, kDocuments);
  expect_complete_documents(*p, ids);
  expect_faiss_matches_store(index);
}

}  // namespace
}  // namespace kvrag

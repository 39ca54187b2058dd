// An index at a postgresql:// URI with its chunk memories in a Redis Cluster
// (blobs=), opened by several processes at once: what one node commits the
// others find at their next question (store generation, IndexFolder::
// catch_up), a node that writes after another's commit catches up whole,
// a lost blob is encoded again rather than failing the answer, a killed
// Redis master costs no ask, and an index copies to the cluster and back.
// Last, two real `kvrag serve` processes: a document posted to one is
// answered through the other. Suites named Cluster* need scripts/cluster.sh's
// cluster (KVRAG_TEST_POSTGRES and KVRAG_TEST_REDIS) and skip without it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/corpus_reader.h"
#include "data/index_stores.h"
#include "data/redis_cluster_blob_store.h"
#include "pipeline/qa_metrics.h"
#include "pipeline/rag_pipeline.h"
#include "tests/cli_run.h"
#include "tests/fixtures.h"
#include "tests/model_files.h"
#include "tests/redis_admin.h"
#include "tests/sample_corpus.h"
#include "tests/store_fixtures.h"

namespace kvrag {
namespace {

using nlohmann::json;
using testing::kDemoModel;

std::map<std::string, Document> sample_documents() {
  std::map<std::string, Document> by_id;
  for (const Document& doc : read_corpus({testing::kSampleCorpus}).documents) {
    by_id[doc.external_id] = doc;
  }
  return by_id;
}

// The pinned documents (tests/sample_corpus.h), without the pinned
// question's own: the memory then lacks its answer until a node adds it.
std::vector<Document> documents_without_the_pinned_one() {
  const std::map<std::string, Document> all = sample_documents();
  std::vector<Document> docs;
  for (const std::string& id : testing::kPinnedDocumentIds) {
    if (id != testing::kPinnedDocumentId) docs.push_back(all.at(id));
  }
  return docs;
}

Document pinned_document() { return sample_documents().at(testing::kPinnedDocumentId); }

bool found_in(const std::vector<RetrievedChunk>& chunks, const std::string& document_id) {
  for (const RetrievedChunk& chunk : chunks) {
    if (chunk.external_id == document_id) return true;
  }
  return false;
}

class ClusterSharedIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string postgres = testing::test_postgres_uri();
    const char* redis = std::getenv("KVRAG_TEST_REDIS");
    if (postgres.empty() || redis == nullptr) {
      KVRAG_SKIP_OR_FAIL(
          "KVRAG_TEST_POSTGRES and KVRAG_TEST_REDIS name the cluster of scripts/cluster.sh; "
          "without them these tests skip");
    }
    postgres_ = postgres;
    schema_ = "shared_" + std::to_string(getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : schema_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    schema_ = schema_.substr(0, 63);
    uri_ = testing::with_schema(postgres_, schema_) + "&blobs=" + redis;
  }

  void TearDown() override {
    if (postgres_.empty()) return;
    // The Redis Cluster outlives the schema: the index's blobs go first.
    IndexStores stores = open_index_stores(uri_);
    std::vector<int64_t> ids;
    stores.metadata->for_each_embedding(
        [&](int64_t id, std::span<const float>) { ids.push_back(id); });
    stores.blobs->remove(ids);
    testing::drop_postgres_schema(postgres_, schema_);
  }

  // The index with the pinned documents but the pinned question's own.
  std::unique_ptr<RagPipeline> create_index() const {
    auto node = RagPipeline::create(uri_, kDemoModel, IndexSettings{});
    node->add_documents(documents_without_the_pinned_one());
    return node;
  }

  AskOptions options() const {
    AskOptions o;
    o.k = 3;
    return o;
  }

  std::string postgres_;
  std::string schema_;
  std::string uri_;
};

TEST_F(ClusterSharedIndex, WhatOneNodeCommitsTheOtherAnswersFrom) {
  const auto first = create_index();
  const auto second = RagPipeline::open(uri_);
  const Answer before = second->ask(testing::kPinnedQuestion, options());
  EXPECT_EQ(exact_match(before.text, {testing::kPinnedAnswer}), 0.0) << before.text;

  first->add_documents({pinned_document()});
  const Answer after = second->ask(testing::kPinnedQuestion, options());
  EXPECT_EQ(exact_match(after.text, {testing::kPinnedAnswer}), 1.0) << after.text;
  ASSERT_FALSE(after.sources.empty());
  EXPECT_EQ(after.sources.front().chunk.external_id, testing::kPinnedDocumentId);
  EXPECT_EQ(second->stats().faiss_vectors, first->stats().faiss_vectors);

  ASSERT_TRUE(first->remove_document(testing::kPinnedDocumentId));
  EXPECT_FALSE(found_in(second->retrieve(testing::kPinnedQuestion, 10, RetrieverKind::kDense),
                        testing::kPinnedDocumentId));
  EXPECT_EQ(second->stats().faiss_vectors, first->stats().faiss_vectors);
}

// Two schemas writing one Redis Cluster under one key prefix: chunk ids
// start at 1 in each, so each would answer from the other's K/V as its own.
// The second index is refused when it is created, its schema left without
// an index; under a prefix of its own it is created.
TEST_F(ClusterSharedIndex, ASecondIndexUnderTheSameBlobPrefixIsRefused) {
  const auto first = create_index();
  const std::string redis = std::getenv("KVRAG_TEST_REDIS");
  const std::string other_schema = schema_.substr(0, 60) + "_b";
  const std::string other = testing::with_schema(postgres_, other_schema) + "&blobs=" + redis;
  const auto uri_with_prefix = [&](const std::string& prefix) {
    return other + (redis.find('?') == std::string::npos ? "%3F" : "%26") + "prefix=" + prefix;
  };
  EXPECT_TRUE(testing::throws_error(
      [&] { RagPipeline::create(uri_with_prefix(schema_), kDemoModel, IndexSettings{}); },
      ErrorKind::kInvalidArgument,
      {"already holds", "bytes of K/V under this index's key prefix"}));
  EXPECT_FALSE(RagPipeline::exists(uri_with_prefix(schema_)));
  EXPECT_NO_THROW(RagPipeline::create(uri_with_prefix(other_schema), kDemoModel, IndexSettings{}));
  testing::drop_postgres_schema(postgres_, other_schema);
}

// The second node writes without having looked since the first node's
// commit: its own write follows the store whole, the other's chunks included.
TEST_F(ClusterSharedIndex, ANodeThatWritesAfterAnothersCommitHasBoth) {
  const auto first = create_index();
  const auto second = RagPipeline::open(uri_);
  first->add_documents({pinned_document()});
  Document extra = sample_documents().at("doc-0100");
  second->add_documents({extra});
  const std::vector<RetrievedChunk> found =
      second->retrieve(testing::kPinnedQuestion, 5, RetrieverKind::kDense);
  EXPECT_TRUE(found_in(found, testing::kPinnedDocumentId));
  EXPECT_EQ(second->stats().faiss_vectors, first->stats().faiss_vectors);
  EXPECT_EQ(second->stats().store.chunks, second->stats().faiss_vectors);
}

// A chunk's blob gone from Redis (evicted, lost with a node) while its row
// stays: the answer is the same, its memory encoded again and counted.
TEST_F(ClusterSharedIndex, ALostBlobIsEncodedAgainNotAFailedAnswer) {
  const auto first = create_index();
  first->add_documents({pinned_document()});
  const Answer before = first->ask(testing::kPinnedQuestion, options());
  ASSERT_EQ(exact_match(before.text, {testing::kPinnedAnswer}), 1.0) << before.text;

  std::vector<int64_t> lost;
  for (const Source& source : before.sources) lost.push_back(source.chunk.chunk_id);
  open_index_stores(uri_).blobs->remove(lost);

  const auto second = RagPipeline::open(uri_);  // its RAM cache holds nothing yet
  const Answer after = second->ask(testing::kPinnedQuestion, options());
  EXPECT_EQ(after.text, before.text);
  EXPECT_EQ(second->stats().memories_reencoded, static_cast<int64_t>(lost.size()));
  const Answer again = second->ask(testing::kPinnedQuestion, options());
  EXPECT_EQ(again.text, before.text);
  EXPECT_EQ(second->stats().memories_reencoded, static_cast<int64_t>(lost.size()))
      << "the memories encoded again are kept in the RAM cache";
}

// What a reader sees of an index: its counts, and the pinned question's
// answer and sources.
struct Seen {
  int64_t documents, chunks, memory_bytes, memory_tokens;
  std::string answer;
  std::vector<std::string> sources;
  bool operator==(const Seen&) const = default;
};

Seen seen(const std::string& index) {
  const auto pipeline = RagPipeline::open(index);
  const IndexStats stats = pipeline->stats();
  AskOptions options;
  options.k = 3;
  options.retriever = RetrieverKind::kDense;  // PostgreSQL ranks words otherwise than FTS5
  const Answer answer = pipeline->ask(testing::kPinnedQuestion, options);
  Seen s{stats.store.documents,     stats.store.chunks, stats.store.memory_bytes,
         stats.store.memory_tokens, answer.text,        {}};
  for (const Source& source : answer.sources) {
    s.sources.push_back(str_cat(source.chunk.external_id, "#", source.chunk.position));
  }
  return s;
}

std::vector<Document> pinned_documents() {
  std::vector<Document> docs = documents_without_the_pinned_one();
  docs.push_back(pinned_document());
  return docs;
}

// Folder to folder, without a cluster: everything as stored, the index
// then answering as the original does; a target holding an index refused.
TEST(IndexCopy, AFolderCopiedAnswersAsTheOriginal) {
  testing::TempDir dir("kvrag-copy");
  const std::string from = dir.file("from");
  RagPipeline::create(from, kDemoModel, IndexSettings{})->add_documents(pinned_documents());
  const CopyReport report = IndexFolder::copy(from, dir.file("to"), 2);
  EXPECT_EQ(report.documents, static_cast<int64_t>(testing::kPinnedDocumentIds.size()));
  const Seen original = seen(from);
  EXPECT_EQ(report.chunks, original.chunks);
  EXPECT_EQ(report.memory_bytes, original.memory_bytes);
  EXPECT_EQ(seen(dir.file("to")), original);
  EXPECT_EQ(original.answer, testing::kPinnedAnswer);
  EXPECT_TRUE(testing::throws_error([&] { IndexFolder::copy(from, dir.file("to"), 2); },
                                    ErrorKind::kInvalidArgument, {"already holds an index"}));
  EXPECT_TRUE(testing::throws_error([&] { IndexFolder::copy(dir.file("none"), dir.file("x"), 2); },
                                    ErrorKind::kNotFound, {"no index at"}));
}

// Folder to the cluster and back: the same documents, memories and answers.
TEST_F(ClusterSharedIndex, AFolderCopiedToTheClusterAndBackAnswersTheSame) {
  testing::TempDir dir("kvrag-copy");
  const std::string folder = dir.file("folder");
  RagPipeline::create(folder, kDemoModel, IndexSettings{})->add_documents(pinned_documents());
  IndexFolder::copy(folder, uri_, 3);
  IndexFolder::copy(uri_, dir.file("back"), 3);
  const Seen original = seen(folder);
  EXPECT_EQ(seen(uri_), original);
  EXPECT_EQ(seen(dir.file("back")), original);
}

// A stream of asks (RAM cache off: every memory read from Redis) while the
// master of the slot that holds the answer's memory is killed by pid: the
// cluster fails over and no ask fails or changes its answer.
TEST_F(ClusterSharedIndex, AKilledRedisMasterCostsNoFailedAsk) {
  create_index()->add_documents({pinned_document()});
  OpenOptions no_cache;
  no_cache.kv_cache_bytes = 0;
  const auto node = RagPipeline::open(uri_, no_cache);
  const Answer first = node->ask(testing::kPinnedQuestion, options());
  ASSERT_EQ(exact_match(first.text, {testing::kPinnedAnswer}), 1.0) << first.text;

  const int bucket =
      static_cast<int>(first.sources.front().chunk.chunk_id % RedisClusterBlobStore::kBuckets);
  const int slot = redis::key_slot("{" + std::to_string(bucket) + "}");
  const std::vector<redis::NodeAddress> seeds =
      parse_redis_cluster_uri(std::getenv("KVRAG_TEST_REDIS")).cluster.seeds;
  const redis::NodeAddress seed = testing::slot_master(seeds.front(), slot).address == seeds.front()
                                      ? seeds.back()
                                      : seeds.front();
  testing::MasterKill kill(seed, slot);
  kill.kill_master(schema_ + ":marker:{" + std::to_string(bucket) + "}");
  int asks = 0;
  int failed = 0;
  std::string first_failure;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    ++asks;
    try {
      EXPECT_EQ(node->ask(testing::kPinnedQuestion, options()).text, first.text);
    } catch (const Error& e) {
      if (failed++ == 0) first_failure = e.what();
    }
  }
  const bool took_over = kill.replica_took_over();
  const bool restored = kill.restore();
  std::cout << "a Redis master killed: " << asks << " asks, " << failed << " failed\n";
  EXPECT_TRUE(took_over);
  EXPECT_TRUE(restored) << "the cluster is not back to its masters: see scripts/cluster.sh status";
  EXPECT_EQ(failed, 0) << first_failure;
  EXPECT_GT(asks, 10);
}

// A TCP port nothing listens on now (the kernel's pick for port 0).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  return ok ? ntohs(addr.sin_port) : -1;
}

// `kvrag serve` on the index at `uri`, answering once /healthz does.
class ServeNode {
 public:
  ServeNode(const std::string& uri, int port)
      : port_(port),
        process_({"serve", "--index", uri, "--port", std::to_string(port), "--threads", "2"}) {}

  bool wait_ready() {
    for (int i = 0; i < 600 && process_.running(); ++i) {
      if (auto res = client().Get("/healthz"); res && res->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

  json post(const std::string& path, const json& body) const {
    auto res = client().Post(path.c_str(), body.dump(), "application/json");
    if (!res) return {{"no_response", httplib::to_string(res.error())}};
    return json::parse(res->body);
  }

  std::string describe() { return testing::describe(process_.wait()); }

 private:
  int port_;
  testing::KvragProcess process_;
};

TEST_F(ClusterSharedIndex, TwoServeNodesOneIndex) {
  create_index().reset();
  ServeNode a(uri_, free_port());
  ServeNode b(uri_, free_port());
  ASSERT_TRUE(a.wait_ready()) << a.describe();
  ASSERT_TRUE(b.wait_ready()) << b.describe();

  const Document doc = pinned_document();
  const json added = a.post(
      "/v1/documents",
      {{"documents", {{{"id", doc.external_id}, {"title", doc.title}, {"text", doc.text}}}}});
  ASSERT_EQ(added.value("added", 0), 1) << added.dump();

  const json answer = b.post("/v1/ask", {{"question", testing::kPinnedQuestion}, {"k", 3}});
  EXPECT_EQ(exact_match(answer.value("answer", ""), {testing::kPinnedAnswer}), 1.0)
      << answer.dump();
  ASSERT_TRUE(answer.contains("sources") && !answer["sources"].empty()) << answer.dump();
  EXPECT_EQ(answer["sources"][0]["document_id"], testing::kPinnedDocumentId);

  auto removed = b.client().Delete(("/v1/documents/" + doc.external_id).c_str());
  ASSERT_TRUE(removed && removed->status == 200);
  const json search = a.post("/v1/search", {{"query", testing::kPinnedQuestion}, {"k", 10}});
  for (const json& result : search["results"]) {
    EXPECT_NE(result["document_id"], testing::kPinnedDocumentId);
  }
}

}  // namespace
}  // namespace kvrag

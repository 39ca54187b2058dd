// The contract of the store interfaces, run against every implementation:
// MetadataStore and BlobStore (data/metadata_store.h, data/blob_store.h)
// per StoreBackend, VectorIndex (retriever/vector_index.h) per FAISS index
// kind. Another implementation passes the same tests by adding its backend
// to an INSTANTIATE_TEST_SUITE_P line; nothing here names SQLite.
// Backends on the local cluster (scripts/cluster.sh) are instantiated with
// the prefix Cluster, which CTest labels `cluster`; they skip when the
// cluster's URI is not in the environment. Where backends promise
// different things, a test says what each promises (Promises below).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "data/index_stores.h"
#include "retriever/vector_index.h"
#include "tests/model_files.h"
#include "tests/store_fixtures.h"

namespace kvrag {
namespace {

using testing::add_document_with_chunks;
using testing::drop_postgres_schema;
using testing::make_blob;
using testing::make_chunk;
using testing::make_document;
using testing::TempDir;
using testing::test_postgres_uri;
using testing::throws_error;
using testing::with_schema;

// One implementation of the store interfaces under test.
struct StoreBackend {
  std::string name;  // the test name suffix
  // The stores of a scratch index named by `scratch`, a fresh empty folder
  // per test; opening the same scratch again reopens the same index (a
  // remote backend maps it to a namespace of its own: a schema, a key prefix).
  std::function<IndexStores(const std::string& scratch)> open;
  // Why the backend cannot run here (no cluster), empty when it can.
  std::function<std::string()> unavailable = [] { return std::string(); };
  // Removes what a scratch index left outside its folder.
  std::function<void(const std::string& scratch)> drop = [](const std::string&) {};
  // What the backend promises where backends differ.
  struct Promises {
    // A write that failed inside a write_transaction and whose error the
    // body caught leaves the transaction usable (SQLite: a statement rolls
    // back alone) rather than doomed (PostgreSQL: the commit throws).
    bool failed_write_leaves_transaction_usable = true;
    // A query word on a stop list ("the") matches chunks holding it.
    bool stop_words_match = true;
  } promises;
};

// The backend's name in test listings (CTest's test names), rather than
// its bytes, which differ from run to run.
void PrintTo(const StoreBackend& backend, std::ostream* out) { *out << backend.name; }

StoreBackend sqlite_folder() {
  StoreBackend backend;
  backend.name = "SqliteFolder";
  backend.open = [](const std::string& scratch) {
    return open_index_stores(scratch + "/store.sqlite");
  };
  return backend;
}

// The schema of a scratch index: the folder's name (kvrag_conformance_PID_N)
// is unique to this process and test, and a valid schema name.
std::string scratch_schema(const std::string& scratch) {
  return std::filesystem::path(scratch).filename().string();
}

// PostgreSQL for metadata and blobs, one fresh schema per test.
StoreBackend postgres() {
  StoreBackend backend;
  backend.name = "Postgres";
  backend.open = [](const std::string& scratch) {
    return open_index_stores(with_schema(test_postgres_uri(), scratch_schema(scratch)));
  };
  backend.unavailable = [] {
    return test_postgres_uri().empty()
               ? std::string(
                     "KVRAG_TEST_POSTGRES is not set (a postgresql:// URI of the "
                     "cluster scripts/cluster.sh starts)")
               : std::string();
  };
  backend.drop = [](const std::string& scratch) {
    drop_postgres_schema(test_postgres_uri(), scratch_schema(scratch));
  };
  backend.promises.failed_write_leaves_transaction_usable = false;
  backend.promises.stop_words_match = false;
  return backend;
}

class StoreConformance : public ::testing::TestWithParam<StoreBackend> {
 protected:
  StoreConformance() : dir_("kvrag_conformance") {}

  void SetUp() override {
    const std::string why = GetParam().unavailable();
    if (!why.empty()) GTEST_SKIP() << why;
    stores_ = GetParam().open(dir_.path());
    opened_ = true;
  }

  void TearDown() override {
    stores_ = {};
    if (opened_) GetParam().drop(dir_.path());
  }

  const StoreBackend::Promises& promises() const { return GetParam().promises; }

  MetadataStore& metadata() { return *stores_.metadata; }
  BlobStore& blobs() { return *stores_.blobs; }

  int64_t add(const std::string& id, const std::vector<std::string>& chunk_texts, int seed) {
    return add_document_with_chunks(metadata(), blobs(), id, chunk_texts, seed);
  }

  void reopen() {
    stores_ = {};
    stores_ = GetParam().open(dir_.path());
  }

  TempDir dir_;
  IndexStores stores_;
  bool opened_ = false;
};

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformance, ::testing::Values(sqlite_folder()),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Cluster, StoreConformance, ::testing::Values(postgres()),
                         [](const auto& info) { return info.param.name; });

TEST_P(StoreConformance, DocumentsChunksAndBlobsRoundTrip) {
  const int64_t doc_id = add("doc-1", {"The river Aldan flows north.", "Its delta is wide."}, 10);

  const DocumentRecord doc = metadata().document(doc_id);
  EXPECT_EQ(doc.id, doc_id);
  EXPECT_EQ(doc.external_id, "doc-1");
  EXPECT_EQ(doc.title, "Title of doc-1");
  EXPECT_EQ(doc.source, "corpus.jsonl:doc-1");
  EXPECT_EQ(doc.text, "The river Aldan flows north. Its delta is wide. ");
  EXPECT_EQ(doc.metadata_json, R"({"lang":"en"})");
  EXPECT_EQ(doc.content_hash, "doc-hash-doc-1");
  EXPECT_EQ(doc.chunks, 2);
  const auto found = metadata().find_document("doc-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, doc_id);
  EXPECT_FALSE(metadata().find_document("doc-2").has_value());

  const std::vector<ChunkRecord> chunks = metadata().document_chunks(doc_id);
  ASSERT_EQ(chunks.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const NewChunk expected =
        make_chunk(i, i == 0 ? "The river Aldan flows north." : "Its delta is wide.", 10 + i);
    const ChunkRecord& c = chunks[i];
    EXPECT_EQ(c.document_id, doc_id);
    EXPECT_EQ(c.position, i);
    EXPECT_EQ(c.text, expected.text);
    EXPECT_EQ(c.token_ids, expected.token_ids);
    EXPECT_EQ(c.content_hash, expected.content_hash);
    EXPECT_EQ(metadata().chunk(c.id).text, expected.text);
    EXPECT_EQ(blobs().get(c.id), make_blob(10 + i).bytes);
  }

  std::vector<std::pair<int64_t, std::vector<float>>> embeddings;
  metadata().for_each_embedding([&](int64_t id, std::span<const float> e) {
    embeddings.emplace_back(id, std::vector<float>(e.begin(), e.end()));
  });
  ASSERT_EQ(embeddings.size(), 2u);
  EXPECT_EQ(embeddings[0], std::make_pair(chunks[0].id, make_chunk(0, "", 10).embedding));
  EXPECT_EQ(embeddings[1], std::make_pair(chunks[1].id, make_chunk(0, "", 11).embedding));

  const MetadataStats stats = metadata().stats();
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.chunks, 2);
  EXPECT_EQ(stats.text_bytes, static_cast<int64_t>(doc.text.size()));
  EXPECT_EQ(stats.embedding_bytes, 2 * 3 * 4);
  EXPECT_GT(stats.storage_bytes, 0);
  const BlobStats blob_stats = blobs().stats();
  EXPECT_EQ(blob_stats.bytes, 10);
  EXPECT_EQ(blob_stats.tokens, 6);
}

TEST_P(StoreConformance, FindEncodingNamesAStoredChunkOfThatHash) {
  add("doc-1", {"alpha", "beta"}, 10);
  const auto encoding = metadata().find_encoding("hash-11");
  ASSERT_TRUE(encoding.has_value());
  EXPECT_EQ(encoding->embedding, make_chunk(0, "", 11).embedding);
  EXPECT_EQ(metadata().chunk(encoding->chunk_id).text, "beta");
  EXPECT_EQ(blobs().get(encoding->chunk_id), make_blob(11).bytes);
  EXPECT_FALSE(metadata().find_encoding("hash-99").has_value());
}

TEST_P(StoreConformance, MissingRowsAreNotFound) {
  EXPECT_TRUE(throws_error([&] { metadata().document(42); }, ErrorKind::kNotFound,
                           {"no document with id 42"}));
  EXPECT_TRUE(
      throws_error([&] { metadata().chunk(43); }, ErrorKind::kNotFound, {"no chunk with id 43"}));
  EXPECT_FALSE(blobs().get(44).has_value());
  EXPECT_TRUE(metadata().document_chunks(45).empty());
  EXPECT_TRUE(metadata().remove_document(46).empty());
}

TEST_P(StoreConformance, DuplicateExternalIdAndUnknownDocumentAreInvalidArguments) {
  add("doc-1", {"alpha"}, 1);
  EXPECT_TRUE(throws_error([&] { metadata().add_document(make_document("doc-1", "again"), "h"); },
                           ErrorKind::kInvalidArgument, {}));
  EXPECT_TRUE(throws_error([&] { metadata().add_chunk(999, make_chunk(0, "orphan", 5)); },
                           ErrorKind::kInvalidArgument, {}));
  EXPECT_EQ(metadata().stats().chunks, 1);
}

TEST_P(StoreConformance, MetaRoundTrip) {
  EXPECT_FALSE(metadata().meta("model").has_value());
  metadata().set_meta("model", "abc");
  metadata().set_meta("model", "def");
  EXPECT_EQ(metadata().meta("model"), "def");
}

TEST_P(StoreConformance, GenerationAdvancesOnlyWithItsCommit) {
  EXPECT_EQ(metadata().generation(), 0);
  int64_t advanced = 0;
  metadata().write_transaction([&] { advanced = metadata().advance_generation(); });
  EXPECT_EQ(advanced, 1);
  EXPECT_EQ(metadata().generation(), 1);
  EXPECT_THROW(metadata().write_transaction([&] {
    metadata().advance_generation();
    throw std::runtime_error("write failed");
  }),
               std::runtime_error);
  EXPECT_EQ(metadata().generation(), 1);
  reopen();
  EXPECT_EQ(metadata().generation(), 1);
}

TEST_P(StoreConformance, LexicalSearchFindsAChunkByItsOwnWords) {
  add("doc-1", {"The river Aldan flows north into the Lena.", "Glaciers cover Mount Orvik."}, 1);
  add("doc-2", {"Copper mines opened in 1843 near Tarsk."}, 5);
  for (const ChunkRecord& c : metadata().document_chunks(metadata().find_document("doc-1")->id)) {
    const auto hits = metadata().search_lexical(c.text, 3);
    ASSERT_FALSE(hits.empty()) << c.text;
    EXPECT_EQ(hits[0].first, c.id) << c.text;
  }
  const auto hits = metadata().search_lexical("when did the copper mines open", 10);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(metadata().chunk(hits[0].first).text, "Copper mines opened in 1843 near Tarsk.");
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].second, hits[i].second);
  EXPECT_EQ(metadata().search_lexical("river glaciers copper", 2).size(), 2u);
  EXPECT_TRUE(metadata().search_lexical("copper", 0).empty());
  EXPECT_TRUE(throws_error([&] { metadata().search_lexical("copper", -1); },
                           ErrorKind::kInvalidArgument,
                           {"search_lexical: k must be >= 0, got -1"}));
}

TEST_P(StoreConformance, LexicalSearchTreatsQuerySyntaxAsPlainWords) {
  add("doc-1", {"Copper AND tin NEAR the mines."}, 1);
  for (const std::string query :
       {"\"unbalanced", "copper AND", "NEAR(copper tin)", "tin*", "-copper", "text: copper",
        "^copper", "(((", "{text}: copper", "a OR", "NOT", "copper & !tin | mines", "'copper':*",
        "\xe2\x80\x94 \xc3\xa9", ""}) {
    EXPECT_NO_THROW(metadata().search_lexical(query, 5)) << query;
  }
  EXPECT_EQ(metadata().search_lexical("NEAR(copper", 5).size(), 1u);
  EXPECT_TRUE(metadata().search_lexical("*** ((( \"", 5).empty());
}

TEST_P(StoreConformance, LexicalSearchStemsAndFoldsDiacritics) {
  add("doc-1", {"She tuned the violin's string before the concert at the café."}, 1);
  add("doc-2", {"Naïve Bayes classifiers count words."}, 5);
  for (const std::string query :
       {"strings", "tuning concerts", "cafe", "CAFÉ", "naive", "counting"}) {
    EXPECT_EQ(metadata().search_lexical(query, 5).size(), 1u) << query;
  }
}

TEST_P(StoreConformance, RemoveDocumentTakesItsChunksAndLexicalEntries) {
  const int64_t keep = add("keep", {"Harbour of Velm.", "Lighthouse of Velm."}, 1);
  const int64_t gone = add("gone", {"Salt flats of Quor.", "Dunes of Quor.", "Wells of Quor."}, 10);
  const std::vector<ChunkRecord> gone_chunks = metadata().document_chunks(gone);

  const std::vector<int64_t> removed = metadata().remove_document(gone);
  ASSERT_EQ(removed.size(), 3u);
  for (size_t i = 0; i < removed.size(); ++i) EXPECT_EQ(removed[i], gone_chunks[i].id);
  blobs().remove(removed);
  EXPECT_EQ(metadata().stats().documents, 1);
  EXPECT_EQ(metadata().stats().chunks, 2);
  EXPECT_TRUE(metadata().search_lexical("Quor", 10).empty());
  EXPECT_EQ(metadata().search_lexical("Velm", 10).size(), 2u);
  EXPECT_TRUE(throws_error([&] { metadata().chunk(removed[0]); }, ErrorKind::kNotFound, {}));
  EXPECT_FALSE(blobs().get(removed[0]).has_value());
  EXPECT_EQ(blobs().stats().tokens, 6);
  EXPECT_EQ(metadata().document_chunks(keep).size(), 2u);
  EXPECT_TRUE(metadata().document_chunks(gone).empty());
  EXPECT_TRUE(metadata().remove_document(gone).empty());  // already gone
}

// Removing the newest rows must not free their ids: a later chunk taking a
// removed chunk's id would be served that chunk's cached K/V.
TEST_P(StoreConformance, IdsOfRemovedRowsAreNeverReused) {
  add("old", {"Harbour of Velm."}, 1);
  const int64_t newest = add("newest", {"Salt flats of Quor.", "Dunes of Quor."}, 10);
  const std::vector<ChunkRecord> newest_chunks = metadata().document_chunks(newest);
  metadata().remove_document(newest);
  reopen();

  const int64_t again = add("again", {"Wells of Quor.", "Oasis of Quor."}, 20);
  EXPECT_GT(again, newest);
  for (const ChunkRecord& chunk : metadata().document_chunks(again)) {
    EXPECT_GT(chunk.id, newest_chunks.back().id);
  }
}

TEST_P(StoreConformance, ExceptionInWriteTransactionRollsBackTheMetadata) {
  add("before", {"Existing chunk."}, 1);
  EXPECT_THROW(metadata().write_transaction([&] {
    const int64_t id = metadata().add_document(make_document("inside", "text"), "h");
    blobs().put(metadata().add_chunk(id, make_chunk(0, "Rolled back chunk.", 7)), make_blob(7));
    metadata().set_meta("model", "changed");
    throw std::runtime_error("encoder failed");
  }),
               std::runtime_error);
  EXPECT_FALSE(metadata().find_document("inside").has_value());
  EXPECT_FALSE(metadata().meta("model").has_value());
  EXPECT_EQ(metadata().stats().chunks, 1);
  EXPECT_TRUE(metadata().search_lexical("Rolled", 5).empty());
  EXPECT_FALSE(metadata().find_encoding("hash-7").has_value());
  // The stores are usable afterwards.
  add("after", {"Later chunk."}, 3);
  EXPECT_EQ(metadata().stats().documents, 2);
}

TEST_P(StoreConformance, NestedTransactionRollsBackOnlyItself) {
  metadata().write_transaction([&] {
    metadata().set_meta("outer", "1");
    EXPECT_THROW(metadata().write_transaction([&] {
      metadata().set_meta("inner", "1");
      throw std::runtime_error("inner failed");
    }),
                 std::runtime_error);
  });
  EXPECT_EQ(metadata().meta("outer"), "1");
  EXPECT_FALSE(metadata().meta("inner").has_value());
}

// A nested transaction around a write that may fail rolls back only that
// write on every backend; a failure caught with none around it is where
// backends differ (Promises).
TEST_P(StoreConformance, AWriteThatFailsInsideATransaction) {
  add("doc-1", {"alpha"}, 1);
  const auto add_duplicate = [&] { metadata().add_document(make_document("doc-1", "again"), "h"); };
  metadata().write_transaction([&] {
    metadata().set_meta("outer", "1");
    EXPECT_TRUE(throws_error([&] { metadata().write_transaction(add_duplicate); },
                             ErrorKind::kInvalidArgument, {}));
    metadata().set_meta("after", "1");
  });
  EXPECT_EQ(metadata().meta("outer"), "1");
  EXPECT_EQ(metadata().meta("after"), "1");

  const auto catch_bare_failure = [&] {
    metadata().write_transaction([&] {
      metadata().set_meta("bare", "1");
      try {
        add_duplicate();
      } catch (const Error&) {
      }
    });
  };
  if (promises().failed_write_leaves_transaction_usable) {
    catch_bare_failure();
    EXPECT_EQ(metadata().meta("bare"), "1");
  } else {
    EXPECT_TRUE(throws_error(catch_bare_failure, ErrorKind::kInternal,
                             {"rolled back", "nested write_transaction"}));
    EXPECT_FALSE(metadata().meta("bare").has_value());
  }
  add("doc-2", {"beta"}, 2);
  EXPECT_EQ(metadata().stats().documents, 2);
}

TEST_P(StoreConformance, LexicalSearchOfStopWords) {
  add("doc-1", {"The tower of the city."}, 1);
  EXPECT_EQ(metadata().search_lexical("the of", 5).size(), promises().stop_words_match ? 1u : 0u);
  EXPECT_EQ(metadata().search_lexical("the tower", 5).size(), 1u);
}

TEST_P(StoreConformance, DataSurvivesReopening) {
  const int64_t doc_id = add("doc-1", {"Persisted chunk text."}, 4);
  const int64_t chunk_id = metadata().document_chunks(doc_id)[0].id;
  reopen();
  EXPECT_EQ(metadata().document(doc_id).external_id, "doc-1");
  EXPECT_EQ(metadata().search_lexical("persisted", 1).size(), 1u);
  EXPECT_EQ(blobs().get(chunk_id), make_blob(4).bytes);
}

TEST_P(StoreConformance, ChunkDocumentsNamesEachChunksDocument) {
  const int64_t one = add("doc-1", {"a", "b"}, 1);
  const int64_t two = add("doc-2", {"c"}, 5);
  const std::vector<ChunkRecord> c1 = metadata().document_chunks(one);
  const std::vector<ChunkRecord> c2 = metadata().document_chunks(two);
  EXPECT_EQ(metadata().chunk_documents({c2[0].id, c1[1].id, c1[0].id, c2[0].id}),
            (std::vector<int64_t>{two, one, one, two}));
  EXPECT_TRUE(metadata().chunk_documents({}).empty());
  EXPECT_TRUE(throws_error(
      [&] {
        metadata().chunk_documents({c1[0].id, 999});
      },
      ErrorKind::kNotFound, {"no chunk 999"}));
}

TEST_P(StoreConformance, GetManyReturnsBlobsInOrderAndNulloptForNone) {
  add("doc-1", {"a", "b", "c"}, 1);
  std::vector<int64_t> ids;
  for (const ChunkRecord& c : metadata().document_chunks(metadata().find_document("doc-1")->id)) {
    ids.push_back(c.id);
  }
  const std::vector<int64_t> asked = {ids[2], 999, ids[0], ids[2]};
  const auto got = blobs().get_many(asked);
  ASSERT_EQ(got.size(), asked.size());
  EXPECT_EQ(got[0], make_blob(3).bytes);
  EXPECT_FALSE(got[1].has_value());
  EXPECT_EQ(got[2], make_blob(1).bytes);
  EXPECT_EQ(got[3], make_blob(3).bytes);
  EXPECT_TRUE(blobs().get_many({}).empty());
}

// A chunk's K/V are megabytes (T5-base f16: 2.4 MB for 64 tokens); every
// byte must come back.
TEST_P(StoreConformance, LargeBlobRoundTripsAndPutReplaces) {
  add("doc-1", {"a", "b"}, 1);
  const std::vector<ChunkRecord> chunks =
      metadata().document_chunks(metadata().find_document("doc-1")->id);
  MemoryBlob large;
  large.tokens = 64;
  large.bytes.resize(3 << 20);
  std::mt19937 random(7);
  for (uint8_t& byte : large.bytes) byte = static_cast<uint8_t>(random());
  metadata().write_transaction([&] { blobs().put(chunks[1].id, large); });
  const auto got = blobs().get_many(std::vector<int64_t>{chunks[0].id, chunks[1].id});
  EXPECT_EQ(got[0], make_blob(1).bytes);
  EXPECT_TRUE(got[1] == large.bytes) << "the 3 MiB blob came back changed";
  EXPECT_EQ(blobs().stats().bytes, 5 + static_cast<int64_t>(large.bytes.size()));
  EXPECT_EQ(blobs().stats().tokens, 3 + 64);
}

TEST_P(StoreConformance, RemoveBlobsIgnoresChunksWithout) {
  add("doc-1", {"a", "b"}, 1);
  const std::vector<ChunkRecord> chunks =
      metadata().document_chunks(metadata().find_document("doc-1")->id);
  blobs().remove(std::vector<int64_t>{chunks[0].id, 999});
  EXPECT_FALSE(blobs().get(chunks[0].id).has_value());
  EXPECT_EQ(blobs().get(chunks[1].id), make_blob(2).bytes);
  blobs().remove(std::vector<int64_t>{chunks[0].id});
  EXPECT_EQ(blobs().stats().bytes, 5);
}

TEST_P(StoreConformance, ConcurrentReadersAndAWriter) {
  const int64_t doc = metadata().add_document(make_document("d", "text"), "h");
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) {
      metadata().write_transaction([&] {
        blobs().put(metadata().add_chunk(doc, make_chunk(i, "word" + std::to_string(i), i)),
                    make_blob(i));
      });
    }
  });
  int64_t seen = 0;
  for (int i = 0; i < 50; ++i) {
    seen = std::max(seen, metadata().stats().chunks);
    for (const ChunkRecord& c : metadata().document_chunks(doc)) {
      EXPECT_TRUE(blobs().get(c.id).has_value()) << "a committed chunk without its blob";
    }
  }
  writer.join();
  EXPECT_LE(seen, 50);
  EXPECT_EQ(metadata().stats().chunks, 50);
}

// ---------------------------------------------------------------- vectors

constexpr int64_t kDim = 8;
// Enough to train "IVF4,Flat" (39 vectors per centroid), so that it is
// tested trained rather than answering from its pending vectors.
constexpr int64_t kVectors = 200;

// `n` random unit vectors (n × kDim) and their ids 10, 13, 16, ...
std::pair<std::vector<int64_t>, std::vector<float>> unit_vectors(int64_t n) {
  std::mt19937 random(11);
  std::normal_distribution<float> normal;
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  for (int64_t i = 0; i < n; ++i) {
    ids.push_back(10 + 3 * i);
    float norm = 0.0f;
    std::vector<float> v(kDim);
    for (float& x : v) {
      x = normal(random);
      norm += x * x;
    }
    for (float& x : v) vectors.push_back(x / std::sqrt(norm));
  }
  return {ids, vectors};
}

std::span<const float> row(const std::vector<float>& vectors, int64_t i) {
  return std::span<const float>(vectors).subspan(static_cast<size_t>(i * kDim), kDim);
}

class VectorIndexConformance : public ::testing::TestWithParam<std::string> {
 protected:
  VectorIndexConformance()
      : index_(make_vector_index(kDim, GetParam())), data_(unit_vectors(kVectors)) {
    index_->add(data_.first, data_.second);
  }

  // Each vector's own id comes first when searching with it.
  void expect_each_finds_itself(const VectorIndex& index) {
    for (int64_t i = 0; i < kVectors; ++i) {
      const std::vector<ScoredId> hits = index.search(row(data_.second, i), 3);
      ASSERT_FALSE(hits.empty());
      EXPECT_EQ(hits[0].id, data_.first[static_cast<size_t>(i)]);
      EXPECT_NEAR(hits[0].score, 1.0f, 1e-4);
      for (size_t h = 1; h < hits.size(); ++h) EXPECT_GE(hits[h - 1].score, hits[h].score);
    }
  }

  std::unique_ptr<VectorIndex> index_;
  std::pair<std::vector<int64_t>, std::vector<float>> data_;
};

INSTANTIATE_TEST_SUITE_P(Faiss, VectorIndexConformance,
                         ::testing::Values("Flat", "HNSW32", "IVF4,Flat"), [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), ',', '_');
                           return name;
                         });

TEST_P(VectorIndexConformance, AddedVectorsAreFoundAndListed) {
  EXPECT_EQ(index_->size(), kVectors);
  EXPECT_EQ(index_->ids(), data_.first);
  EXPECT_EQ(index_->factory(), GetParam());
  expect_each_finds_itself(*index_);
  EXPECT_LE(static_cast<int64_t>(index_->search(row(data_.second, 0), kVectors + 5).size()),
            kVectors);
}

TEST_P(VectorIndexConformance, AnIdHeldAlreadyIsInvalidArgument) {
  const std::vector<int64_t> again = {data_.first[0]};
  EXPECT_TRUE(throws_error([&] { index_->add(again, row(data_.second, 1)); },
                           ErrorKind::kInvalidArgument, {}));
  EXPECT_EQ(index_->size(), kVectors);
}

TEST_P(VectorIndexConformance, RemovedIdsAreNeverReturned) {
  std::vector<int64_t> gone = {data_.first[0], data_.first[5], 7 /* never added */};
  index_->remove(gone);
  EXPECT_EQ(index_->size(), kVectors - 2);
  for (int64_t i : {int64_t{0}, int64_t{5}}) {
    for (const ScoredId& hit : index_->search(row(data_.second, i), kVectors)) {
      EXPECT_NE(hit.id, data_.first[0]);
      EXPECT_NE(hit.id, data_.first[5]);
    }
  }
  const std::vector<ScoredId> kept = index_->search(row(data_.second, 1), 1);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].id, data_.first[1]);
}

TEST_P(VectorIndexConformance, SavedIndexLoadsBackTheSame) {
  const TempDir dir("kvrag_conformance");
  const std::string path = dir.file("vectors");
  index_->save(path);
  const auto loaded = load_vector_index(path, kDim, GetParam());
  EXPECT_EQ(loaded->ids(), data_.first);
  expect_each_finds_itself(*loaded);
  EXPECT_TRUE(throws_error([&] { load_vector_index(dir.file("none"), kDim, GetParam()); },
                           ErrorKind::kNotFound, {}));
  EXPECT_TRUE(
      throws_error([&] { load_vector_index(path, kDim + 1, GetParam()); }, ErrorKind::kFormat, {}));
}

}  // namespace
}  // namespace kvrag

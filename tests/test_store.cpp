#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "data/sqlite.h"
#include "data/store.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {

using testing::TempDir;
using testing::throws_error;

Document make_document(const std::string& id, const std::string& text) {
  Document doc;
  doc.external_id = id;
  doc.title = "Title of " + id;
  doc.source = "corpus.jsonl:" + id;
  doc.text = text;
  doc.metadata_json = R"({"lang":"en"})";
  return doc;
}

// A chunk whose embedding, token ids and memory blob are derived from `seed`
// so that a mix-up between chunks shows.
NewChunk make_chunk(int64_t position, const std::string& text, int seed) {
  NewChunk c;
  c.position = position;
  c.text = text;
  c.token_ids = {seed, seed + 1, 1};
  c.content_hash = "hash-" + std::to_string(seed);
  c.embedding = {0.5f * seed, -1.0f, 0.25f};
  c.memory_blob = {static_cast<uint8_t>(seed), 2, 3, 4, 5};
  c.memory_tokens = 3;
  return c;
}

class StoreTest : public ::testing::Test {
 protected:
  StoreTest() : dir_("kvrag_store"), store_(std::make_unique<Store>(dir_.file("store.sqlite"))) {}

  // Adds a document with one chunk per text; returns the document id.
  int64_t add(const std::string& id, const std::vector<std::string>& chunk_texts, int seed) {
    std::string text;
    for (const std::string& t : chunk_texts) text += t + " ";
    int64_t doc_id = 0;
    store_->write_transaction([&] {
      doc_id = store_->add_document(make_document(id, text), "doc-hash-" + id);
      for (size_t i = 0; i < chunk_texts.size(); ++i) {
        store_->add_chunk(doc_id, make_chunk(static_cast<int64_t>(i), chunk_texts[i],
                                             seed + static_cast<int>(i)));
      }
    });
    return doc_id;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, DocumentsAndChunksRoundTrip) {
  const int64_t doc_id = add("doc-1", {"The river Aldan flows north.", "Its delta is wide."}, 10);

  const DocumentRecord doc = store_->document(doc_id);
  EXPECT_EQ(doc.id, doc_id);
  EXPECT_EQ(doc.external_id, "doc-1");
  EXPECT_EQ(doc.title, "Title of doc-1");
  EXPECT_EQ(doc.source, "corpus.jsonl:doc-1");
  EXPECT_EQ(doc.text, "The river Aldan flows north. Its delta is wide. ");
  EXPECT_EQ(doc.metadata_json, R"({"lang":"en"})");
  EXPECT_EQ(doc.content_hash, "doc-hash-doc-1");
  EXPECT_EQ(doc.chunks, 2);
  const auto found = store_->find_document("doc-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, doc_id);
  EXPECT_FALSE(store_->find_document("doc-2").has_value());

  const std::vector<ChunkRecord> chunks = store_->document_chunks(doc_id);
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
    EXPECT_EQ(store_->chunk(c.id).text, expected.text);
    EXPECT_EQ(store_->memory_blob(c.id), expected.memory_blob);
  }
  EXPECT_EQ(store_->chunk_ids(), (std::vector<int64_t>{chunks[0].id, chunks[1].id}));

  std::vector<std::pair<int64_t, std::vector<float>>> embeddings;
  store_->for_each_embedding([&](int64_t id, std::span<const float> e) {
    embeddings.emplace_back(id, std::vector<float>(e.begin(), e.end()));
  });
  ASSERT_EQ(embeddings.size(), 2u);
  EXPECT_EQ(embeddings[0], std::make_pair(chunks[0].id, make_chunk(0, "", 10).embedding));
  EXPECT_EQ(embeddings[1], std::make_pair(chunks[1].id, make_chunk(0, "", 11).embedding));

  const auto encoding = store_->find_encoding("hash-11");
  ASSERT_TRUE(encoding.has_value());
  EXPECT_EQ(encoding->embedding, make_chunk(0, "", 11).embedding);
  EXPECT_EQ(encoding->memory_blob, make_chunk(0, "", 11).memory_blob);
  EXPECT_EQ(encoding->memory_tokens, 3);
  EXPECT_FALSE(store_->find_encoding("hash-99").has_value());

  EXPECT_EQ(store_->document_count(), 1);
  EXPECT_EQ(store_->chunk_count(), 2);
  const StoreStats stats = store_->stats();
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.chunks, 2);
  EXPECT_EQ(stats.memory_bytes, 10);
  EXPECT_EQ(stats.embedding_bytes, 2 * 3 * 4);
  EXPECT_EQ(stats.memory_tokens, 6);
  EXPECT_GT(stats.file_bytes, 0);
}

TEST_F(StoreTest, MissingRowsAreNotFound) {
  EXPECT_TRUE(throws_error([&] { store_->document(42); }, ErrorKind::kNotFound,
                           {"no document with id 42"}));
  EXPECT_TRUE(
      throws_error([&] { store_->chunk(43); }, ErrorKind::kNotFound, {"no chunk with id 43"}));
  EXPECT_TRUE(throws_error([&] { store_->memory_blob(44); }, ErrorKind::kNotFound,
                           {"no cached memory for chunk 44"}));
}

TEST_F(StoreTest, DuplicateExternalIdAndUnknownDocumentAreInvalidArguments) {
  add("doc-1", {"alpha"}, 1);
  EXPECT_TRUE(throws_error([&] { store_->add_document(make_document("doc-1", "again"), "h"); },
                           ErrorKind::kInvalidArgument, {"UNIQUE constraint failed"}));
  EXPECT_TRUE(throws_error([&] { store_->add_chunk(999, make_chunk(0, "orphan", 5)); },
                           ErrorKind::kInvalidArgument, {"FOREIGN KEY constraint failed"}));
  EXPECT_EQ(store_->orphan_rows(), 0);
  EXPECT_EQ(store_->chunk_count(), 1);
}

TEST_F(StoreTest, MetaRoundTripAndSchemaVersion) {
  EXPECT_EQ(store_->meta("schema_version"), std::to_string(Store::kSchemaVersion));
  EXPECT_FALSE(store_->meta("model").has_value());
  store_->set_meta("model", "abc");
  store_->set_meta("model", "def");
  EXPECT_EQ(store_->meta("model"), "def");
}

TEST_F(StoreTest, Bm25FindsAChunkByItsOwnWords) {
  add("doc-1", {"The river Aldan flows north into the Lena.", "Glaciers cover Mount Orvik."}, 1);
  add("doc-2", {"Copper mines opened in 1843 near Tarsk."}, 5);
  for (const ChunkRecord& c : store_->document_chunks(store_->find_document("doc-1")->id)) {
    const auto hits = store_->search_bm25(c.text, 3);
    ASSERT_FALSE(hits.empty()) << c.text;
    EXPECT_EQ(hits[0].first, c.id) << c.text;
  }
  const auto hits = store_->search_bm25("when did the copper mines open", 10);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(store_->chunk(hits[0].first).text, "Copper mines opened in 1843 near Tarsk.");
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].second, hits[i].second);
  EXPECT_EQ(store_->search_bm25("river glaciers copper", 2).size(), 2u);
  EXPECT_TRUE(store_->search_bm25("copper", 0).empty());
  EXPECT_TRUE(throws_error([&] { store_->search_bm25("copper", -1); }, ErrorKind::kInvalidArgument,
                           {"search_bm25: k must be >= 0, got -1"}));
}

TEST_F(StoreTest, Bm25TreatsFts5SyntaxAsPlainWords) {
  add("doc-1", {"Copper AND tin NEAR the mines."}, 1);
  for (const std::string query :
       {"\"unbalanced", "copper AND", "NEAR(copper tin)", "tin*", "-copper", "text: copper",
        "^copper", "(((", "{text}: copper", "a OR", "NOT", "\xe2\x80\x94 \xc3\xa9", ""}) {
    EXPECT_NO_THROW(store_->search_bm25(query, 5)) << query;
  }
  EXPECT_EQ(store_->search_bm25("NEAR(copper", 5).size(), 1u);
  EXPECT_TRUE(store_->search_bm25("*** ((( \"", 5).empty());
}

TEST_F(StoreTest, RemoveDocumentLeavesNoOrphans) {
  const int64_t keep = add("keep", {"Harbour of Velm.", "Lighthouse of Velm."}, 1);
  const int64_t gone = add("gone", {"Salt flats of Quor.", "Dunes of Quor.", "Wells of Quor."}, 10);
  const std::vector<ChunkRecord> gone_chunks = store_->document_chunks(gone);

  const std::vector<int64_t> removed = store_->remove_document(gone);
  ASSERT_EQ(removed.size(), 3u);
  for (size_t i = 0; i < removed.size(); ++i) EXPECT_EQ(removed[i], gone_chunks[i].id);
  EXPECT_EQ(store_->orphan_rows(), 0);
  EXPECT_EQ(store_->document_count(), 1);
  EXPECT_EQ(store_->chunk_count(), 2);
  EXPECT_TRUE(store_->search_bm25("Quor", 10).empty());
  EXPECT_EQ(store_->search_bm25("Velm", 10).size(), 2u);
  EXPECT_TRUE(throws_error([&] { store_->memory_blob(removed[0]); }, ErrorKind::kNotFound, {}));
  EXPECT_EQ(store_->stats().memory_tokens, 6);
  EXPECT_EQ(store_->document_chunks(keep).size(), 2u);
  EXPECT_TRUE(store_->remove_document(gone).empty());  // already gone
}

// Removing the newest rows must not free their ids: a later chunk taking a
// removed chunk's id would be served that chunk's cached K/V.
TEST_F(StoreTest, IdsOfRemovedRowsAreNeverReused) {
  add("old", {"Harbour of Velm."}, 1);
  const int64_t newest = add("newest", {"Salt flats of Quor.", "Dunes of Quor."}, 10);
  const std::vector<ChunkRecord> newest_chunks = store_->document_chunks(newest);
  store_->remove_document(newest);

  const int64_t again = add("again", {"Wells of Quor.", "Oasis of Quor."}, 20);
  EXPECT_GT(again, newest);
  for (const ChunkRecord& chunk : store_->document_chunks(again)) {
    EXPECT_GT(chunk.id, newest_chunks.back().id);
  }
}

TEST_F(StoreTest, ExceptionInWriteTransactionRollsBack) {
  add("before", {"Existing chunk."}, 1);
  EXPECT_THROW(store_->write_transaction([&] {
    const int64_t id = store_->add_document(make_document("inside", "text"), "h");
    store_->add_chunk(id, make_chunk(0, "Rolled back chunk.", 7));
    store_->set_meta("model", "changed");
    throw std::runtime_error("encoder failed");
  }),
               std::runtime_error);
  EXPECT_FALSE(store_->find_document("inside").has_value());
  EXPECT_FALSE(store_->meta("model").has_value());
  EXPECT_EQ(store_->chunk_count(), 1);
  EXPECT_TRUE(store_->search_bm25("Rolled", 5).empty());
  EXPECT_EQ(store_->orphan_rows(), 0);
  // The store is usable afterwards.
  add("after", {"Later chunk."}, 3);
  EXPECT_EQ(store_->document_count(), 2);
}

TEST_F(StoreTest, NestedTransactionRollsBackOnlyItself) {
  store_->write_transaction([&] {
    store_->set_meta("outer", "1");
    EXPECT_THROW(store_->write_transaction([&] {
      store_->set_meta("inner", "1");
      throw std::runtime_error("inner failed");
    }),
                 std::runtime_error);
  });
  EXPECT_EQ(store_->meta("outer"), "1");
  EXPECT_FALSE(store_->meta("inner").has_value());
}

TEST_F(StoreTest, DataSurvivesReopening) {
  const int64_t doc_id = add("doc-1", {"Persisted chunk text."}, 4);
  store_.reset();
  store_ = std::make_unique<Store>(dir_.file("store.sqlite"));
  EXPECT_EQ(store_->document(doc_id).external_id, "doc-1");
  EXPECT_EQ(store_->search_bm25("persisted", 1).size(), 1u);
}

TEST_F(StoreTest, OtherSchemaVersionSaysWhatToDo) {
  store_->set_meta("schema_version", "99");
  store_.reset();
  const std::string path = dir_.file("store.sqlite");
  EXPECT_TRUE(throws_error([&] { Store reopened(path); }, ErrorKind::kFormat,
                           {path,
                            ": store schema version 99, this build reads version 2; "
                            "rebuild the index with this version of kvrag"}));
}

TEST_F(StoreTest, Bm25StemsAndFoldsDiacritics) {
  add("doc-1", {"She tuned the violin's string before the concert at the café."}, 1);
  add("doc-2", {"Naïve Bayes classifiers count words."}, 5);
  for (const std::string query :
       {"strings", "tuning concerts", "cafe", "CAFÉ", "naive", "counting"}) {
    EXPECT_EQ(store_->search_bm25(query, 5).size(), 1u) << query;
  }
}

TEST_F(StoreTest, ChunkDocumentsNamesEachChunksDocument) {
  const int64_t one = add("doc-1", {"a", "b"}, 1);
  const int64_t two = add("doc-2", {"c"}, 5);
  const std::vector<ChunkRecord> c1 = store_->document_chunks(one);
  const std::vector<ChunkRecord> c2 = store_->document_chunks(two);
  EXPECT_EQ(store_->chunk_documents({c2[0].id, c1[1].id, c1[0].id, c2[0].id}),
            (std::vector<int64_t>{two, one, one, two}));
  EXPECT_TRUE(store_->chunk_documents({}).empty());
  EXPECT_TRUE(throws_error(
      [&] {
        store_->chunk_documents({c1[0].id, 999});
      },
      ErrorKind::kNotFound, {"no chunk 999"}));
}

TEST_F(StoreTest, Version1StoreIsMigratedAtOpen) {
  // A version 1 store: the same tables, the FTS table with plain unicode61.
  const int64_t doc_id = add("doc-1", {"Violin strings were made of gut.", "Dunes of Quor."}, 1);
  store_.reset();
  const std::string path = dir_.file("store.sqlite");
  {
    sql::Database db(path);
    db.exec(
        "DROP TABLE chunks_fts; CREATE VIRTUAL TABLE chunks_fts USING fts5(text);"
        "INSERT INTO chunks_fts(rowid, text) SELECT id, text FROM chunks;"
        "UPDATE meta SET value = '1' WHERE key = 'schema_version';");
  }
  store_ = std::make_unique<Store>(path);
  EXPECT_EQ(store_->meta("schema_version"), "2");
  EXPECT_EQ(store_->orphan_rows(), 0);
  const auto hits = store_->search_bm25("string", 5);  // porter: "strings" is "string"
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].first, store_->document_chunks(doc_id)[0].id);
  EXPECT_EQ(store_->search_bm25("quor", 5).size(), 1u);
  // The migrated store opens again as a version 2 store, and keeps working.
  store_.reset();
  store_ = std::make_unique<Store>(path);
  add("doc-2", {"Catgut strings."}, 7);
  EXPECT_EQ(store_->search_bm25("string", 5).size(), 2u);
  EXPECT_EQ(store_->orphan_rows(), 0);
}

TEST(StoreOpen, NotAStoreIsAFormatError) {
  TempDir dir("kvrag_store");
  const std::string garbage = dir.file("garbage.sqlite");
  testing::write_text(garbage, std::string(4096, 'x'));
  EXPECT_TRUE(throws_error([&] { Store store(garbage); }, ErrorKind::kFormat,
                           {garbage, "file is not a database"}));
}

TEST(StoreOpen, ConcurrentReadersAndAWriter) {
  TempDir dir("kvrag_store");
  Store store(dir.file("store.sqlite"));
  const int64_t doc = store.add_document(make_document("d", "text"), "h");
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) store.add_chunk(doc, make_chunk(i, "word" + std::to_string(i), i));
  });
  int64_t seen = 0;
  for (int i = 0; i < 50; ++i) seen = std::max(seen, store.chunk_count());
  writer.join();
  EXPECT_LE(seen, 50);
  EXPECT_EQ(store.chunk_count(), 50);
  EXPECT_EQ(store.orphan_rows(), 0);
}

}  // namespace
}  // namespace kvrag

// What the SQLite implementation of the store interfaces adds to their
// contract (test_store_conformance.cpp): the schema version and its
// migration, SQLite's own messages, one transaction for metadata and blobs,
// and blobs that go with their chunks.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/sqlite.h"
#include "data/sqlite_blob_store.h"
#include "data/sqlite_metadata_store.h"
#include "data/sqlite_store.h"
#include "tests/model_files.h"
#include "tests/store_fixtures.h"

namespace kvrag {
namespace {

using testing::make_blob;
using testing::make_chunk;
using testing::make_document;
using testing::throws_error;

class SqliteStoreTest : public ::testing::Test {
 protected:
  SqliteStoreTest() : dir_("kvrag_store") { open(); }

  void open() {
    metadata_.reset();
    blobs_.reset();
    database_ = std::make_shared<SqliteStore>(path());
    metadata_ = std::make_unique<SqliteMetadataStore>(database_);
    blobs_ = std::make_unique<SqliteBlobStore>(database_);
  }
  void close() {
    metadata_.reset();
    blobs_.reset();
    database_.reset();
  }
  std::string path() const { return dir_.file("store.sqlite"); }

  int64_t add(const std::string& id, const std::vector<std::string>& chunk_texts, int seed) {
    return testing::add_document_with_chunks(*metadata_, *blobs_, id, chunk_texts, seed);
  }

  testing::TempDir dir_;
  std::shared_ptr<SqliteStore> database_;
  std::unique_ptr<SqliteMetadataStore> metadata_;
  std::unique_ptr<SqliteBlobStore> blobs_;
};

TEST_F(SqliteStoreTest, ConstraintsFailWithSqlitesMessage) {
  add("doc-1", {"alpha"}, 1);
  EXPECT_TRUE(throws_error([&] { metadata_->add_document(make_document("doc-1", "again"), "h"); },
                           ErrorKind::kInvalidArgument, {"UNIQUE constraint failed"}));
  EXPECT_TRUE(throws_error([&] { metadata_->add_chunk(999, make_chunk(0, "orphan", 5)); },
                           ErrorKind::kInvalidArgument, {"FOREIGN KEY constraint failed"}));
  EXPECT_TRUE(throws_error([&] { blobs_->put(999, make_blob(5)); }, ErrorKind::kInvalidArgument,
                           {"FOREIGN KEY constraint failed"}));
  EXPECT_EQ(database_->orphan_rows(), 0);
}

// The pipeline removes a removed document's blobs after the commit; in
// store.sqlite they went with their chunks already.
TEST_F(SqliteStoreTest, RemovedDocumentTakesItsBlobsAndFtsRows) {
  add("keep", {"Harbour of Velm."}, 1);
  const int64_t gone = add("gone", {"Salt flats of Quor.", "Dunes of Quor."}, 10);
  for (const int64_t id : metadata_->remove_document(gone)) {
    EXPECT_FALSE(blobs_->get(id).has_value());
  }
  EXPECT_EQ(database_->orphan_rows(), 0);
  EXPECT_EQ(blobs_->stats().bytes, 5);
}

// Metadata and blobs share one connection: a blob put in a transaction
// that fails is rolled back with it.
TEST_F(SqliteStoreTest, BlobsRollBackWithTheMetadataTransaction) {
  int64_t chunk_id = 0;
  EXPECT_THROW(metadata_->write_transaction([&] {
    const int64_t id = metadata_->add_document(make_document("inside", "text"), "h");
    chunk_id = metadata_->add_chunk(id, make_chunk(0, "Rolled back chunk.", 7));
    blobs_->put(chunk_id, make_blob(7));
    throw std::runtime_error("encoder failed");
  }),
               std::runtime_error);
  EXPECT_FALSE(blobs_->get(chunk_id).has_value());
  EXPECT_EQ(blobs_->stats().bytes, 0);
  EXPECT_EQ(database_->orphan_rows(), 0);
}

TEST_F(SqliteStoreTest, GenerationIsMetaStoreGeneration) {
  EXPECT_EQ(metadata_->meta("schema_version"), std::to_string(SqliteStore::kSchemaVersion));
  metadata_->write_transaction([&] { metadata_->advance_generation(); });
  EXPECT_EQ(metadata_->meta("store_generation"), "1");
  metadata_->set_meta("store_generation", "x1");
  EXPECT_TRUE(throws_error([&] { metadata_->generation(); }, ErrorKind::kFormat,
                           {path(), ": meta 'store_generation' = 'x1' is not an integer"}));
}

TEST_F(SqliteStoreTest, OtherSchemaVersionSaysWhatToDo) {
  metadata_->set_meta("schema_version", "99");
  close();
  EXPECT_TRUE(throws_error([&] { SqliteStore reopened(path()); }, ErrorKind::kFormat,
                           {path(),
                            ": store schema version 99, this build reads version 2; "
                            "rebuild the index with this version of kvrag"}));
}

TEST_F(SqliteStoreTest, Version1StoreIsMigratedAtOpen) {
  // A version 1 store: the same tables, the FTS table with plain unicode61.
  const int64_t doc_id = add("doc-1", {"Violin strings were made of gut.", "Dunes of Quor."}, 1);
  close();
  {
    sql::Database db(path());
    db.exec(
        "DROP TABLE chunks_fts; CREATE VIRTUAL TABLE chunks_fts USING fts5(text);"
        "INSERT INTO chunks_fts(rowid, text) SELECT id, text FROM chunks;"
        "UPDATE meta SET value = '1' WHERE key = 'schema_version';");
  }
  open();
  EXPECT_EQ(metadata_->meta("schema_version"), "2");
  EXPECT_EQ(database_->orphan_rows(), 0);
  const auto hits = metadata_->search_lexical("string", 5);  // porter: "strings" is "string"
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].first, metadata_->document_chunks(doc_id)[0].id);
  EXPECT_EQ(metadata_->search_lexical("quor", 5).size(), 1u);
  // The migrated store opens again as a version 2 store, and keeps working.
  close();
  open();
  add("doc-2", {"Catgut strings."}, 7);
  EXPECT_EQ(metadata_->search_lexical("string", 5).size(), 2u);
  EXPECT_EQ(database_->orphan_rows(), 0);
}

// Opening a current store reads only: it opens while another connection
// holds a write transaction, where it waited 10 s for the lock and failed.
TEST_F(SqliteStoreTest, OpensWhileAnotherConnectionWrites) {
  add("doc-1", {"Violin strings were made of gut."}, 1);
  close();
  sql::Database writer(path());
  writer.exec("BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'schema_version';");
  EXPECT_NO_THROW(open());
  EXPECT_EQ(metadata_->stats().documents, 1);
  writer.exec("ROLLBACK");
}

TEST(SqliteStoreOpen, NotAStoreIsAFormatError) {
  testing::TempDir dir("kvrag_store");
  const std::string garbage = dir.file("garbage.sqlite");
  testing::write_text(garbage, std::string(4096, 'x'));
  EXPECT_TRUE(throws_error([&] { SqliteStore store(garbage); }, ErrorKind::kFormat,
                           {garbage, "file is not a database"}));
}

}  // namespace
}  // namespace kvrag

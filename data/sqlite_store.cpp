#include "data/sqlite_store.h"

#include <filesystem>

#include "core/error.h"
#include "data/sqlite.h"

namespace kvrag {
namespace {

// Schema of DESIGN.md. chunk_kv holds whatever the index caches per chunk
// (per-layer K/V or the encoder output, named by meta 'cache'); the FTS5
// table (kFtsTable) keeps its rowid equal to the chunk id. AUTOINCREMENT: an id is never
// reused after a delete, so nothing keyed by chunk id (the RAM K/V cache, a
// FAISS entry not yet removed) can ever name another chunk's data.
constexpr const char* kMetaSchema =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS documents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  external_id TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  source TEXT NOT NULL,
  text TEXT NOT NULL,
  metadata TEXT NOT NULL,
  content_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  text TEXT NOT NULL,
  token_ids BLOB NOT NULL,
  content_hash TEXT NOT NULL,
  embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id, position);
CREATE INDEX IF NOT EXISTS chunks_by_hash ON chunks(content_hash);
CREATE TABLE IF NOT EXISTS chunk_kv (
  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
  tokens INTEGER NOT NULL,
  data BLOB NOT NULL);
)sql";

// BM25's tokenizer: unicode61 folds case and, with remove_diacritics 2, all
// diacritics ("café" finds "cafe"); porter stems English ("strings" finds
// "string"). Measured with scripts/retrieval_lab/bm25_lab.py against plain
// unicode61, document recall @5/@20: SQuAD dev +1.5/+1.7 points, Debian man
// pages +2.2/+1.7, sample −0.3/±0. Schema version 1 had plain unicode61.
constexpr const char* kFtsTable =
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, tokenize = 'porter unicode61 "
    "remove_diacritics 2')";

}  // namespace

SqliteStore::SqliteStore(const std::string& path) : path_(path) {
  db_ = std::make_unique<sql::Database>(path);
  // WAL lets readers (asks) go on while a writer indexes. SQLite answers
  // with the mode it is in, which stays the old one where WAL cannot work
  // (a network file system without shared memory).
  {
    sql::Statement wal(*db_, "PRAGMA journal_mode=WAL");
    KVRAG_CHECK(wal.step() && wal.column_text(0) == "wal", kIo, path_,
                ": SQLite cannot use WAL journal mode here (it stays in '", wal.column_text(0),
                "'); put the index on a local file system");
  }
  db_->exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  // Reads of checkpointed pages come from a memory map rather than a
  // read() per page: a chunk's K/V blob spans hundreds of overflow pages.
  // SQLite caps the size at its compile-time maximum (2 GiB by default);
  // writes still go through write(), so crash safety is unchanged.
  db_->exec("PRAGMA mmap_size=2147418112;");
  create_schema();
}

SqliteStore::~SqliteStore() = default;

std::unique_lock<std::recursive_mutex> SqliteStore::lock() const {
  return std::unique_lock<std::recursive_mutex>(mutex_);
}

bool SqliteStore::holds_current_schema() const {
  sql::Statement meta_table(*db_, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'");
  meta_table.step();
  return meta_table.column_int(0) == 1 && meta("schema_version") == std::to_string(kSchemaVersion);
}

void SqliteStore::create_schema() {
  const auto held = lock();
  // A store of this version is only read: opening it takes no write lock,
  // so a reader (kvrag ask, the source of kvrag copy) opens while a long
  // write transaction runs, where it waited for the busy timeout and failed
  // with "database is locked". A new table therefore needs a new version.
  if (holds_current_schema()) return;
  sql::Transaction txn(*db_);
  // The version is checked before anything else is created, so a store of
  // another version fails with this message rather than an SQL error.
  db_->exec(kMetaSchema);
  const auto version = meta("schema_version");
  if (!version) {
    sql::Statement tables(*db_, "SELECT count(*) FROM sqlite_master WHERE tbl_name <> 'meta'");
    tables.step();
    KVRAG_CHECK(tables.column_int(0) == 0, kFormat, path_,
                ": not a kvrag store (an SQLite database without a schema version)");
    set_meta("schema_version", std::to_string(kSchemaVersion));
  } else if (*version == "1") {
    migrate_from_version_1();
  } else {
    KVRAG_CHECK(*version == std::to_string(kSchemaVersion), kFormat, path_,
                ": store schema version ", *version, ", this build reads version ", kSchemaVersion,
                "; rebuild the index with this version of kvrag");
  }
  db_->exec(kSchema);
  db_->exec(kFtsTable);
  txn.commit();
}

void SqliteStore::migrate_from_version_1() {
  // Version 1 differs only in the FTS tokenizer. The FTS table is derived
  // from the chunk texts, so it is rebuilt from them, inside the caller's
  // transaction: a failure leaves the version 1 store as it was.
  db_->exec("DROP TABLE IF EXISTS chunks_fts");
  db_->exec(kFtsTable);
  db_->exec("INSERT INTO chunks_fts(rowid, text) SELECT id, text FROM chunks ORDER BY id");
  set_meta("schema_version", std::to_string(kSchemaVersion));
}

std::optional<std::string> SqliteStore::meta(const std::string& key) const {
  const auto held = lock();
  sql::Statement st(*db_, "SELECT value FROM meta WHERE key = ?");
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  return st.column_text(0);
}

void SqliteStore::set_meta(const std::string& key, const std::string& value) {
  const auto held = lock();
  sql::Statement st(*db_,
                    "INSERT INTO meta(key, value) VALUES(?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  st.bind(1, key).bind(2, value).run();
}

int64_t SqliteStore::file_bytes() const {
  int64_t bytes = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path_ + suffix, ec);
    if (!ec) bytes += static_cast<int64_t>(size);
  }
  return bytes;
}

int64_t SqliteStore::orphan_rows() const {
  const auto held = lock();
  sql::Statement st(*db_,
                    "SELECT (SELECT count(*) FROM chunks WHERE document_id NOT IN "
                    "(SELECT id FROM documents)) + (SELECT count(*) FROM chunk_kv WHERE "
                    "chunk_id NOT IN (SELECT id FROM chunks)) + (SELECT count(*) FROM "
                    "chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)) + (SELECT count(*) "
                    "FROM chunks WHERE id NOT IN (SELECT chunk_id FROM chunk_kv)) + (SELECT "
                    "count(*) FROM chunks WHERE id NOT IN (SELECT rowid FROM chunks_fts))");
  st.step();
  return st.column_int(0);
}

}  // namespace kvrag

// store.sqlite, the SQLite database of an index folder: it holds both the
// metadata (SqliteMetadataStore) and the cached memories (SqliteBlobStore),
// which share this one connection, so that a blob written inside a metadata
// write transaction commits or rolls back with it. WAL mode.
//
// Schema (DESIGN.md): meta, documents, chunks (text, token ids, embedding),
// chunk_kv (chunk id, tokens, blob) and chunks_fts (FTS5 over chunk text,
// rowid = chunk id).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace kvrag {

namespace sql {
class Database;
}

class SqliteStore {
 public:
  // 2: the FTS table tokenizes with porter stemming and diacritics removal.
  static constexpr int kSchemaVersion = 2;

  // Opens or creates store.sqlite at `path` (its folder must exist), creating
  // the schema. A version 1 store is migrated in place at open (its FTS table
  // rebuilt from the chunk texts, in one transaction). A store of another
  // schema version, an SQLite database that is not a kvrag store, or a file
  // that is not a database is Error(kFormat) saying what to do; SQLite
  // failures are Error(kIo).
  explicit SqliteStore(const std::string& path);
  ~SqliteStore();
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  const std::string& path() const { return path_; }

  // The connection, for the two stores over it. Whoever uses it holds
  // lock() around the use: they share one connection, and another thread's
  // statements would otherwise run inside a writer's transaction.
  sql::Database& db() const { return *db_; }
  std::unique_lock<std::recursive_mutex> lock() const;

  std::optional<std::string> meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value);

  // Bytes of store.sqlite and its WAL on disk.
  int64_t file_bytes() const;
  // Rows that lost their parent or their companion (a chunk without its
  // blob or FTS row, and the reverse): none in a sound store (for tests).
  int64_t orphan_rows() const;

 private:
  // Whether the store holds the meta table and this build's schema version.
  bool holds_current_schema() const;
  void create_schema();
  void migrate_from_version_1();

  std::string path_;
  std::unique_ptr<sql::Database> db_;
  mutable std::recursive_mutex mutex_;
};

}  // namespace kvrag

// Thin RAII wrappers over the SQLite C API, private to data/. Every return
// code is checked; failures are Error carrying sqlite3_errmsg, of kind
// kInvalidArgument for a broken constraint, kFormat for a file that is not a
// database or is corrupt, kIo otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/bytes.h"

struct sqlite3;
struct sqlite3_blob;
struct sqlite3_stmt;

namespace kvrag::sql {

class Database {
 public:
  // Opens (creating if needed) the database file; Error(kIo) on failure.
  explicit Database(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements with no results.
  void exec(const std::string& sql);
  sqlite3* handle() const { return db_; }
  int64_t last_insert_rowid() const;
  int changes() const;
  // True between BEGIN and COMMIT/ROLLBACK.
  bool in_transaction() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement(Database& db, const std::string& sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds by 1-based index; return *this to chain.
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, const std::string& value);
  Statement& bind_blob(int index, std::span<const uint8_t> value);
  Statement& bind_null(int index);

  // Advances to the next row: true when a row is ready, false when done.
  bool step();
  // step() that must finish without a row (INSERT, UPDATE, DELETE).
  void run();
  void reset();

  int64_t column_int(int index) const;
  double column_double(int index) const;
  std::string column_text(int index) const;
  std::vector<uint8_t> column_blob(int index) const;
  std::span<const uint8_t> column_blob_view(int index) const;  // valid until the next step
  bool column_is_null(int index) const;

 private:
  void check(int rc, const char* what) const;

  Database& db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

// Reads of one BLOB column row after row through one handle
// (sqlite3_blob_open, then sqlite3_blob_reopen for each next row): the
// bytes go straight from the pages into the caller's buffer, with no copy
// of the whole value in a statement's result first. The handle holds a read
// transaction open while it lives; the caller serialises use of `db`.
class BlobReader {
 public:
  BlobReader(Database& db, std::string table, std::string column);
  ~BlobReader();
  BlobReader(const BlobReader&) = delete;
  BlobReader& operator=(const BlobReader&) = delete;

  // The value in row `rowid`, or nullopt when the table has no such row.
  std::optional<Bytes> read(int64_t rowid);

 private:
  Database& db_;
  std::string table_;
  std::string column_;
  sqlite3_blob* blob_ = nullptr;
};

// A write transaction: BEGIN IMMEDIATE on construction (the write lock is
// taken at once, so a read-then-write cannot fail later with
// SQLITE_BUSY_SNAPSHOT), or a SAVEPOINT when the connection is already inside
// a transaction, so transactions nest. ROLLBACK (TO the savepoint) in the
// destructor unless commit() ran: an exception leaves the database as it was.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Database& db_;
  bool nested_ = false;
  bool done_ = false;
};

}  // namespace kvrag::sql

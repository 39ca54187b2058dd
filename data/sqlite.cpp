#include "data/sqlite.h"

#include <sqlite3.h>

#include "core/error.h"

namespace kvrag::sql {
namespace {

// A broken constraint (a duplicate id) is the caller's mistake; a file that
// is not a database or is damaged is a format error; the rest is I/O.
ErrorKind error_kind(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return ErrorKind::kInvalidArgument;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return ErrorKind::kFormat;
    default:
      return ErrorKind::kIo;
  }
}

}  // namespace

Database::Database(const std::string& path) : path_(path) {
  const int rc =
      sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    KVRAG_THROW(kIo, path, ": cannot open SQLite database: ", message);
  }
  // Writers wait for each other instead of failing at once.
  sqlite3_busy_timeout(db_, 10000);
}

Database::~Database() { sqlite3_close_v2(db_); }

void Database::exec(const std::string& sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    const std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throw_error(error_kind(rc),
                str_cat(path_, ": SQLite error: ", message, " (in: ", sql.substr(0, 80), ")"));
  }
}

int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Database::changes() const { return sqlite3_changes(db_); }
bool Database::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

BlobReader::BlobReader(Database& db, std::string table, std::string column)
    : db_(db), table_(std::move(table)), column_(std::move(column)) {}

BlobReader::~BlobReader() { sqlite3_blob_close(blob_); }

std::optional<Bytes> BlobReader::read(int64_t rowid) {
  const int rc = blob_ ? sqlite3_blob_reopen(blob_, rowid)
                       : sqlite3_blob_open(db_.handle(), "main", table_.c_str(), column_.c_str(),
                                           rowid, /*flags=*/0, &blob_);
  if (rc != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db_.handle());
    // A failed open or reopen leaves a handle that cannot move on: start over.
    sqlite3_blob_close(blob_);
    blob_ = nullptr;
    // SQLite reports a missing row only in its message ("no such rowid: 7").
    if ((rc & 0xff) == SQLITE_ERROR && message.starts_with("no such rowid")) return std::nullopt;
    throw_error(error_kind(rc), str_cat(db_.path(), ": SQLite blob open of ", table_, ".", column_,
                                        " row ", rowid, " failed: ", message));
  }
  Bytes bytes(static_cast<size_t>(sqlite3_blob_bytes(blob_)));
  const int read_rc = sqlite3_blob_read(blob_, bytes.data(), static_cast<int>(bytes.size()), 0);
  if (read_rc != SQLITE_OK) {
    throw_error(error_kind(read_rc),
                str_cat(db_.path(), ": SQLite blob read of ", table_, ".", column_, " row ", rowid,
                        " failed: ", sqlite3_errmsg(db_.handle())));
  }
  return bytes;
}

Statement::Statement(Database& db, const std::string& sql) : db_(db), sql_(sql) {
  check(sqlite3_prepare_v2(db.handle(), sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr),
        "prepare");
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::check(int rc, const char* what) const {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  throw_error(error_kind(rc),
              str_cat(db_.path(), ": SQLite ", what, " failed: ", sqlite3_errmsg(db_.handle()),
                      " (in: ", sql_.substr(0, 80), ")"));
}

Statement& Statement::bind(int index, int64_t value) {
  check(sqlite3_bind_int64(stmt_, index, value), "bind");
  return *this;
}
Statement& Statement::bind(int index, double value) {
  check(sqlite3_bind_double(stmt_, index, value), "bind");
  return *this;
}
Statement& Statement::bind(int index, const std::string& value) {
  check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                          SQLITE_TRANSIENT),
        "bind");
  return *this;
}
Statement& Statement::bind_blob(int index, std::span<const uint8_t> value) {
  check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT), "bind");
  return *this;
}
Statement& Statement::bind_null(int index) {
  check(sqlite3_bind_null(stmt_, index), "bind");
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  check(rc, "step");
  return rc == SQLITE_ROW;
}

void Statement::run() {
  const bool row = step();
  KVRAG_CHECK(!row, kInternal, "statement returned a row: ", sql_);
  reset();
}

void Statement::reset() {
  // sqlite3_reset repeats the error of the last step, which step() checked.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }
double Statement::column_double(int index) const { return sqlite3_column_double(stmt_, index); }
std::string Statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(stmt_, index);
  return text ? std::string(reinterpret_cast<const char*>(text),
                            static_cast<size_t>(sqlite3_column_bytes(stmt_, index)))
              : std::string();
}
std::span<const uint8_t> Statement::column_blob_view(int index) const {
  const auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, index));
  return {data, static_cast<size_t>(sqlite3_column_bytes(stmt_, index))};
}
std::vector<uint8_t> Statement::column_blob(int index) const {
  const auto view = column_blob_view(index);
  return {view.begin(), view.end()};
}
bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

Transaction::Transaction(Database& db) : db_(db), nested_(db.in_transaction()) {
  db_.exec(nested_ ? "SAVEPOINT kvrag_nested" : "BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (done_) return;
  try {
    db_.exec(nested_ ? "ROLLBACK TO kvrag_nested; RELEASE kvrag_nested" : "ROLLBACK");
  } catch (const Error&) {
    // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR):
    // then there is nothing left to undo, and a destructor must not throw.
  }
}

void Transaction::commit() {
  db_.exec(nested_ ? "RELEASE kvrag_nested" : "COMMIT");
  done_ = true;
}

}  // namespace kvrag::sql

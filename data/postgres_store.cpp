#include "data/postgres_store.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <optional>
#include <utility>
#include <vector>

#include "core/error.h"

namespace kvrag {
namespace {

// Reads running at once per store; more wait for a connection. Reads take
// milliseconds: a few connections keep parallel asks from queueing behind
// each other without holding many server processes per serving node.
constexpr size_t kReadConnections = 4;
// A pooled reader that fell back to a standby goes back to the primary
// (the first host) after this long, so that reads see the newest commits
// again once the primary is back.
constexpr auto kStandbyRecheck = std::chrono::seconds(5);

// FNV-1a: a stable 64-bit advisory lock key from a name.
int64_t lock_key(const std::string& name) {
  uint64_t h = 14695981039346656037ull;
  for (const char ch : name) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ull;
  }
  return static_cast<int64_t>(h);
}

std::string advisory_lock(const std::string& name) {
  return "SELECT pg_advisory_xact_lock(" + std::to_string(lock_key(name)) + ")";
}

bool valid_schema_name(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (!(std::islower(c) || std::isdigit(c) || ch == '_')) return false;
  }
  return true;
}

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

std::string percent_decoded(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The URI with the password of its user info (user:password@) left out.
std::string without_password(const std::string& uri) {
  const size_t start = uri.find("://") + 3;
  const size_t at = uri.find('@', start);
  const size_t slash = uri.find('/', start);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) return uri;
  const size_t colon = uri.find(':', start);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon) + uri.substr(at);
}

// The tables of schema version 1; {S} is the schema, {X} the schema of the
// unaccent extension. Identity columns: an id is never reused after a
// removal (a sequence never goes back), so nothing keyed by chunk id can
// name another chunk's data. Lexical search is PostgreSQL full-text search
// over `lexemes`: the English configuration (Snowball stemming, English
// stop words) with unaccent before the stemmer, so that "cafe" finds
// "café" as FTS5's remove_diacritics does in the SQLite store. chunk_blobs
// are stored EXTERNAL (out of line, uncompressed): K/V bytes do not
// compress, and pglz would spend time finding that out on every put.
constexpr const char* kSchemaSql = R"sql(
CREATE TEXT SEARCH CONFIGURATION {S}.kvrag_english (COPY = pg_catalog.english);
ALTER TEXT SEARCH CONFIGURATION {S}.kvrag_english
  ALTER MAPPING FOR word, hword, hword_part WITH {X}.unaccent, pg_catalog.english_stem;
CREATE TABLE {S}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {S}.documents (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  external_id text NOT NULL UNIQUE,
  title text NOT NULL,
  source text NOT NULL,
  text text NOT NULL,
  metadata text NOT NULL,
  content_hash text NOT NULL);
CREATE TABLE {S}.chunks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  document_id bigint NOT NULL REFERENCES {S}.documents(id) ON DELETE CASCADE,
  position bigint NOT NULL,
  text text NOT NULL,
  token_ids bytea NOT NULL,
  content_hash text NOT NULL,
  embedding bytea NOT NULL,
  lexemes tsvector GENERATED ALWAYS AS (to_tsvector('{S}.kvrag_english'::regconfig, text)) STORED);
CREATE INDEX chunks_by_document ON {S}.chunks(document_id, position);
CREATE INDEX chunks_by_hash ON {S}.chunks(content_hash);
CREATE INDEX chunks_lexemes ON {S}.chunks USING gin(lexemes);
CREATE TABLE {S}.chunk_blobs (
  chunk_id bigint PRIMARY KEY REFERENCES {S}.chunks(id) ON DELETE CASCADE,
  tokens bigint NOT NULL,
  data bytea NOT NULL);
ALTER TABLE {S}.chunk_blobs ALTER COLUMN data SET STORAGE EXTERNAL;
)sql";

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

}  // namespace

bool is_postgres_uri(const std::string& location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

PostgresLocation parse_postgres_uri(const std::string& uri) {
  KVRAG_CHECK(is_postgres_uri(uri), kInvalidArgument, "not a postgresql:// URI: ", uri);
  PostgresLocation loc;
  loc.schema = kDefaultPostgresSchema;
  const size_t question = uri.find('?');
  loc.conninfo = uri.substr(0, question);
  std::string passed;  // the parameters libpq reads
  if (question != std::string::npos) {
    const std::string query = uri.substr(question + 1);
    size_t start = 0;
    while (start <= query.size()) {
      const size_t end = std::min(query.find('&', start), query.size());
      const std::string param = query.substr(start, end - start);
      if (param.rfind("schema=", 0) == 0) {
        loc.schema = percent_decoded(param.substr(7));
      } else if (param.rfind("blobs=", 0) == 0) {
        loc.blobs = percent_decoded(param.substr(6));
      } else if (!param.empty()) {
        passed += (passed.empty() ? "?" : "&") + param;
      }
      start = end + 1;
    }
  }
  loc.conninfo += passed;
  KVRAG_CHECK(valid_schema_name(loc.schema), kInvalidArgument, "schema '", loc.schema, "' in ",
              without_password(uri),
              ": a schema name is lower-case letters, digits and _ (at most 63), not starting "
              "with a digit");
  loc.display = without_password(uri);
  return loc;
}

void drop_postgres_schema(const std::string& uri) {
  const PostgresLocation loc = parse_postgres_uri(uri);
  pg::Connection conn(loc.conninfo, loc.schema, loc.display, pg::Role::kPrimary);
  conn.run("DROP SCHEMA IF EXISTS " + loc.schema + " CASCADE");
}

// ---------------------------------------------------------------- readers

// A few reader connections, connected when first needed. acquire() waits
// while all are out.
class PostgresStore::ReadPool {
 public:
  explicit ReadPool(const PostgresLocation& loc) : loc_(loc) {}

  class Lease {
   public:
    Lease(ReadPool& pool, std::unique_ptr<pg::Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    ~Lease() { pool_.release(std::move(conn_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    pg::Connection* operator->() const { return conn_.get(); }
    pg::Connection& operator*() const { return *conn_; }

   private:
    ReadPool& pool_;
    std::unique_ptr<pg::Connection> conn_;
  };

  Lease acquire() {
    std::unique_lock held(mutex_);
    available_.wait(held, [&] { return !idle_.empty() || created_ < kReadConnections; });
    if (!idle_.empty()) {
      std::unique_ptr<pg::Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      held.unlock();
      back_to_primary(*conn);
      return Lease(*this, std::move(conn));
    }
    ++created_;
    held.unlock();
    try {
      return Lease(*this, std::make_unique<pg::Connection>(loc_.conninfo, loc_.schema, loc_.display,
                                                           pg::Role::kAny));
    } catch (...) {
      const std::lock_guard again(mutex_);
      --created_;
      available_.notify_one();
      throw;
    }
  }

  // A writer has just reached the primary.
  void primary_seen() { primary_seen_ = std::chrono::steady_clock::now(); }

 private:
  void release(std::unique_ptr<pg::Connection> conn) {
    const std::lock_guard held(mutex_);
    idle_.push_back(std::move(conn));
    available_.notify_one();
  }

  // A reader on a standby tries the hosts again from the first, where the
  // primary is, once a writer has reached the primary since it connected
  // (a reader left there would miss the newest commits while the standby
  // catches up), or every kStandbyRecheck. Failing that it stays broken,
  // and the read's retry reports what is reachable.
  void back_to_primary(pg::Connection& conn) const {
    if (!conn.on_standby()) return;
    const auto now = std::chrono::steady_clock::now();
    if (conn.connected_at() > primary_seen_.load() && now - conn.connected_at() < kStandbyRecheck) {
      return;
    }
    try {
      conn.reconnect();
    } catch (const Error&) {
    }
  }
  const PostgresLocation& loc_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pg::Connection>> idle_;
  size_t created_ = 0;
  std::atomic<std::chrono::steady_clock::time_point> primary_seen_{};
};

// ---------------------------------------------------------------- store

PostgresStore::PostgresStore(const std::string& uri)
    : location_(parse_postgres_uri(uri)),
      writer_lock_(advisory_lock("kvrag writer " + location_.schema)),
      readers_(std::make_unique<ReadPool>(location_)) {
  open_schema();
}

PostgresStore::~PostgresStore() = default;

// owner_ only: depth_ belongs to the thread holding write_mutex_.
bool PostgresStore::in_write_transaction() const {
  return owner_.load() == std::this_thread::get_id();
}

pg::Connection& PostgresStore::writer() {
  if (!writer_) {
    writer_ = std::make_unique<pg::Connection>(location_.conninfo, location_.schema,
                                               location_.display, pg::Role::kPrimary);
  } else if (writer_->broken()) {
    writer_->reconnect();
  }
  return *writer_;
}

// BEGIN and the schema's writer lock in one round trip. Nothing is written
// yet, so a connection found broken here is replaced and BEGIN retried. A
// lock that fails on a live connection (a statement_timeout, a cancel)
// leaves its transaction aborted: rolled back here, or every later BEGIN
// on this connection would fail with it.
void PostgresStore::begin() {
  const std::string sql = "BEGIN; " + writer_lock_;
  const auto attempt = [&] {
    try {
      writer().run(sql);
    } catch (const Error&) {
      if (writer_ && !writer_->broken()) rollback_quietly();
      throw;
    }
  };
  try {
    attempt();
  } catch (const Error&) {
    if (!writer_ || !writer_->broken()) throw;
    attempt();
  }
  readers_->primary_seen();
}

void PostgresStore::commit() {
  if (writer_->in_failed_transaction()) {
    rollback_quietly();
    KVRAG_THROW(kInternal, location(),
                ": the write transaction was rolled back: a statement in it failed and the error "
                "was caught inside it (wrap a write that may fail in a nested write_transaction)");
  }
  writer_->run("COMMIT");
}

void PostgresStore::rollback_quietly() {
  try {
    if (!writer_->broken()) writer_->run("ROLLBACK");
  } catch (const Error&) {
    // A lost connection has rolled back already, and the body's own
    // exception is the one to report.
  }
}

void PostgresStore::write_transaction(const std::function<void()>& body) {
  const std::lock_guard held(write_mutex_);
  if (depth_ > 0) return nested_transaction(body);
  begin();
  depth_ = 1;
  owner_ = std::this_thread::get_id();
  const auto leave = [&] {
    depth_ = 0;
    owner_ = std::thread::id();
  };
  try {
    body();
  } catch (...) {
    leave();
    rollback_quietly();
    throw;
  }
  leave();
  commit();
}

void PostgresStore::nested_transaction(const std::function<void()>& body) {
  const std::string savepoint = "kvrag_nested_" + std::to_string(depth_);
  writer_->run("SAVEPOINT " + savepoint);
  ++depth_;
  try {
    body();
  } catch (...) {
    --depth_;
    try {
      writer_->run("ROLLBACK TO SAVEPOINT " + savepoint + "; RELEASE SAVEPOINT " + savepoint);
    } catch (const Error&) {
      // The connection is gone: the outer transaction fails with it.
    }
    throw;
  }
  --depth_;
  writer_->run("RELEASE SAVEPOINT " + savepoint);
}

pg::Result PostgresStore::write(const std::string& sql, std::initializer_list<pg::Param> params) {
  const std::lock_guard held(write_mutex_);
  if (depth_ > 0) return writer_->exec(sql, params);
  std::optional<pg::Result> result;
  write_transaction([&] { result.emplace(writer_->exec(sql, params)); });
  return std::move(*result);
}

pg::Result PostgresStore::read(const std::string& sql,
                               std::initializer_list<pg::Param> params) const {
  if (in_write_transaction()) return writer_->exec(sql, params);
  ReadPool::Lease conn = readers_->acquire();
  try {
    return conn->exec(sql, params);
  } catch (const Error&) {
    if (!conn->broken()) throw;
  }
  conn->reconnect();
  return conn->exec(sql, params);
}

// ---------------------------------------------------------------- schema

namespace {

// The kvrag schema version stored in the schema, or nullopt when the
// schema is missing or empty. Error(kFormat) for a schema that holds
// something else.
std::optional<std::string> stored_version(pg::Connection& conn, const std::string& schema,
                                          const std::string& location) {
  const pg::Result tables = conn.exec(
      "SELECT count(*), count(*) FILTER (WHERE c.relname = 'meta') FROM pg_class c "
      "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
      {schema});
  if (tables.integer(0, 0) == 0) return std::nullopt;
  KVRAG_CHECK(tables.integer(0, 1) == 1, kFormat, location, ": schema ", schema,
              " holds tables but is not a kvrag index; name another with schema=");
  const pg::Result version = conn.exec("SELECT value FROM meta WHERE key = 'schema_version'");
  KVRAG_CHECK(version.rows() == 1, kFormat, location, ": schema ", schema,
              " has no kvrag schema version: not a kvrag index; name another with schema=");
  return version.text(0, 0);
}

}  // namespace

bool PostgresStore::has_schema(pg::Connection& conn) const {
  const auto version = stored_version(conn, schema(), location());
  KVRAG_CHECK(!version || *version == std::to_string(kSchemaVersion), kFormat, location(),
              ": store schema version ", *version, ", this build reads version ", kSchemaVersion,
              "; rebuild the index with this version of kvrag");
  return version.has_value();
}

void PostgresStore::create_schema(pg::Connection& conn) {
  conn.run("CREATE SCHEMA IF NOT EXISTS " + schema() +
           "; CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public");
  const pg::Result extension = conn.exec(
      "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
      "WHERE e.extname = 'unaccent'");
  const std::string sql =
      replaced(replaced(kSchemaSql, "{S}", schema()), "{X}", extension.text(0, 0));
  conn.run(sql);
  conn.exec("INSERT INTO meta(key, value) VALUES('schema_version', $1)",
            {std::to_string(kSchemaVersion)});
}

// Creating is serialised across processes by one advisory lock for every
// schema: CREATE EXTENSION IF NOT EXISTS is not safe against a concurrent
// one. Without a primary, an existing schema is checked on a reader.
void PostgresStore::open_schema() {
  const std::lock_guard held(write_mutex_);
  pg::Connection* conn = nullptr;
  try {
    conn = &writer();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnavailable) throw;
    ReadPool::Lease reader = readers_->acquire();
    if (!has_schema(*reader)) throw;
    return;
  }
  conn->run("BEGIN; " + advisory_lock("kvrag schema setup"));
  try {
    if (!has_schema(*conn)) create_schema(*conn);
  } catch (...) {
    rollback_quietly();
    throw;
  }
  conn->run("COMMIT");
}

}  // namespace kvrag

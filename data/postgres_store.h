// An index in a PostgreSQL database, one schema per index: the connections
// that the metadata (PostgresMetadataStore) and the cached memories
// (PostgresBlobStore) share, the schema and its version, and the write
// transactions both take part in, so that a blob written inside a metadata
// write transaction commits or rolls back with it.
//
// Addressed by a libpq URI with kvrag's own parameters:
//   postgresql://user@host:port,host:port/db?schema=NAME&blobs=...
// libpq tries the hosts in order. Writes go to the one that accepts them
// (target_session_attrs=read-write); reads go to the first that answers,
// which is the primary while it is up and a hot standby when it is not.
// With only a standby reachable, reads work and writes are
// Error(kUnavailable) (HTTP 503).
//
// Threads: libpq connections are not thread-safe. Writes share one
// connection under a mutex (writers wait for each other anyway, below);
// reads take one of a small pool of connections, so that asks read in
// parallel and are never stuck behind a writer's transaction. A thread
// inside a write transaction reads on the writer's connection, seeing its
// own uncommitted writes.
//
// Writers in several processes (serving nodes) serialise on a transaction
// advisory lock of the schema, taken when a write transaction begins: the
// generation counter advanced inside one never skips or repeats.
#pragma once

#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "data/postgres_connection.h"

namespace kvrag {

// The parts of a postgresql:// (or postgres://) index URI.
struct PostgresLocation {
  std::string conninfo;  // the URI without kvrag's parameters: what libpq reads
  std::string schema;    // schema= ("kvrag" when absent)
  std::string blobs;     // blobs= as given (a separate blob store), empty when absent
  std::string display;   // the URI without its password, for messages
};

inline constexpr const char* kDefaultPostgresSchema = "kvrag";

// True when `location` is a postgresql:// or postgres:// URI.
bool is_postgres_uri(const std::string& location);
// Splits an index URI. Error(kInvalidArgument) for another scheme or a
// schema name that is not [a-z_][a-z0-9_]* of at most 63 characters (it is
// written into SQL as an identifier).
PostgresLocation parse_postgres_uri(const std::string& uri);

// Drops the schema `uri` names (schema=), with the index in it, on the
// primary. Error(kUnavailable) without one.
void drop_postgres_schema(const std::string& uri);

class PostgresStore {
 public:
  // 1: meta, documents, chunks (with a tsvector column), chunk_blobs.
  static constexpr int kSchemaVersion = 1;

  // Connects and creates the schema (on the primary) when it does not
  // exist. With no primary reachable, an existing schema of this version
  // opens for reads; a missing one is Error(kUnavailable). A schema of
  // another version, or one holding tables but no kvrag version, is
  // Error(kFormat) saying what to do.
  explicit PostgresStore(const std::string& uri);
  ~PostgresStore();
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  const std::string& location() const { return location_.display; }
  const std::string& schema() const { return location_.schema; }

  // Runs `body` in one write transaction (BEGIN, then the schema's writer
  // lock); an exception rolls it back and is rethrown. Nested calls are
  // savepoints that roll back only themselves. A statement that fails
  // inside aborts the whole PostgreSQL transaction unless a nested call
  // around it rolls it back: a body that catches such an error and goes on
  // gets Error(kInternal) from its next statement or from the commit.
  void write_transaction(const std::function<void()>& body);

  // One statement that writes: in the calling thread's write transaction,
  // or in a transaction of its own.
  pg::Result write(const std::string& sql, std::initializer_list<pg::Param> params = {});
  // One statement that reads: on the writer's connection inside a write
  // transaction, else on a pooled connection, retried once on a fresh
  // connection when the old one broke (a server restart, a failover).
  pg::Result read(const std::string& sql, std::initializer_list<pg::Param> params = {}) const;

 private:
  class ReadPool;

  pg::Connection& writer();
  bool in_write_transaction() const;
  void begin();
  void commit();
  void rollback_quietly();
  void nested_transaction(const std::function<void()>& body);
  void open_schema();
  void create_schema(pg::Connection& conn);
  // False when the schema is missing or empty; Error(kFormat) when it
  // holds something other than an index of this version.
  bool has_schema(pg::Connection& conn) const;

  PostgresLocation location_;
  std::string writer_lock_;  // SELECT of the schema's transaction advisory lock
  std::unique_ptr<ReadPool> readers_;
  std::recursive_mutex write_mutex_;        // held through a write transaction
  std::unique_ptr<pg::Connection> writer_;  // connected when a primary is first reached
  int depth_ = 0;                           // write transactions open (nested count)
  std::atomic<std::thread::id> owner_;      // the thread inside them
};

}  // namespace kvrag

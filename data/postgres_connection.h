// Thin RAII wrappers over libpq, private to data/ (the PostgreSQL analogue
// of data/sqlite.h). Every result is checked; a failure is an Error carrying
// PostgreSQL's message, its kind read from the SQLSTATE:
//   kInvalidArgument  a broken constraint (23xxx), text that is not UTF-8
//   kUnavailable      no server of the wanted role reachable, a lost
//                     connection (08xxx, 57P0x), a read-only standby (25006)
//   kIo               anything else
// Results are asked for in binary form: bytea comes back without hex
// decoding (a chunk's K/V are megabytes), integers in network byte order.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

struct pg_conn;
struct pg_result;

namespace kvrag::pg {

// One statement parameter: text (PostgreSQL infers its type from the
// statement) or bytes sent as binary bytea.
class Param {
 public:
  Param(std::string text) : text_(std::move(text)) {}     // NOLINT: implicit on purpose
  Param(const char* text) : text_(text) {}                // NOLINT
  Param(int64_t value) : text_(std::to_string(value)) {}  // NOLINT
  // `bytes` must outlive the statement that binds them.
  static Param bytes(std::span<const uint8_t> bytes);

  bool binary() const { return binary_; }
  const char* data() const;
  int length() const;

 private:
  Param() = default;
  std::string text_;
  std::span<const uint8_t> bytes_;
  bool binary_ = false;
};

// A text-form array literal of int64 values ('{1,2,3}'), for "= ANY($1::bigint[])".
std::string int_array(std::span<const int64_t> values);
// A text-form array literal of strings, each quoted and escaped.
std::string text_array(const std::vector<std::string>& values);

class Result {
 public:
  explicit Result(pg_result* result);
  int rows() const;
  bool is_null(int row, int col) const;
  // int2, int4 or int8 column.
  int64_t integer(int row, int col) const;
  // float4 or float8 column.
  double real(int row, int col) const;
  std::string text(int row, int col) const;
  // A view into the result (valid while it lives): bytea as stored.
  std::span<const uint8_t> bytes(int row, int col) const;
  pg_result* handle() const { return result_.get(); }

 private:
  std::unique_ptr<pg_result, void (*)(pg_result*)> result_;
};

// Which server a connection wants: libpq's target_session_attrs.
enum class Role {
  kPrimary,  // read-write: writes
  kAny,      // the first host that answers: reads (the primary when it is up)
};

class Connection {
 public:
  // Connects to the first host of `conninfo` (a postgresql:// URI libpq
  // reads) that plays `role`, with search_path = `schema`. `location` names
  // the store in messages. Error(kUnavailable) when none does.
  Connection(std::string conninfo, std::string schema, std::string location, Role role);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One statement with parameters ($1, $2, ...), prepared at its first use
  // on this connection; binary results.
  Result exec(const std::string& sql, std::initializer_list<Param> params = {});
  // One or more statements without parameters or results (DDL, BEGIN).
  void run(const std::string& sql);

  // Drops the connection and connects again (the same role; another host
  // when the old one is gone). Error(kUnavailable) when none answers.
  void reconnect();
  // The connection is lost: the server went away or the socket broke.
  bool broken() const;
  // Inside a transaction that a failed statement aborted (every statement
  // but ROLLBACK fails until it ends).
  bool in_failed_transaction() const;
  // The server is a hot standby (reads only).
  bool on_standby() const;
  std::chrono::steady_clock::time_point connected_at() const { return connected_at_; }

 private:
  void connect();
  // The name of `sql` prepared on this connection (prepared now if new).
  const std::string& prepared(const std::string& sql, int params);
  [[noreturn]] void throw_error(const pg_result* result) const;

  std::string conninfo_;
  std::string schema_;
  std::string location_;
  Role role_;
  pg_conn* conn_ = nullptr;
  std::chrono::steady_clock::time_point connected_at_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name
};

}  // namespace kvrag::pg

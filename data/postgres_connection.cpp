#include "data/postgres_connection.h"

#include <libpq-fe.h>

#include <bit>
#include <cstring>

#include "core/error.h"

namespace kvrag::pg {
namespace {

// Type OIDs of pg_type.h (server headers are not part of libpq-dev).
constexpr Oid kInt2 = 21;
constexpr Oid kInt4 = 23;
constexpr Oid kInt8 = 20;
constexpr Oid kFloat4 = 700;
constexpr Oid kFloat8 = 701;

// A big-endian (network order) unsigned integer of `n` bytes.
uint64_t read_big_endian(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

ErrorKind kind_of_sqlstate(const std::string& state) {
  if (state.rfind("23", 0) == 0) return ErrorKind::kInvalidArgument;  // integrity constraint
  if (state == "22021" || state == "22P05") return ErrorKind::kInvalidArgument;  // bad encoding
  if (state.rfind("08", 0) == 0) return ErrorKind::kUnavailable;  // connection exception
  if (state == "25006") return ErrorKind::kUnavailable;  // read-only transaction: a standby
  if (state == "57P01" || state == "57P02" || state == "57P03") {
    return ErrorKind::kUnavailable;  // the server shuts down or starts up
  }
  return ErrorKind::kIo;
}

// Notices ("schema already exists, skipping") are not errors; libpq would
// print them on stderr.
void ignore_notice(void*, const char*) {}

}  // namespace

Param Param::bytes(std::span<const uint8_t> bytes) {
  Param p;
  p.bytes_ = bytes;
  p.binary_ = true;
  return p;
}

// Never null: libpq reads a null value as SQL NULL, and no bytes are an
// empty bytea.
const char* Param::data() const {
  if (!binary_) return text_.c_str();
  return bytes_.empty() ? "" : reinterpret_cast<const char*>(bytes_.data());
}

int Param::length() const { return static_cast<int>(binary_ ? bytes_.size() : text_.size()); }

std::string int_array(std::span<const int64_t> values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "}";
}

std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (const char ch : values[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

// ---------------------------------------------------------------- Result

Result::Result(pg_result* result) : result_(result, PQclear) {}

int Result::rows() const { return PQntuples(result_.get()); }

bool Result::is_null(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }

int64_t Result::integer(int row, int col) const {
  const Oid type = PQftype(result_.get(), col);
  const int size = type == kInt8 ? 8 : type == kInt4 ? 4 : type == kInt2 ? 2 : 0;
  KVRAG_CHECK(size > 0, kInternal, "PostgreSQL column ", col, " has type oid ", type,
              ", not an integer");
  if (is_null(row, col)) return 0;
  const uint64_t bits = read_big_endian(PQgetvalue(result_.get(), row, col), size);
  // Sign-extend the narrower integers.
  const int shift = 64 - 8 * size;
  return static_cast<int64_t>(bits << shift) >> shift;
}

double Result::real(int row, int col) const {
  const Oid type = PQftype(result_.get(), col);
  const char* p = PQgetvalue(result_.get(), row, col);
  if (type == kFloat4) return std::bit_cast<float>(static_cast<uint32_t>(read_big_endian(p, 4)));
  KVRAG_CHECK(type == kFloat8, kInternal, "PostgreSQL column ", col, " has type oid ", type,
              ", not a float");
  return std::bit_cast<double>(read_big_endian(p, 8));
}

std::string Result::text(int row, int col) const {
  return {PQgetvalue(result_.get(), row, col),
          static_cast<size_t>(PQgetlength(result_.get(), row, col))};
}

std::span<const uint8_t> Result::bytes(int row, int col) const {
  return {reinterpret_cast<const uint8_t*>(PQgetvalue(result_.get(), row, col)),
          static_cast<size_t>(PQgetlength(result_.get(), row, col))};
}

// ---------------------------------------------------------------- Connection

Connection::Connection(std::string conninfo, std::string schema, std::string location, Role role)
    : conninfo_(std::move(conninfo)),
      schema_(std::move(schema)),
      location_(std::move(location)),
      role_(role) {
  connect();
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

void Connection::connect() {
  const std::string options = "-c search_path=" + schema_;
  // Entries before dbname are defaults the URI may override; those after
  // it override the URI (libpq's rule for an expanded dbname). Without a
  // connect_timeout libpq would wait forever on an unreachable host, and
  // with the system's TCP defaults (keepalive after 2 hours idle, minutes of
  // retransmission) a server that vanished without closing its sockets (a
  // dead machine, a partition) would hold a statement for as long: these
  // give up on it within about 30 seconds.
  const char* keywords[] = {"connect_timeout",  "tcp_user_timeout",
                            "keepalives_idle",  "keepalives_interval",
                            "keepalives_count", "application_name",
                            "dbname",           "target_session_attrs",
                            "options",          nullptr};
  const char* values[] = {"5",
                          "30000",
                          "10",
                          "5",
                          "3",
                          "kvrag",
                          conninfo_.c_str(),
                          role_ == Role::kPrimary ? "read-write" : "any",
                          options.c_str(),
                          nullptr};
  conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    if (role_ == Role::kPrimary) {
      KVRAG_THROW(kUnavailable, location_,
                  ": no PostgreSQL primary accepts writes (reads may still be served by a "
                  "standby): ",
                  message);
    }
    KVRAG_THROW(kUnavailable, location_, ": no PostgreSQL server reachable: ", message);
  }
  PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
  connected_at_ = std::chrono::steady_clock::now();
}

void Connection::reconnect() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
  connect();
}

bool Connection::broken() const { return !conn_ || PQstatus(conn_) == CONNECTION_BAD; }

bool Connection::in_failed_transaction() const {
  return conn_ && PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

bool Connection::on_standby() const {
  const char* standby = conn_ ? PQparameterStatus(conn_, "in_hot_standby") : nullptr;
  return standby && std::strcmp(standby, "on") == 0;
}

Result Connection::exec(const std::string& sql, std::initializer_list<Param> params) {
  KVRAG_CHECK(conn_, kUnavailable, location_, ": not connected to PostgreSQL");
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const Param& p : params) {
    values.push_back(p.data());
    lengths.push_back(p.length());
    formats.push_back(p.binary() ? 1 : 0);
  }
  const std::string& name = prepared(sql, static_cast<int>(values.size()));
  Result result(PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                               lengths.data(), formats.data(), /*resultFormat=*/1));
  const ExecStatusType status = PQresultStatus(result.handle());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    throw_error(result.handle());
  }
  return result;
}

// Parsing and planning cost as much as running the short statements the
// stores send (a lexical search: 1 ms of planning for 1 ms of execution on
// 20,000 chunks), and the stores send the same few statements over and
// over: each is prepared once per connection.
const std::string& Connection::prepared(const std::string& sql, int params) {
  const auto found = prepared_.find(sql);
  if (found != prepared_.end()) return found->second;
  const std::string name = "kvrag_" + std::to_string(prepared_.size());
  const Result result(PQprepare(conn_, name.c_str(), sql.c_str(), params, nullptr));
  if (PQresultStatus(result.handle()) != PGRES_COMMAND_OK) throw_error(result.handle());
  return prepared_.emplace(sql, name).first->second;
}

void Connection::run(const std::string& sql) {
  KVRAG_CHECK(conn_, kUnavailable, location_, ": not connected to PostgreSQL");
  const Result result(PQexec(conn_, sql.c_str()));
  const ExecStatusType status = PQresultStatus(result.handle());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    throw_error(result.handle());
  }
}

void Connection::throw_error(const pg_result* result) const {
  const std::string message =
      trimmed(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (broken()) {
    KVRAG_THROW(kUnavailable, location_, ": lost the connection to PostgreSQL: ", message);
  }
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const ErrorKind kind = kind_of_sqlstate(state ? state : "");
  if (state && std::string(state) == "25P02") {
    KVRAG_THROW(kInternal, location_, ": ", message,
                " (a statement failed earlier in this write transaction and its error was caught; "
                "wrap a write that may fail in a nested write_transaction)");
  }
  kvrag::throw_error(kind, str_cat(location_, ": ", message));
}

}  // namespace kvrag::pg

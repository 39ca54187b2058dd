// What is particular to the PostgreSQL store (data/postgres_store.h); the
// store contract itself is tests/store_conformance.h's, run here on
// PostgreSQL for metadata and blobs (Cluster/StoreConformance.*). The suites
// named Cluster* need the cluster of scripts/cluster.sh (CTest label
// `cluster`) and skip without KVRAG_TEST_POSTGRES; the others need no server.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "data/index_stores.h"
#include "data/postgres_connection.h"
#include "data/postgres_store.h"
#include "tests/fixtures.h"
#include "tests/model_files.h"
#include "tests/store_conformance.h"
#include "tests/store_fixtures.h"

namespace kvrag {
namespace {

using testing::add_document_with_chunks;
using testing::make_blob;
using testing::make_document;
using testing::StoreBackend;
using testing::StoreConformance;
using testing::test_postgres_uri;
using testing::throws_error;
using testing::with_schema;

// ---------------------------------------------------------------- contract

// The schema of a scratch index: the folder's name (kvrag_conformance_PID_N)
// is unique to this process and test, and a valid schema name.
std::string scratch_schema(const std::string& scratch) {
  return std::filesystem::path(scratch).filename().string();
}

// PostgreSQL for metadata and blobs, one fresh schema per test.
StoreBackend postgres() {
  StoreBackend backend;
  backend.name = "Postgres";
  backend.open = [](const std::string& scratch) {
    return open_index_stores(with_schema(test_postgres_uri(), scratch_schema(scratch)));
  };
  if (test_postgres_uri().empty()) {
    backend.unavailable =
        "KVRAG_TEST_POSTGRES is not set (a postgresql:// URI of the cluster scripts/cluster.sh "
        "starts)";
  }
  backend.drop = [](const std::string& scratch) {
    testing::drop_postgres_schema(test_postgres_uri(), scratch_schema(scratch));
  };
  backend.failed_write_leaves_transaction_usable = false;
  backend.stop_words_match = false;
  return backend;
}

INSTANTIATE_TEST_SUITE_P(Cluster, StoreConformance, ::testing::Values(postgres()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------- URIs

TEST(PostgresUri, SplitsKvragsParametersFromLibpqs) {
  const PostgresLocation loc = parse_postgres_uri(
      "postgresql://kvrag:secret@h1:5540,h2:5541/kvrag?schema=idx_1&sslmode=disable&"
      "blobs=redis://r1:7100,r2:7101");
  EXPECT_EQ(loc.conninfo, "postgresql://kvrag:secret@h1:5540,h2:5541/kvrag?sslmode=disable");
  EXPECT_EQ(loc.schema, "idx_1");
  EXPECT_EQ(loc.blobs, "redis://r1:7100,r2:7101");
  EXPECT_EQ(loc.display,
            "postgresql://kvrag@h1:5540,h2:5541/kvrag?schema=idx_1&sslmode=disable&"
            "blobs=redis://r1:7100,r2:7101");

  const PostgresLocation plain = parse_postgres_uri("postgres://kvrag@h1/kvrag");
  EXPECT_EQ(plain.conninfo, "postgres://kvrag@h1/kvrag");
  EXPECT_EQ(plain.schema, kDefaultPostgresSchema);
  EXPECT_TRUE(plain.blobs.empty());
  EXPECT_FALSE(is_postgres_uri("/srv/index/store.sqlite"));
}

// The schema name is written into SQL as an identifier: only plain names.
TEST(PostgresUri, RejectsSchemaNamesThatAreNotPlainIdentifiers) {
  for (const std::string schema : {"Idx", "1idx", "a-b", "x;drop", "\"q\"", ""}) {
    EXPECT_TRUE(throws_error([&] { parse_postgres_uri("postgresql://h/db?schema=" + schema); },
                             ErrorKind::kInvalidArgument, {"schema '" + schema + "'"}))
        << schema;
  }
  EXPECT_TRUE(throws_error([&] { parse_postgres_uri("mysql://h/db"); }, ErrorKind::kInvalidArgument,
                           {"not a postgresql:// URI"}));
}

TEST(PostgresUri, TheBlobStoresOptionsArePercentEncoded) {
  const PostgresLocation loc =
      parse_postgres_uri("postgresql://h/db?blobs=redis://r1:7100,r2:7101%3Fprefix=idx");
  EXPECT_EQ(loc.blobs, "redis://r1:7100,r2:7101?prefix=idx");
}

// Checked before any connection is tried: no server listens on port 1.
TEST(PostgresUri, ABlobStoreThatIsNotARedisClusterIsRefused) {
  EXPECT_TRUE(throws_error(
      [&] { open_index_stores("postgresql://kvrag@127.0.0.1:1/kvrag?blobs=ftp://h"); },
      ErrorKind::kInvalidArgument, {"ftp://h"}));
}

TEST(PostgresUri, NoServerIsUnavailable) {
  EXPECT_TRUE(throws_error([&] { open_index_stores("postgresql://kvrag@127.0.0.1:1/kvrag"); },
                           ErrorKind::kUnavailable, {"127.0.0.1:1", "no PostgreSQL server"}));
}

// ---------------------------------------------------------------- cluster

// The hosts of a libpq URI (host:port, in order).
std::vector<std::string> uri_hosts(const std::string& uri) {
  const size_t start = uri.find("://") + 3;
  const size_t slash = uri.find('/', start);
  size_t at = uri.rfind('@', slash);
  at = (at == std::string::npos || at < start) ? start : at + 1;
  std::vector<std::string> hosts;
  std::string list = uri.substr(at, slash - at);
  for (size_t comma; (comma = list.find(',')) != std::string::npos; list.erase(0, comma + 1)) {
    hosts.push_back(list.substr(0, comma));
  }
  hosts.push_back(list);
  return hosts;
}

// `uri` addressing only `host`.
std::string single_host(const std::string& uri, const std::string& host) {
  const size_t start = uri.find("://") + 3;
  const size_t slash = uri.find('/', start);
  size_t at = uri.rfind('@', slash);
  at = (at == std::string::npos || at < start) ? start : at + 1;
  return uri.substr(0, at) + host + uri.substr(slash);
}

pg::Connection connect(const std::string& uri, pg::Role role = pg::Role::kAny) {
  const PostgresLocation loc = parse_postgres_uri(uri);
  return pg::Connection(loc.conninfo, "public", loc.display, role);
}

class ClusterPostgres : public ::testing::Test {
 protected:
  void SetUp() override {
    uri_ = test_postgres_uri();
    if (uri_.empty())
      KVRAG_SKIP_OR_FAIL(
          "KVRAG_TEST_POSTGRES is not set (a postgresql:// URI of the cluster scripts/cluster.sh "
          "starts)");
  }

  void TearDown() override {
    for (const std::string& schema : schemas_) testing::drop_postgres_schema(uri_, schema);
  }

  // A schema name of its own for this test, dropped after it.
  std::string schema_name() {
    schemas_.push_back("kvrag_pgtest_" + std::to_string(::getpid()) + "_" +
                       std::to_string(schemas_.size()));
    return schemas_.back();
  }
  // schema_name(), emptied of what a crashed run with this pid left.
  std::string fresh_schema() {
    const std::string schema = schema_name();
    testing::drop_postgres_schema(uri_, schema);
    return schema;
  }

  IndexStores open(const std::string& schema) const {
    return open_index_stores(with_schema(uri_, schema));
  }

  std::string uri_;
  std::vector<std::string> schemas_;
};

TEST_F(ClusterPostgres, SchemasIsolateIndexes) {
  const std::string a_schema = fresh_schema();
  IndexStores a = open(a_schema);
  IndexStores b = open(fresh_schema());
  const int64_t in_a = add_document_with_chunks(*a.metadata, *a.blobs, "same", {"Aldan river."}, 1);
  const int64_t in_b = add_document_with_chunks(*b.metadata, *b.blobs, "same", {"Lena delta."}, 5);
  EXPECT_EQ(in_a, in_b) << "each schema has its own id sequences";
  a.metadata->set_meta("model", "a");
  a.metadata->write_transaction([&] { a.metadata->advance_generation(); });

  EXPECT_EQ(b.metadata->search_lexical("Aldan", 5).size(), 0u);
  EXPECT_EQ(b.metadata->search_lexical("Lena", 5).size(), 1u);
  EXPECT_FALSE(b.metadata->meta("model").has_value());
  EXPECT_EQ(b.metadata->generation(), 0);
  EXPECT_EQ(b.blobs->get(b.metadata->document_chunks(in_b)[0].id), make_blob(5).bytes);

  a = {};
  testing::drop_postgres_schema(uri_, a_schema);
  EXPECT_EQ(b.metadata->stats().documents, 1);
}

// A schema that holds something else is refused, saying what to do, and
// so is an index of another schema version.
TEST_F(ClusterPostgres, ForeignSchemaOrOtherVersionIsAFormatError) {
  const std::string foreign = fresh_schema();
  {
    pg::Connection conn = connect(uri_, pg::Role::kPrimary);
    conn.run("CREATE SCHEMA " + foreign + "; CREATE TABLE " + foreign + ".orders (id int)");
  }
  EXPECT_TRUE(throws_error([&] { open(foreign); }, ErrorKind::kFormat,
                           {"schema " + foreign, "not a kvrag index", "schema="}));

  const std::string older = fresh_schema();
  open(older).metadata->set_meta("schema_version", "99");
  EXPECT_TRUE(throws_error([&] { open(older); }, ErrorKind::kFormat,
                           {"store schema version 99", "this build reads version 1", "rebuild"}));
}

// Two stores are two sets of connections, as two serving nodes would have:
// their write transactions take turns, and the generation each advances is
// the one it read plus one, never a value the other took.
TEST_F(ClusterPostgres, ConcurrentWritersAdvanceTheGenerationByOneEach) {
  const std::string schema = fresh_schema();
  IndexStores first = open(schema);
  IndexStores second = open(schema);
  constexpr int kWrites = 20;
  std::vector<int64_t> generations[2];
  const auto writer = [&](IndexStores& stores, int w) {
    for (int i = 0; i < kWrites; ++i) {
      stores.metadata->write_transaction([&] {
        const int64_t before = stores.metadata->generation();
        const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i);
        stores.metadata->add_document(make_document(id, "text of " + id), "h");
        const int64_t after = stores.metadata->advance_generation();
        EXPECT_EQ(after, before + 1);
        generations[w].push_back(after);
      });
    }
  };
  std::thread one(writer, std::ref(first), 0);
  std::thread two(writer, std::ref(second), 1);
  one.join();
  two.join();

  std::vector<int64_t> all = generations[0];
  all.insert(all.end(), generations[1].begin(), generations[1].end());
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(2 * kWrites);
  for (int i = 0; i < 2 * kWrites; ++i) expected[i] = i + 1;
  EXPECT_EQ(all, expected);
  EXPECT_EQ(first.metadata->generation(), 2 * kWrites);
  EXPECT_EQ(second.metadata->stats().documents, 2 * kWrites);
}

// Query text reaches PostgreSQL only as words in an array parameter, each
// read by plainto_tsquery: neither SQL nor tsquery syntax does anything.
TEST_F(ClusterPostgres, LexicalSearchTakesPunctuationAndSqlAsPlainText) {
  IndexStores stores = open(fresh_schema());
  const int64_t doc =
      add_document_with_chunks(*stores.metadata, *stores.blobs, "d1", {"Copper and tin."}, 1);
  add_document_with_chunks(*stores.metadata, *stores.blobs, "d2", {"Salt flats of Quor."}, 5);
  const int64_t copper = stores.metadata->document_chunks(doc)[0].id;
  for (const std::string query :
       {"copper'; DROP TABLE chunks; --", "copper'); DELETE FROM documents; --", "copper\\' OR 1=1",
        "$1 $2 copper", "copper:* | !tin", "copper <-> tin", "copper & tin", "(copper", "'copper'",
        "\xff\xfe copper", "caf\xc3\xa9 \xe2\x80\x94 copper", "copper%_"}) {
    std::vector<std::pair<int64_t, double>> hits;
    ASSERT_NO_THROW(hits = stores.metadata->search_lexical(query, 5)) << query;
    ASSERT_FALSE(hits.empty()) << query;
    EXPECT_EQ(hits[0].first, copper) << query;
  }
  EXPECT_TRUE(stores.metadata->search_lexical("'; -- \\ $$ :* | ! <->", 5).empty());
  EXPECT_TRUE(stores.metadata->search_lexical("'; DROP TABLE chunks; --", 5).empty());
  EXPECT_EQ(stores.metadata->stats().documents, 2);
  EXPECT_EQ(stores.metadata->stats().chunks, 2);
}

// A connection the server drops (a restart, a failover, an idle timeout)
// is replaced: a read is retried once on a fresh one, and a write
// transaction that had not begun begins on a fresh one.
TEST_F(ClusterPostgres, DroppedConnectionsAreReplaced) {
  const std::string schema = fresh_schema();
  const std::string application = "kvrag_test_" + std::to_string(::getpid());
  IndexStores stores =
      open_index_stores(with_schema(uri_, schema) + "&application_name=" + application);
  const int64_t doc =
      add_document_with_chunks(*stores.metadata, *stores.blobs, "d1", {"Copper mines."}, 1);
  EXPECT_EQ(stores.metadata->document(doc).external_id, "d1");

  pg::Connection admin = connect(uri_, pg::Role::kPrimary);
  const pg::Result killed = admin.exec(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
      {application});
  EXPECT_GE(killed.integer(0, 0), 2) << "the store's writer and reader";

  EXPECT_EQ(stores.metadata->document(doc).external_id, "d1");
  add_document_with_chunks(*stores.metadata, *stores.blobs, "d2", {"Salt flats."}, 5);
  EXPECT_EQ(stores.metadata->stats().documents, 2);
}

// A writer whose lock wait is cancelled on a live connection (a
// statement_timeout does the same) writes again afterwards: the aborted
// BEGIN was rolled back, or every later BEGIN on that connection failed.
TEST_F(ClusterPostgres, ACancelledLockWaitLeavesTheWriterUsable) {
  const std::string schema = fresh_schema();
  const std::string application = "kvrag_cancel_" + std::to_string(::getpid());
  IndexStores waiting =
      open_index_stores(with_schema(uri_, schema) + "&application_name=" + application);
  IndexStores holding = open(schema);
  add_document_with_chunks(*waiting.metadata, *waiting.blobs, "d1", {"Copper mines."}, 1);

  std::atomic<bool> release{false};
  std::atomic<bool> held{false};
  std::thread holder([&] {
    holding.metadata->write_transaction([&] {
      held = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    });
  });
  while (!held) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread cancel([&] {
    pg::Connection admin = connect(uri_, pg::Role::kPrimary);
    for (int i = 0; i < 1000; ++i) {
      const pg::Result cancelled = admin.exec(
          "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 "
          "AND wait_event_type = 'Lock'",
          {application});
      if (cancelled.integer(0, 0) > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  EXPECT_THROW(waiting.metadata->write_transaction([] {}), Error);
  cancel.join();
  release = true;
  holder.join();

  add_document_with_chunks(*waiting.metadata, *waiting.blobs, "d2", {"Salt flats."}, 5);
  EXPECT_EQ(waiting.metadata->stats().documents, 2);
}

// The primary of the test cluster, found through the URI: stopped by a
// test with pg_ctl (as the user that owns its data folder) and started
// again when the test ends, however it ends.
class PrimaryServer {
 public:
  explicit PrimaryServer(const std::string& uri) {
    for (const std::string& host : uri_hosts(uri)) {
      try {
        pg::Connection conn = connect(single_host(uri, host), pg::Role::kPrimary);
        data_dir_ = conn.exec("SELECT current_setting('data_directory')").text(0, 0);
        uri_ = single_host(uri, host);
        break;
      } catch (const Error&) {
      }
    }
    struct stat st {};
    if (!data_dir_.empty() && ::stat(data_dir_.c_str(), &st) == 0) {
      const passwd* pw = ::getpwuid(st.st_uid);
      owner_ = pw ? pw->pw_name : "";
    }
  }
  ~PrimaryServer() {
    if (stopped_) start();
  }

  // Why the test cannot stop the primary here, empty when it can.
  std::string unavailable() const {
    if (data_dir_.empty()) return "no primary, or its data_directory cannot be read";
    if (owner_.empty()) return "the primary's data folder " + data_dir_ + " is not on this machine";
    return "";
  }

  void stop() {
    stopped_ = true;
    pg_ctl("-m fast -w stop");
  }

  // Starts it and waits until it accepts writes again.
  void start() {
    pg_ctl("-w -l " + (std::filesystem::path(data_dir_).parent_path() / "primary.log").string() +
           " start");
    stopped_ = false;
    for (int i = 0; i < 120; ++i) {
      try {
        connect(uri_, pg::Role::kPrimary);
        return;
      } catch (const Error&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    }
    ADD_FAILURE() << "the primary " << uri_ << " did not come back";
  }

 private:
  void pg_ctl(const std::string& args) const {
    const std::string pg_ctl = "/usr/lib/postgresql/15/bin/pg_ctl -D " + data_dir_ + " " + args;
    const std::string command =
        (::geteuid() == 0 ? "runuser -u " + owner_ + " -- " : std::string()) + pg_ctl +
        " >/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }

  std::string uri_;
  std::string data_dir_;
  std::string owner_;
  bool stopped_ = false;
};

// Waits until every standby named in `uri` has replayed what the primary
// has written so far.
void wait_for_standbys(const std::string& uri) {
  pg::Connection primary = connect(uri, pg::Role::kPrimary);
  const std::string lsn = primary.exec("SELECT pg_current_wal_lsn()::text").text(0, 0);
  for (const std::string& host : uri_hosts(uri)) {
    pg::Connection conn = connect(single_host(uri, host));
    if (!conn.on_standby()) continue;
    for (int i = 0;; ++i) {
      const auto caught_up =
          conn.exec("SELECT (pg_last_wal_replay_lsn() >= $1::pg_lsn)::int", {lsn}).integer(0, 0);
      if (caught_up) break;
      ASSERT_LT(i, 200) << host << " did not replay up to " << lsn;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

TEST_F(ClusterPostgres, PrimaryStoppedReadsGoOnFromTheStandbyAndWritesAreUnavailable) {
  PrimaryServer primary(uri_);
  if (!primary.unavailable().empty()) GTEST_SKIP() << primary.unavailable();
  const std::string schema = fresh_schema();
  IndexStores stores = open(schema);
  const int64_t doc = add_document_with_chunks(*stores.metadata, *stores.blobs, "d1",
                                               {"Copper mines of Tarsk."}, 1);
  const int64_t chunk = stores.metadata->document_chunks(doc)[0].id;
  stores.metadata->write_transaction([&] { stores.metadata->advance_generation(); });
  wait_for_standbys(uri_);

  primary.stop();
  EXPECT_EQ(stores.metadata->document(doc).external_id, "d1");
  EXPECT_EQ(stores.metadata->search_lexical("copper", 5).size(), 1u);
  EXPECT_EQ(stores.blobs->get(chunk), make_blob(1).bytes);
  EXPECT_EQ(stores.metadata->generation(), 1);
  const std::vector<std::string> no_primary = {"no PostgreSQL primary accepts writes"};
  EXPECT_TRUE(throws_error(
      [&] {
        add_document_with_chunks(*stores.metadata, *stores.blobs, "d2", {"Salt of Quor."}, 5);
      },
      ErrorKind::kUnavailable, no_primary));
  EXPECT_TRUE(throws_error([&] { stores.metadata->set_meta("model", "x"); },
                           ErrorKind::kUnavailable, no_primary));
  // An existing index opens for reading; a new one cannot be created.
  EXPECT_EQ(open(schema).metadata->document(doc).external_id, "d1");
  EXPECT_TRUE(throws_error([&] { open(schema_name()); }, ErrorKind::kUnavailable, no_primary));

  primary.start();
  add_document_with_chunks(*stores.metadata, *stores.blobs, "d3", {"Wells of Quor."}, 9);
  EXPECT_EQ(stores.metadata->stats().documents, 2);
  EXPECT_EQ(stores.metadata->search_lexical("Quor", 5).size(), 1u);
}

}  // namespace
}  // namespace kvrag

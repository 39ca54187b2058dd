// The Redis Cluster blob store (data/redis_cluster_blob_store.h) and its
// cluster client (data/redis_cluster.h). Key slots and URI parsing run
// anywhere; the rest needs a cluster, named by KVRAG_TEST_REDIS
// (redis://host:port,...: the blobs= part of `scripts/cluster.sh up`'s last
// line, which scripts/test.sh exports), and skips without one:
//   - the store contract (tests/store_conformance.h) on SQLite metadata in
//     the scratch folder and the blobs in the cluster;
//   - a slot moved to another master (MOVED) and a slot mid-migration (ASK,
//     TRYAGAIN), made with CLUSTER SETSLOT and MIGRATE and then undone;
//   - a master killed by pid while reads and writes go on: its replica takes
//     over and no call fails; the node is restarted and made master again.
// These tests change the cluster's topology for a while: CTest runs them one
// at a time (RESOURCE_LOCK in tests/CMakeLists.txt).
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/error.h"
#include "data/index_stores.h"
#include "data/redis_cluster.h"
#include "data/redis_cluster_blob_store.h"
#include "tests/model_files.h"
#include "tests/store_conformance.h"
#include "tests/store_fixtures.h"

namespace kvrag {
namespace {

using namespace std::chrono_literals;
using redis::Connection;
using redis::NodeAddress;
using redis::Reply;
using testing::make_blob;
using testing::StoreBackend;
using testing::StoreConformance;
using testing::throws_error;

constexpr char kNoCluster[] =
    "KVRAG_TEST_REDIS is not set: run `scripts/cluster.sh up` and export its blobs= URI, "
    "e.g. KVRAG_TEST_REDIS=redis://127.0.0.1:7100,127.0.0.1:7101";

std::optional<std::string> cluster_uri() {
  const char* uri = std::getenv("KVRAG_TEST_REDIS");
  if (uri == nullptr || *uri == '\0') return std::nullopt;
  return uri;
}

// ---------------------------------------------------------------- anywhere

TEST(RedisKeySlot, FollowsTheClusterSpec) {
  EXPECT_EQ(redis::crc16("123456789"), 0x31C3);  // the spec's check value
  EXPECT_EQ(redis::key_slot("123456789"), 0x31C3 % redis::kSlots);
  EXPECT_EQ(redis::key_slot("foo"), 12182);  // CLUSTER KEYSLOT foo
  EXPECT_EQ(redis::key_slot(""), 0);
  // Hash tags: the bytes between the first '{' and the next '}', if any.
  EXPECT_EQ(redis::key_slot("{user1000}.following"), redis::key_slot("user1000"));
  EXPECT_EQ(redis::key_slot("foo{bar}{zap}"), redis::key_slot("bar"));
  EXPECT_EQ(redis::key_slot("foo{{bar}}zap"), redis::key_slot("{bar"));
  EXPECT_EQ(redis::key_slot("foo{}{bar}"), redis::key_slot("foo{}{bar}"));
  EXPECT_NE(redis::key_slot("foo{}{bar}"), redis::key_slot("bar"));
  EXPECT_EQ(redis::key_slot("foo{bar"), redis::key_slot("foo{bar"));
  EXPECT_NE(redis::key_slot("foo{bar"), redis::key_slot("bar"));
}

TEST(RedisClusterUri, ParsesNodesAndParameters) {
  const RedisClusterBlobStoreOptions options =
      parse_redis_cluster_uri("redis://127.0.0.1:7100,localhost:7101?prefix=idx-1&replica_reads=1");
  ASSERT_EQ(options.cluster.seeds.size(), 2u);
  EXPECT_EQ(options.cluster.seeds[0].name(), "127.0.0.1:7100");
  EXPECT_EQ(options.cluster.seeds[1].name(), "localhost:7101");
  EXPECT_EQ(options.prefix, "idx-1");
  EXPECT_TRUE(options.cluster.read_from_replicas);
  const RedisClusterBlobStoreOptions plain = parse_redis_cluster_uri("redis://h:1");
  EXPECT_EQ(plain.prefix, "kvrag");
  EXPECT_FALSE(plain.cluster.read_from_replicas);
}

TEST(RedisClusterUri, RejectsWhatItCannotUse) {
  const auto rejects = [](const std::string& uri, const std::string& part) {
    return throws_error([&] { parse_redis_cluster_uri(uri); }, ErrorKind::kInvalidArgument, {part});
  };
  EXPECT_TRUE(rejects("http://h:1", "a redis URI starts with redis://"));
  EXPECT_TRUE(rejects("redis://", "a redis node address is host:port, got ''"));
  EXPECT_TRUE(rejects("redis://h", "got 'h'"));
  EXPECT_TRUE(rejects("redis://h:0", "got 'h:0'"));
  EXPECT_TRUE(rejects("redis://h:1,,h:2", "got ''"));
  EXPECT_TRUE(rejects("redis://h:1?colour=blue", "unknown parameter 'colour'"));
  EXPECT_TRUE(rejects("redis://h:1?prefix", "a parameter is name=value, got 'prefix'"));
  EXPECT_TRUE(rejects("redis://h:1?replica_reads=yes", "replica_reads must be 0, 1"));
  EXPECT_TRUE(throws_error([] { open_blob_store("memcached://h:1"); }, ErrorKind::kInvalidArgument,
                           {"a blob store URI is redis://"}));
}

TEST(RedisClusterBlobStore, RejectsAPrefixThatCouldFormAHashTagOrPattern) {
  for (const std::string& prefix :
       std::vector<std::string>{"", "a{b}", "a*", "a:b", std::string(129, 'a')}) {
    RedisClusterBlobStoreOptions options;
    options.cluster.seeds = {{"127.0.0.1", 1}};
    options.prefix = prefix;
    EXPECT_TRUE(throws_error([&] { RedisClusterBlobStore store(options); },
                             ErrorKind::kInvalidArgument, {"the prefix must be"}))
        << prefix;
  }
}

TEST(RedisClusterBlobStore, NoReachableSeedIsUnavailable) {
  RedisClusterBlobStoreOptions options;
  options.cluster.seeds = {{"127.0.0.1", 1}};  // nothing listens on port 1
  EXPECT_TRUE(throws_error([&] { RedisClusterBlobStore store(options); }, ErrorKind::kUnavailable,
                           {"no seed node gave a slot map", "127.0.0.1:1"}));
}

// ---------------------------------------------------------------- conformance

// The namespace of a scratch folder: its name, unique per process and test.
std::string scratch_prefix(const std::string& scratch) {
  return std::filesystem::path(scratch).filename().string();
}

RedisClusterBlobStoreOptions scratch_options(const std::string& scratch) {
  RedisClusterBlobStoreOptions options = parse_redis_cluster_uri(*cluster_uri());
  options.prefix = scratch_prefix(scratch);
  return options;
}

StoreBackend sqlite_metadata_redis_blobs() {
  const std::optional<std::string> uri = cluster_uri();
  return {.name = "SqliteMetadataRedisBlobs",
          .open =
              [uri](const std::string& scratch) {
                IndexStores stores = open_index_stores(scratch + "/store.sqlite");
                const char separator = uri->find('?') == std::string::npos ? '?' : '&';
                stores.blobs =
                    open_blob_store(*uri + separator + "prefix=" + scratch_prefix(scratch));
                return stores;
              },
          .blobs_in_metadata_database = false,
          .unavailable = uri ? "" : kNoCluster,
          .drop =
              [](const std::string& scratch) {
                RedisClusterBlobStore(scratch_options(scratch)).drop();
              }};
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformance, ::testing::Values(sqlite_metadata_redis_blobs()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------- administration

// Runs one command on `node` on a connection of its own; an error reply
// fails the test's step by throwing.
Reply call(const NodeAddress& node, const std::vector<std::string>& args) {
  Connection connection(node, {});
  const std::vector<std::string_view> views(args.begin(), args.end());
  Reply reply = connection.command(views);
  if (const auto error = redis::error_text(*reply)) {
    throw std::runtime_error(str_cat(node.name(), " ", args[0], " ", args[1], ": ", *error));
  }
  return reply;
}

std::string text_of(const Reply& reply) { return {reply->str, reply->len}; }

// The value of `field` in INFO `section` of `node`.
std::string info_field(const NodeAddress& node, const std::string& section,
                       const std::string& field) {
  const std::string info = text_of(call(node, {"INFO", section}));
  const size_t at = info.find(field + ":");
  if (at == std::string::npos) return "";
  const size_t start = at + field.size() + 1;
  return info.substr(start, info.find('\r', start) - start);
}

struct ClusterNode {
  NodeAddress address;
  std::string id;
};

ClusterNode slots_node(const redisReply& node) {
  return {{std::string(node.element[0]->str, node.element[0]->len),
           static_cast<int>(node.element[1]->integer)},
          std::string(node.element[2]->str, node.element[2]->len)};
}

// The master of `slot`, as `asked` sees it.
ClusterNode slot_master(const NodeAddress& asked, int slot) {
  const Reply slots = call(asked, {"CLUSTER", "SLOTS"});
  for (size_t r = 0; r < slots->elements; ++r) {
    const redisReply& range = *slots->element[r];
    if (range.element[0]->integer <= slot && slot <= range.element[1]->integer) {
      return slots_node(*range.element[2]);
    }
  }
  throw std::runtime_error(str_cat("no master serves slot ", slot));
}

std::vector<ClusterNode> masters(const NodeAddress& asked) {
  std::vector<ClusterNode> found;
  const Reply slots = call(asked, {"CLUSTER", "SLOTS"});
  for (size_t r = 0; r < slots->elements; ++r) {
    const ClusterNode master = slots_node(*slots->element[r]->element[2]);
    bool known = false;
    for (const ClusterNode& m : found) known = known || m.id == master.id;
    if (!known) found.push_back(master);
  }
  return found;
}

ClusterNode other_master(const NodeAddress& asked, const ClusterNode& than) {
  for (const ClusterNode& master : masters(asked)) {
    if (master.id != than.id) return master;
  }
  throw std::runtime_error("the cluster has one master");
}

// Polls `done` every 100 ms for up to `limit`; false if it never held.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    try {
      if (done()) return true;
    } catch (const std::exception&) {
      // a node restarting or not answering yet: poll again
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

bool cluster_state_ok(const NodeAddress& node) {
  return text_of(call(node, {"CLUSTER", "INFO"})).find("cluster_state:ok") != std::string::npos;
}

// As `asked` sees it: no node failing, and every master serving slots (a
// master demoted by a failover has become a replica again).
bool topology_settled(const NodeAddress& asked) {
  const std::string nodes = text_of(call(asked, {"CLUSTER", "NODES"}));
  size_t start = 0;
  for (size_t end; (end = nodes.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = nodes.substr(start, end - start);
    if (line.find("fail") != std::string::npos) return false;
    const bool master = line.find("master") != std::string::npos;
    const bool serves_slots = line.find(" connected ") != std::string::npos;
    if (master && !serves_slots) return false;
  }
  return true;
}

// The steps of moving a slot, as `redis-cli --cluster reshard` takes them.
void begin_migration(int slot, const ClusterNode& from, const ClusterNode& to) {
  call(to.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", from.id});
  call(from.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", to.id});
}

void migrate_keys(const ClusterNode& from, const ClusterNode& to,
                  const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  std::vector<std::string> args = {
      "MIGRATE", to.address.host, std::to_string(to.address.port), "", "0", "5000", "KEYS"};
  args.insert(args.end(), keys.begin(), keys.end());
  call(from.address, args);
}

std::vector<std::string> keys_in_slot(const ClusterNode& node, int slot) {
  const Reply keys = call(node.address, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "1000"});
  std::vector<std::string> found;
  for (size_t i = 0; i < keys->elements; ++i) {
    found.emplace_back(keys->element[i]->str, keys->element[i]->len);
  }
  return found;
}

// Migrates what is left of the slot and gives it to `to`, on every master.
void finish_migration(int slot, const ClusterNode& from, const ClusterNode& to) {
  migrate_keys(from, to, keys_in_slot(from, slot));
  call(to.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id});
  call(from.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id});
  for (const ClusterNode& master : masters(to.address)) {
    call(master.address, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id});
  }
}

void move_slot(int slot, const ClusterNode& from, const ClusterNode& to) {
  begin_migration(slot, from, to);
  finish_migration(slot, from, to);
}

int64_t count_keys_in_slot(const ClusterNode& node, int slot) {
  return call(node.address, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)})->integer;
}

// ---------------------------------------------------------------- on a cluster

// A blob of `size` random bytes (seeded by `seed`) and 64 tokens.
MemoryBlob random_blob(size_t size, int seed) {
  MemoryBlob blob{std::vector<uint8_t>(size), 64};
  std::mt19937 random(seed);
  for (uint8_t& byte : blob.bytes) byte = static_cast<uint8_t>(random());
  return blob;
}

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<std::string> uri = cluster_uri();
    if (!uri) GTEST_SKIP() << kNoCluster;
    options_ = parse_redis_cluster_uri(*uri);
    options_.prefix = "kvrag_cluster_test_" + std::to_string(::getpid());
    seed_ = options_.cluster.seeds.front();
    store_ = std::make_unique<RedisClusterBlobStore>(options_);
    store_->drop();
  }

  void TearDown() override {
    if (store_) store_->drop();
  }

  // The slot of the blobs of bucket `bucket` (chunk ids bucket + n · kBuckets).
  static int bucket_slot(int bucket) { return redis::key_slot("{" + std::to_string(bucket) + "}"); }
  static int64_t id_in_bucket(int bucket, int n) {
    return bucket + int64_t{n} * RedisClusterBlobStore::kBuckets;
  }

  RedisClusterBlobStoreOptions options_;
  NodeAddress seed_;
  std::unique_ptr<RedisClusterBlobStore> store_;
};

TEST_F(RedisClusterTest, BlobsSpreadOverEveryMaster) {
  std::vector<int64_t> ids;
  for (int64_t id = 1; id <= 64; ++id) {
    store_->put(id, make_blob(static_cast<int>(id)));
    ids.push_back(id);
  }
  const auto got = store_->get_many(ids);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(got[i], make_blob(static_cast<int>(ids[i])).bytes) << ids[i];
  }
  for (const ClusterNode& master : masters(seed_)) {
    const std::string pattern = options_.prefix + ":blob:*";
    const Reply scan = call(master.address, {"SCAN", "0", "MATCH", pattern, "COUNT", "10000"});
    EXPECT_GT(scan->element[1]->elements, 0u) << master.address.name() << " holds no blob";
  }
  EXPECT_EQ(store_->stats().bytes, 64 * 5);
  EXPECT_EQ(store_->stats().tokens, 64 * 3);
}

// Calls from several threads share one connection per node: each call
// must get its own replies, and none may wait forever on a node another
// call holds (nodes are locked in one order).
TEST_F(RedisClusterTest, ConcurrentCallsEachGetTheirOwnBlobs) {
  constexpr int kBlobs = 60;
  std::vector<MemoryBlob> blobs;
  int64_t bytes = 0;
  for (int id = 1; id <= kBlobs; ++id) {
    blobs.push_back(random_blob(1000 + 37 * id, id));  // a size of its own
    store_->put(id, blobs.back());
    bytes += static_cast<int64_t>(blobs.back().bytes.size());
  }
  std::atomic<int> wrong = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(t);
      for (int call = 0; call < 100; ++call) {
        std::vector<int64_t> ids;
        for (int i = 0; i < 8; ++i) ids.push_back(1 + static_cast<int64_t>(random() % kBlobs));
        const auto got = store_->get_many(ids);
        for (size_t i = 0; i < ids.size(); ++i) {
          if (got[i] != blobs[ids[i] - 1].bytes) ++wrong;
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (int call = 0; call < 100; ++call) {
      const int64_t id = 1 + call % kBlobs;
      store_->put(id, blobs[id - 1]);  // the same bytes again: readers see no change
    }
  });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(store_->stats().bytes, bytes);
  EXPECT_EQ(store_->stats().tokens, 64 * kBlobs);
}

TEST_F(RedisClusterTest, ReplicaReadsSeeTheBlobsOnceReplicated) {
  RedisClusterBlobStoreOptions replica_options = options_;
  replica_options.cluster.read_from_replicas = true;
  const RedisClusterBlobStore replicas(replica_options);
  store_->put(7, make_blob(7));
  // Replication is asynchronous: a replica read may lag the write a little.
  EXPECT_TRUE(wait_until([&] { return replicas.get(7) == make_blob(7).bytes; }, 5s));
  EXPECT_FALSE(replicas.get(8).has_value());
}

TEST_F(RedisClusterTest, AKeyHoldingSomethingElseIsAFormatError) {
  const std::string key = options_.prefix + ":blob:{9}:9";
  call(slot_master(seed_, redis::key_slot(key)).address, {"SET", key, "not a hash"});
  EXPECT_TRUE(throws_error([&] { store_->get(9); }, ErrorKind::kFormat, {key, "WRONGTYPE"}));
}

// The slot moves to another master behind the store's back: its map is
// stale, the old owner answers MOVED, and every call still lands.
TEST_F(RedisClusterTest, FollowsAMovedSlot) {
  constexpr int kBucket = 77;
  const int slot = bucket_slot(kBucket);
  const MemoryBlob large = random_blob(98 * 1024, 1);  // a T5-base hidden-f16 chunk
  store_->put(id_in_bucket(kBucket, 0), make_blob(1));
  store_->put(id_in_bucket(kBucket, 1), large);
  const ClusterNode from = slot_master(seed_, slot);
  const ClusterNode to = other_master(seed_, from);

  move_slot(slot, from, to);
  EXPECT_EQ(count_keys_in_slot(from, slot), 0);
  const auto got =
      store_->get_many(std::vector<int64_t>{id_in_bucket(kBucket, 1), 5, id_in_bucket(kBucket, 0)});
  EXPECT_TRUE(got[0] == large.bytes);
  EXPECT_FALSE(got[1].has_value());
  EXPECT_EQ(got[2], make_blob(1).bytes);
  store_->put(id_in_bucket(kBucket, 2), make_blob(2));
  store_->remove(std::vector<int64_t>{id_in_bucket(kBucket, 0)});
  EXPECT_EQ(count_keys_in_slot(to, slot), 3);  // two blobs and the bucket's counters
  EXPECT_EQ(store_->stats().bytes, static_cast<int64_t>(large.bytes.size()) + 5);

  move_slot(slot, to, from);
  EXPECT_EQ(store_->get(id_in_bucket(kBucket, 2)), make_blob(2).bytes);
}

// Mid-migration a key may be on either side: the source answers ASK for
// what it no longer holds, and TRYAGAIN for a script whose keys are split;
// reads follow the ASK, and a put waits out the migration.
TEST_F(RedisClusterTest, FollowsAskAndWaitsOutAMigration) {
  constexpr int kBucket = 78;
  const int slot = bucket_slot(kBucket);
  const int64_t moved = id_in_bucket(kBucket, 0);
  const int64_t stayed = id_in_bucket(kBucket, 1);
  const int64_t missing = id_in_bucket(kBucket, 2);
  const int64_t added = id_in_bucket(kBucket, 3);
  store_->put(moved, make_blob(1));
  store_->put(stayed, make_blob(2));
  const ClusterNode from = slot_master(seed_, slot);
  const ClusterNode to = other_master(seed_, from);

  // From here on nothing may throw past the migration's end: a slot left
  // half-migrated would redirect every later test.
  begin_migration(slot, from, to);
  EXPECT_NO_THROW({
    migrate_keys(from, to, {options_.prefix + ":blob:{78}:" + std::to_string(moved)});
    EXPECT_EQ(count_keys_in_slot(to, slot), 1);
    const auto got = store_->get_many(std::vector<int64_t>{moved, stayed, missing});
    EXPECT_EQ(got[0], make_blob(1).bytes);
    EXPECT_EQ(got[1], make_blob(2).bytes);
    EXPECT_FALSE(got[2].has_value());
  });

  std::string finish_error;
  std::thread finisher([&] {
    std::this_thread::sleep_for(500ms);
    try {
      finish_migration(slot, from, to);
    } catch (const std::exception& e) {
      finish_error = e.what();
    }
  });
  EXPECT_NO_THROW(store_->put(added, make_blob(3)));
  finisher.join();
  EXPECT_EQ(finish_error, "");
  EXPECT_EQ(store_->get(added), make_blob(3).bytes);
  EXPECT_EQ(store_->stats().bytes, 15);

  move_slot(slot, to, from);
}

// Kills the master of `slot` by pid while one thread reads and writes;
// then restarts it and hands its slots back (CLUSTER FAILOVER), leaving the
// cluster as it was.
class MasterKill {
 public:
  MasterKill(const NodeAddress& seed, int slot)
      : seed_(seed), victim_(slot_master(seed, slot)), slot_(slot) {
    config_file_ = info_field(victim_.address, "server", "config_file");
    pid_ = std::stoi(info_field(victim_.address, "server", "process_id"));
    if (config_file_.empty()) throw std::runtime_error("the master has no config file to restart");
  }

  const ClusterNode& victim() const { return victim_; }

  // Makes sure the replica holds every write made so far (WAIT on a write
  // of this connection, which the replication stream orders after them),
  // then kills the master.
  void kill_master(const std::string& marker_key) {
    Connection connection(victim_.address, {});
    const std::string_view set[] = {"SET", marker_key, "1"};
    const std::string_view wait[] = {"WAIT", "1", "5000"};
    connection.command(set);
    if (connection.command(wait)->integer < 1) throw std::runtime_error("the replica lags");
    if (::kill(pid_, SIGKILL) != 0) throw std::runtime_error("kill failed");
  }

  bool replica_took_over() const {
    return wait_until([&] { return slot_master(seed_, slot_).id != victim_.id; }, 15s);
  }

  // Restarts the node from its configuration; it rejoins as a replica of
  // the master that replaced it, syncs, and is failed over back.
  bool restore() const {
    if (std::system(("redis-server " + config_file_).c_str()) != 0) return false;
    const NodeAddress& node = victim_.address;
    const bool synced = wait_until(
        [&] {
          return info_field(node, "replication", "role") == "slave" &&
                 info_field(node, "replication", "master_link_status") == "up";
        },
        30s);
    if (!synced) return false;
    call(node, {"CLUSTER", "FAILOVER"});
    return wait_until(
        [&] {
          if (slot_master(seed_, slot_).id != victim_.id || !topology_settled(seed_)) {
            return false;
          }
          for (const ClusterNode& master : masters(seed_)) {
            if (!cluster_state_ok(master.address)) return false;
          }
          return true;
        },
        30s);
  }

 private:
  NodeAddress seed_;
  ClusterNode victim_;
  int slot_;
  std::string config_file_;
  int pid_ = 0;
};

TEST_F(RedisClusterTest, AKilledMasterCostsNoFailedCall) {
  constexpr int kBlobs = 40;
  std::vector<int64_t> ids;
  for (int64_t id = 1; id <= kBlobs; ++id) {
    store_->put(id, make_blob(static_cast<int>(id)));
    ids.push_back(id);
  }
  const int slot = bucket_slot(1);
  // Not the seed: the store's map refresh must find the cluster without it.
  const NodeAddress seed =
      slot_master(seed_, slot).address == seed_ ? options_.cluster.seeds.back() : seed_;
  MasterKill kill(seed, slot);
  RedisClusterBlobStoreOptions impatient = options_;
  impatient.cluster.deadline = 300ms;
  const RedisClusterBlobStore impatient_store(impatient);

  kill.kill_master(options_.prefix + ":marker:{1}");
  // Within the 300 ms no replica can have taken over (node timeout 2 s).
  EXPECT_TRUE(throws_error([&] { impatient_store.get(1); }, ErrorKind::kUnavailable,
                           {"gave up on key", kill.victim().address.name()}));

  int calls = 0;
  int failed = 0;
  std::string first_failure;
  const auto end = std::chrono::steady_clock::now() + 15s;
  for (int64_t next = 1000; std::chrono::steady_clock::now() < end; ++next) {
    try {
      ++calls;
      const auto got = store_->get_many(ids);
      for (size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(got[i], make_blob(static_cast<int>(ids[i])).bytes) << ids[i];
      }
      ++calls;
      store_->put(next, make_blob(static_cast<int>(next)));
    } catch (const Error& e) {
      ++failed;
      if (first_failure.empty()) first_failure = e.what();
    }
  }
  const bool took_over = kill.replica_took_over();
  const bool restored = kill.restore();
  EXPECT_TRUE(took_over);
  EXPECT_TRUE(restored) << "the cluster is not back to its masters: see scripts/cluster.sh status";
  EXPECT_EQ(failed, 0) << "of " << calls << " calls; the first: " << first_failure;
  EXPECT_GT(calls, 20);
  std::cout << "failover: " << calls << " calls, " << failed << " failed\n";
}

}  // namespace
}  // namespace kvrag

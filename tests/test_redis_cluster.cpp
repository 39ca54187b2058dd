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
// The administration steps are in tests/redis_admin.h. These tests change
// the cluster's topology for a while: CTest runs them one at a time
// (RESOURCE_LOCK in tests/CMakeLists.txt).
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "data/index_stores.h"
#include "data/redis_cluster.h"
#include "data/redis_cluster_blob_store.h"
#include "tests/fixtures.h"
#include "tests/model_files.h"
#include "tests/redis_admin.h"
#include "tests/store_conformance.h"
#include "tests/store_fixtures.h"

namespace kvrag {
namespace {

using namespace std::chrono_literals;
using redis::NodeAddress;
using redis::Reply;
using testing::begin_migration;
using testing::call;
using testing::ClusterNode;
using testing::count_keys_in_slot;
using testing::finish_migration;
using testing::make_blob;
using testing::MasterKill;
using testing::masters;
using testing::migrate_keys;
using testing::move_slot;
using testing::other_master;
using testing::slot_master;
using testing::StoreBackend;
using testing::StoreConformance;
using testing::throws_error;
using testing::wait_until;

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

// ---------------------------------------------------------------- on a cluster

// A blob of `size` random bytes (seeded by `seed`) and 64 tokens.
MemoryBlob random_blob(size_t size, int seed) {
  MemoryBlob blob{Bytes(size), 64};
  std::mt19937 random(seed);
  for (uint8_t& byte : blob.bytes) byte = static_cast<uint8_t>(random());
  return blob;
}

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<std::string> uri = cluster_uri();
    if (!uri) KVRAG_SKIP_OR_FAIL(kNoCluster);
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
  EXPECT_EQ(count_keys_in_slot(from, slot, options_.prefix), 0);
  const auto got =
      store_->get_many(std::vector<int64_t>{id_in_bucket(kBucket, 1), 5, id_in_bucket(kBucket, 0)});
  EXPECT_TRUE(got[0] == large.bytes);
  EXPECT_FALSE(got[1].has_value());
  EXPECT_EQ(got[2], make_blob(1).bytes);
  store_->put(id_in_bucket(kBucket, 2), make_blob(2));
  store_->remove(std::vector<int64_t>{id_in_bucket(kBucket, 0)});
  EXPECT_EQ(count_keys_in_slot(to, slot, options_.prefix),
            3);  // two blobs and the bucket's counters
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
    EXPECT_EQ(count_keys_in_slot(to, slot, options_.prefix), 1);
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
  auto longest = 0ms;  // the call that waited out the failover
  const auto end = std::chrono::steady_clock::now() + 15s;
  for (int64_t next = 1000; std::chrono::steady_clock::now() < end; ++next) {
    const auto start = std::chrono::steady_clock::now();
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
    longest = std::max(longest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start));
  }
  const bool took_over = kill.replica_took_over();
  const bool restored = kill.restore();
  EXPECT_TRUE(took_over);
  EXPECT_TRUE(restored) << "the cluster is not back to its masters: see scripts/cluster.sh status";
  EXPECT_EQ(failed, 0) << "of " << calls << " calls; the first: " << first_failure;
  EXPECT_GT(calls, 20);
  std::cout << "failover: " << calls << " calls, " << failed << " failed, the longest iteration "
            << longest.count() << " ms\n";
}

}  // namespace
}  // namespace kvrag

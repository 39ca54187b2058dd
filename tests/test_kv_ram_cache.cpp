// The RAM cache of chunk memories: LRU order, the byte limit, counters,
// replacement, and concurrent use.
#include <gtest/gtest.h>

#include <thread>

#include "model_files.h"
#include "data/kv_blob.h"
#include "pipeline/kv_ram_cache.h"

namespace kvrag {
namespace {

// A hidden-state memory of `tokens` rows of 4 floats: 16 bytes per token.
std::shared_ptr<const ChunkMemory> memory_of(int64_t tokens, float fill = 1.0f) {
  auto memory = std::make_shared<ChunkMemory>();
  memory->hidden = Tensor(tokens, 4, std::vector<float>(static_cast<size_t>(tokens * 4), fill));
  return memory;
}

// K/V count the packed bytes of their blob: f16 half of f32, int8 a
// quarter plus a scale per row.
TEST(KvRamCache, CountsPackedBytesOfKvAndHidden) {
  const Tensor k(3, 8);
  const std::vector<ConstView> matrices{k.view(), k.view(), k.view(), k.view()};
  for (const auto& [dtype, row_bytes] :
       {std::pair{KvDtype::kF32, 32}, std::pair{KvDtype::kF16, 16}, std::pair{KvDtype::kInt8, 12}}) {
    ChunkMemory kv;
    kv.kv = read_kv_blob(encode_kv_blob(dtype, matrices), "test");
    EXPECT_EQ(kv.bytes(), 32 + 4 * 3 * row_bytes) << kv_dtype_name(dtype);  // header + rows
    EXPECT_EQ(kv.tokens(), 3);
  }
  EXPECT_EQ(memory_of(5)->bytes(), 5 * 16);
  EXPECT_EQ(memory_of(5)->tokens(), 5);
}

TEST(KvRamCache, EvictsLeastRecentlyUsedToFitTheLimit) {
  KvRamCache cache(100);  // room for six 16-byte tokens
  cache.put(1, memory_of(2));
  cache.put(2, memory_of(2));
  cache.put(3, memory_of(2));
  EXPECT_EQ(cache.bytes_used(), 96);
  ASSERT_NE(cache.get(1), nullptr);  // 1 becomes the most recent; 2 is now the oldest
  cache.put(4, memory_of(1));
  EXPECT_EQ(cache.get(2), nullptr);
  EXPECT_NE(cache.get(1), nullptr);
  EXPECT_NE(cache.get(3), nullptr);
  EXPECT_NE(cache.get(4), nullptr);
  EXPECT_EQ(cache.entries(), 3);
  EXPECT_EQ(cache.bytes_used(), 80);
  EXPECT_EQ(cache.hits(), 4);
  EXPECT_EQ(cache.misses(), 1);
}

TEST(KvRamCache, ReplacesEraseAndRejectsOversizedEntries) {
  KvRamCache cache(100);
  cache.put(7, memory_of(2, 1.0f));
  cache.put(7, memory_of(3, 2.0f));
  EXPECT_EQ(cache.entries(), 1);
  EXPECT_EQ(cache.bytes_used(), 48);
  EXPECT_EQ(cache.get(7)->hidden.at(0, 0), 2.0f);
  cache.put(8, memory_of(7));  // 112 bytes: larger than the whole cache
  EXPECT_EQ(cache.get(8), nullptr);
  EXPECT_EQ(cache.bytes_used(), 48);
  cache.erase(7);
  cache.erase(7);  // absent: nothing happens
  EXPECT_EQ(cache.entries(), 0);
  EXPECT_EQ(cache.bytes_used(), 0);
}

TEST(KvRamCache, ReplacingWithAnOversizedEntryDropsTheOldOne) {
  KvRamCache cache(100);
  cache.put(7, memory_of(2));
  cache.put(7, memory_of(7));
  EXPECT_EQ(cache.get(7), nullptr);
  EXPECT_EQ(cache.bytes_used(), 0);
}

TEST(KvRamCache, ZeroDisablesAndNegativeIsAnError) {
  KvRamCache cache(0);
  EXPECT_FALSE(cache.enabled());
  cache.put(1, memory_of(1));
  EXPECT_EQ(cache.get(1), nullptr);
  EXPECT_EQ(cache.misses(), 1);
  EXPECT_TRUE(testing::throws_error([] { KvRamCache bad(-1); }, ErrorKind::kInvalidArgument,
                                    {"kv cache bytes", "-1"}));
}

TEST(KvRamCache, EvictedMemoryStaysAliveForItsReader) {
  KvRamCache cache(40);
  cache.put(1, memory_of(2, 3.0f));
  const std::shared_ptr<const ChunkMemory> held = cache.get(1);
  cache.put(2, memory_of(2));  // evicts 1
  EXPECT_EQ(cache.get(1), nullptr);
  EXPECT_EQ(held->hidden.at(1, 3), 3.0f);
}

TEST(KvRamCache, ManyThreadsKeepTheCountersAndLimitConsistent) {
  KvRamCache cache(16 * 50);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 500; ++i) {
        const int64_t id = (i * 7 + t) % 80;
        if (!cache.get(id)) cache.put(id, memory_of(1 + id % 3));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(cache.hits() + cache.misses(), 4 * 500);
  EXPECT_LE(cache.bytes_used(), cache.max_bytes());
  EXPECT_GT(cache.entries(), 0);
}

}  // namespace
}  // namespace kvrag

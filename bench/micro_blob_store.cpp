// Google Benchmark of BlobStore::get_many, the read on every ask's path, at
// k = 5, 20 and 50 chunks of the cache sizes that matter (64-token chunks, f16,
// sizes from kv_blob_size):
//   demo-hidden    the bundled demo model's encoder output (d_model 128)
//   t5base-hidden  T5-base's encoder output (d_model 768): about 98 KB
//   t5base-kv      T5-base's per-layer K/V (12 + 12 matrices of 768): 2.36 MB
// from two stores:
//   BM_GetMany/redis/...   RedisClusterBlobStore on the cluster named by
//                          KVRAG_BENCH_REDIS (redis://host:port,...; skipped
//                          without it), reads from masters
//   BM_GetMany/sqlite/...  SqliteBlobStore in a temporary index folder (the
//                          page cache warm: no disk in the figures)
// Counters: p50_ms and p95_ms over the benchmark's iterations (one get_many
// each), MB per call. And what a cached answer does with each blob it reads:
//   BM_ReadKvBlob/<shape>/k:N  read_kv_blob of N valid f16 blobs (checksum,
//                              every value checked finite), with the copy
//                              of their bytes that hands each one over
// How to run: bench/README.md.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/heap.h"
#include "core/packed_rows.h"
#include "core/tensor.h"
#include "data/index_stores.h"
#include "data/kv_blob.h"
#include "data/redis_cluster_blob_store.h"

namespace {

using kvrag::BlobStore;
using kvrag::MemoryBlob;

constexpr int64_t kChunkTokens = 64;

struct CacheShape {
  const char* name;
  int64_t matrices;
  int64_t cols;
};

constexpr CacheShape kShapes[] = {
    {"demo-hidden", 1, 128},
    {"t5base-hidden", 1, 768},
    {"t5base-kv", 24, 768},
};

MemoryBlob random_blob(size_t size, int seed) {
  MemoryBlob blob{kvrag::Bytes(size), kChunkTokens};
  std::mt19937 random(seed);
  for (uint8_t& byte : blob.bytes) byte = static_cast<uint8_t>(random());
  return blob;
}

// A store holding `k` blobs of `size` bytes under chunk ids 1..k, and what
// to remove when done.
struct Fixture {
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<kvrag::MetadataStore> metadata;  // the SQLite folder's: its chunks own the blobs
  std::filesystem::path folder;                    // the SQLite folder, if any
  std::vector<int64_t> ids;
};

Fixture redis_fixture(const char* uri, size_t size, int k) {
  kvrag::RedisClusterBlobStoreOptions options = kvrag::parse_redis_cluster_uri(uri);
  options.prefix = "kvrag_bench_" + std::to_string(::getpid());
  auto store = std::make_unique<kvrag::RedisClusterBlobStore>(options);
  store->drop();
  Fixture fixture{std::move(store), nullptr, {}, {}};
  for (int i = 1; i <= k; ++i) {
    fixture.blobs->put(i, random_blob(size, i));
    fixture.ids.push_back(i);
  }
  return fixture;
}

Fixture sqlite_fixture(size_t size, int k) {
  const auto folder =
      std::filesystem::temp_directory_path() / ("kvrag_blob_bench_" + std::to_string(::getpid()));
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  kvrag::IndexStores stores = kvrag::open_index_stores((folder / "store.sqlite").string());
  Fixture fixture{std::move(stores.blobs), std::move(stores.metadata), folder, {}};
  fixture.metadata->write_transaction([&] {
    kvrag::Document document;
    document.external_id = "doc";
    const int64_t doc = fixture.metadata->add_document(document, "h");
    for (int i = 0; i < k; ++i) {
      const int64_t id = fixture.metadata->add_chunk(
          doc,
          {.position = i, .text = "t", .token_ids = {1}, .content_hash = "h", .embedding = {1}});
      fixture.blobs->put(id, random_blob(size, i));
      fixture.ids.push_back(id);
    }
  });
  return fixture;
}

void remove(Fixture& fixture) {
  if (auto* redis = dynamic_cast<kvrag::RedisClusterBlobStore*>(fixture.blobs.get())) {
    redis->drop();
  }
  const std::filesystem::path folder = fixture.folder;
  fixture = {};  // closes the stores before their folder goes
  if (!folder.empty()) std::filesystem::remove_all(folder);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(p * static_cast<double>(values.size() - 1))];
}

void BM_GetMany(benchmark::State& state, bool redis, CacheShape shape, int k) {
  const char* uri = std::getenv("KVRAG_BENCH_REDIS");
  if (redis && (uri == nullptr || *uri == '\0')) {
    state.SkipWithError("KVRAG_BENCH_REDIS is not set (redis://host:port,...)");
    return;
  }
  const size_t size =
      kvrag::kv_blob_size(kvrag::KvDtype::kF16, shape.matrices, kChunkTokens, shape.cols);
  Fixture fixture = redis ? redis_fixture(uri, size, k) : sqlite_fixture(size, k);
  for (int warm_up = 0; warm_up < 3; ++warm_up) fixture.blobs->get_many(fixture.ids);
  std::vector<double> latencies_ms;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const auto blobs = fixture.blobs->get_many(fixture.ids);
    latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    if (!std::all_of(blobs.begin(), blobs.end(),
                     [&](const auto& b) { return b && b->size() == size; })) {
      state.SkipWithError("a blob came back missing or resized");
      break;
    }
  }
  if (!latencies_ms.empty()) {
    state.counters["p50_ms"] = percentile(latencies_ms, 0.50);
    state.counters["p95_ms"] = percentile(latencies_ms, 0.95);
    state.counters["MB/call"] = static_cast<double>(size) * k / 1e6;
  }
  remove(fixture);
}

// A valid f16 blob of `shape`: random values in [-2, 2).
kvrag::Bytes valid_blob(CacheShape shape, int seed) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::vector<kvrag::Tensor> matrices;
  std::vector<kvrag::ConstView> views;
  for (int64_t m = 0; m < shape.matrices; ++m) {
    matrices.emplace_back(kChunkTokens, shape.cols);
    for (int64_t i = 0; i < kChunkTokens; ++i) {
      for (int64_t j = 0; j < shape.cols; ++j) matrices.back().at(i, j) = value(random);
    }
  }
  for (const kvrag::Tensor& m : matrices) views.push_back(m.view());
  return kvrag::encode_kv_blob(kvrag::KvDtype::kF16, views);
}

void BM_ReadKvBlob(benchmark::State& state, CacheShape shape, int k) {
  const kvrag::Bytes blob = valid_blob(shape, 7);
  for (auto _ : state) {
    for (int i = 0; i < k; ++i) {
      kvrag::PackedMatrices read = kvrag::read_kv_blob(blob, "benchmark blob");
      benchmark::DoNotOptimize(read.matrices.data());
    }
  }
  state.counters["GB/s"] = benchmark::Counter(
      static_cast<double>(blob.size()) * k * 1e-9 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// Enough calls for a p95 (at least 30), within about 2 GB read per benchmark.
int iterations(size_t bytes_per_call) {
  return static_cast<int>(std::clamp<size_t>(2'000'000'000 / bytes_per_call, 30, 300));
}

}  // namespace

int main(int argc, char** argv) {
  kvrag::keep_freed_blocks_in_heap();  // as the kvrag command does
  for (const bool redis : {true, false}) {
    for (const CacheShape& shape : kShapes) {
      for (const int k : {5, 20, 50}) {
        const size_t size =
            kvrag::kv_blob_size(kvrag::KvDtype::kF16, shape.matrices, kChunkTokens, shape.cols);
        const std::string name = std::string("BM_GetMany/") + (redis ? "redis/" : "sqlite/") +
                                 shape.name + "/k:" + std::to_string(k);
        benchmark::RegisterBenchmark(name.c_str(), BM_GetMany, redis, shape, k)
            ->Iterations(iterations(size * k))
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
  for (const int k : {20, 50}) {
    const std::string name = "BM_ReadKvBlob/t5base-kv/k:" + std::to_string(k);
    benchmark::RegisterBenchmark(name.c_str(), BM_ReadKvBlob, kShapes[2], k)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}

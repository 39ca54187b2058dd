// The store contract (tests/store_conformance.h) on the SQLite folder, and
// the contract of VectorIndex (retriever/vector_index.h) per FAISS index
// kind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "data/index_stores.h"
#include "retriever/vector_index.h"
#include "tests/model_files.h"
#include "tests/store_conformance.h"

namespace kvrag {
namespace {

using testing::StoreBackend;
using testing::StoreConformance;
using testing::TempDir;
using testing::throws_error;

StoreBackend sqlite_folder() {
  StoreBackend backend;
  backend.name = "SqliteFolder";
  backend.open = [](const std::string& scratch) {
    return open_index_stores(scratch + "/store.sqlite");
  };
  return backend;
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformance, ::testing::Values(sqlite_folder()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------- vectors

constexpr int64_t kDim = 8;
// Enough to train "IVF4,Flat" (39 vectors per centroid), so that it is
// tested trained rather than answering from its pending vectors.
constexpr int64_t kVectors = 200;

// `n` random unit vectors (n × kDim) and their ids 10, 13, 16, ...
std::pair<std::vector<int64_t>, std::vector<float>> unit_vectors(int64_t n) {
  std::mt19937 random(11);
  std::normal_distribution<float> normal;
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  for (int64_t i = 0; i < n; ++i) {
    ids.push_back(10 + 3 * i);
    float norm = 0.0f;
    std::vector<float> v(kDim);
    for (float& x : v) {
      x = normal(random);
      norm += x * x;
    }
    for (float& x : v) vectors.push_back(x / std::sqrt(norm));
  }
  return {ids, vectors};
}

std::span<const float> row(const std::vector<float>& vectors, int64_t i) {
  return std::span<const float>(vectors).subspan(static_cast<size_t>(i * kDim), kDim);
}

class VectorIndexConformance : public ::testing::TestWithParam<std::string> {
 protected:
  VectorIndexConformance()
      : index_(make_vector_index(kDim, GetParam())), data_(unit_vectors(kVectors)) {
    index_->add(data_.first, data_.second);
  }

  // Each vector's own id comes first when searching with it.
  void expect_each_finds_itself(const VectorIndex& index) {
    for (int64_t i = 0; i < kVectors; ++i) {
      const std::vector<ScoredId> hits = index.search(row(data_.second, i), 3);
      ASSERT_FALSE(hits.empty());
      EXPECT_EQ(hits[0].id, data_.first[static_cast<size_t>(i)]);
      EXPECT_NEAR(hits[0].score, 1.0f, 1e-4);
      for (size_t h = 1; h < hits.size(); ++h) EXPECT_GE(hits[h - 1].score, hits[h].score);
    }
  }

  std::unique_ptr<VectorIndex> index_;
  std::pair<std::vector<int64_t>, std::vector<float>> data_;
};

INSTANTIATE_TEST_SUITE_P(Faiss, VectorIndexConformance,
                         ::testing::Values("Flat", "HNSW32", "IVF4,Flat"), [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), ',', '_');
                           return name;
                         });

TEST_P(VectorIndexConformance, AddedVectorsAreFoundAndListed) {
  EXPECT_EQ(index_->size(), kVectors);
  EXPECT_EQ(index_->ids(), data_.first);
  EXPECT_EQ(index_->factory(), GetParam());
  expect_each_finds_itself(*index_);
  EXPECT_LE(static_cast<int64_t>(index_->search(row(data_.second, 0), kVectors + 5).size()),
            kVectors);
}

TEST_P(VectorIndexConformance, AnIdHeldAlreadyIsInvalidArgument) {
  const std::vector<int64_t> again = {data_.first[0]};
  EXPECT_TRUE(throws_error([&] { index_->add(again, row(data_.second, 1)); },
                           ErrorKind::kInvalidArgument, {}));
  EXPECT_EQ(index_->size(), kVectors);
}

TEST_P(VectorIndexConformance, RemovedIdsAreNeverReturned) {
  std::vector<int64_t> gone = {data_.first[0], data_.first[5], 7 /* never added */};
  index_->remove(gone);
  EXPECT_EQ(index_->size(), kVectors - 2);
  for (int64_t i : {int64_t{0}, int64_t{5}}) {
    for (const ScoredId& hit : index_->search(row(data_.second, i), kVectors)) {
      EXPECT_NE(hit.id, data_.first[0]);
      EXPECT_NE(hit.id, data_.first[5]);
    }
  }
  const std::vector<ScoredId> kept = index_->search(row(data_.second, 1), 1);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].id, data_.first[1]);
}

TEST_P(VectorIndexConformance, SavedIndexLoadsBackTheSame) {
  const TempDir dir("kvrag_conformance");
  const std::string path = dir.file("vectors");
  index_->save(path);
  const auto loaded = load_vector_index(path, kDim, GetParam());
  EXPECT_EQ(loaded->ids(), data_.first);
  expect_each_finds_itself(*loaded);
  EXPECT_TRUE(throws_error([&] { load_vector_index(dir.file("none"), kDim, GetParam()); },
                           ErrorKind::kNotFound, {}));
  EXPECT_TRUE(
      throws_error([&] { load_vector_index(path, kDim + 1, GetParam()); }, ErrorKind::kFormat, {}));
}

}  // namespace
}  // namespace kvrag

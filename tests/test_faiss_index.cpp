#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "retriever/faiss_index.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {

using testing::TempDir;
using testing::throws_error;

constexpr int64_t kDim = 16;

// n unit vectors (n × kDim) drawn around `clusters` random centres, so that
// IVF lists are meaningful; ids 1000, 1001, ...
struct Data {
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  std::span<const float> row(size_t i) const { return {vectors.data() + i * kDim, kDim}; }
};

Data make_data(size_t n, int clusters, uint32_t seed, int64_t first_id = 1000) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(clusters * kDim);
  for (float& c : centres) c = normal(rng);
  Data data;
  for (size_t i = 0; i < n; ++i) {
    const float* centre = centres.data() + (i % clusters) * kDim;
    float norm = 0.0f;
    std::vector<float> v(kDim);
    for (int64_t j = 0; j < kDim; ++j) {
      v[j] = centre[j] + 0.4f * normal(rng);
      norm += v[j] * v[j];
    }
    for (float& x : v) x /= std::sqrt(norm);
    data.ids.push_back(first_id + static_cast<int64_t>(i));
    data.vectors.insert(data.vectors.end(), v.begin(), v.end());
  }
  return data;
}

std::vector<int64_t> ids_of(const std::vector<ScoredId>& hits) {
  std::vector<int64_t> out;
  for (const ScoredId& h : hits) out.push_back(h.id);
  return out;
}

TEST(FaissIndex, FlatFindsEachVectorByItself) {
  const Data data = make_data(200, 10, 1);
  FaissIndex index(kDim, "Flat");
  index.add(data.ids, data.vectors);
  EXPECT_EQ(index.size(), 200);
  for (size_t i = 0; i < data.ids.size(); i += 17) {
    const std::vector<ScoredId> hits = index.search(data.row(i), 5);
    ASSERT_EQ(hits.size(), 5u);
    EXPECT_EQ(hits[0].id, data.ids[i]);
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-5f);
    for (size_t r = 1; r < hits.size(); ++r) EXPECT_GE(hits[r - 1].score, hits[r].score);
  }
}

TEST(FaissIndex, SearchBeyondSizeReturnsEveryVectorWithoutPlaceholders) {
  const Data data = make_data(3, 3, 2);
  FaissIndex index(kDim, "Flat");
  EXPECT_TRUE(index.search(data.row(0), 10).empty());
  index.add(data.ids, data.vectors);
  const std::vector<int64_t> hits = ids_of(index.search(data.row(0), 10));
  EXPECT_EQ(std::set<int64_t>(hits.begin(), hits.end()),
            std::set<int64_t>(data.ids.begin(), data.ids.end()));
  EXPECT_EQ(hits.size(), 3u);
  EXPECT_TRUE(index.search(data.row(0), 0).empty());
}

TEST(FaissIndex, IvfRecallAgainstExactSearch) {
  // IVF16 trains once it holds 39 × 16 = 624 vectors.
  const Data data = make_data(1200, 24, 3);
  const Data queries = make_data(50, 24, 4);
  FaissIndex exact(kDim, "Flat");
  FaissIndex ivf(kDim, "IVF16,Flat");
  exact.add(data.ids, data.vectors);
  ivf.add(data.ids, data.vectors);
  ASSERT_EQ(ivf.size(), 1200);

  const int64_t k = 10;
  int64_t found = 0;
  for (size_t q = 0; q < queries.ids.size(); ++q) {
    const std::vector<int64_t> truth = ids_of(exact.search(queries.row(q), k));
    const std::vector<int64_t> approx = ids_of(ivf.search(queries.row(q), k));
    for (const int64_t id : approx) found += std::count(truth.begin(), truth.end(), id);
  }
  const double recall = static_cast<double>(found) / (k * queries.ids.size());
  // 8 of 16 lists probed (see set_search_parameters): recall@10 stays high.
  EXPECT_GE(recall, 0.9);
}

TEST(FaissIndex, UntrainedIndexAnswersExactlyFromPendingVectors) {
  const Data data = make_data(100, 5, 5);  // < 624: IVF16 stays untrained
  FaissIndex ivf(kDim, "IVF16,Flat");
  FaissIndex exact(kDim, "Flat");
  ivf.add(data.ids, data.vectors);
  exact.add(data.ids, data.vectors);
  EXPECT_EQ(ivf.size(), 100);
  EXPECT_EQ(ivf.ids(), data.ids);
  for (size_t i = 0; i < 100; i += 9) {
    EXPECT_EQ(ids_of(ivf.search(data.row(i), 7)), ids_of(exact.search(data.row(i), 7)));
  }
  // Adding more vectors trains the index with everything held.
  const Data more = make_data(600, 5, 6, 5000);
  ivf.add(more.ids, more.vectors);
  EXPECT_EQ(ivf.size(), 700);
  EXPECT_EQ(ivf.search(data.row(3), 1)[0].id, data.ids[3]);
  EXPECT_EQ(ivf.search(more.row(8), 1)[0].id, more.ids[8]);
}

TEST(FaissIndex, RemoveDropsIdsEverywhere) {
  for (const std::string factory : {"Flat", "IVF16,Flat", "HNSW16"}) {
    SCOPED_TRACE(factory);
    const Data data = make_data(700, 16, 7);
    FaissIndex index(kDim, factory);
    index.add(data.ids, data.vectors);
    const std::vector<int64_t> gone = {data.ids[0], data.ids[5], data.ids[699], 123456};
    index.remove(gone);
    EXPECT_EQ(index.size(), 697);
    const std::vector<int64_t> held = index.ids();
    for (const int64_t id : gone) EXPECT_FALSE(std::binary_search(held.begin(), held.end(), id));
    EXPECT_TRUE(std::binary_search(held.begin(), held.end(), data.ids[1]));
    for (const size_t i : {size_t{0}, size_t{5}}) {
      const std::vector<int64_t> hits = ids_of(index.search(data.row(i), 20));
      EXPECT_EQ(std::count(hits.begin(), hits.end(), data.ids[i]), 0);
    }
    // Every kept vector still finds itself: ids stay attached to their vectors.
    for (size_t i = 1; i < 699; i += 7) {
      if (i == 5) continue;
      const std::vector<int64_t> hits = ids_of(index.search(data.row(i), 5));
      EXPECT_EQ(std::count(hits.begin(), hits.end(), data.ids[i]), 1) << i;
    }
    // Vectors added after a removal get ids of their own.
    const Data more = make_data(20, 16, 70, 8000);
    index.add(more.ids, more.vectors);
    EXPECT_EQ(index.size(), 717);
    for (size_t i = 0; i < 20; i += 3) {
      const std::vector<int64_t> hits = ids_of(index.search(more.row(i), 5));
      EXPECT_EQ(std::count(hits.begin(), hits.end(), more.ids[i]), 1) << i;
    }
  }
}

TEST(FaissIndex, RemoveFromPendingVectors) {
  const Data data = make_data(10, 2, 8);
  FaissIndex index(kDim, "IVF16,Flat");
  index.add(data.ids, data.vectors);
  index.remove(std::vector<int64_t>{data.ids[2], data.ids[7]});
  EXPECT_EQ(index.size(), 8);
  EXPECT_EQ(index.search(data.row(3), 1)[0].id, data.ids[3]);  // rows kept in step with ids
  EXPECT_NE(index.search(data.row(2), 1)[0].id, data.ids[2]);
}

TEST(FaissIndex, DuplicateIdsAndWrongSizesAreRejected) {
  const Data data = make_data(4, 2, 9);
  FaissIndex index(kDim, "Flat");
  index.add(data.ids, data.vectors);
  EXPECT_TRUE(throws_error([&] { index.add(std::vector<int64_t>{data.ids[1]}, data.row(0)); },
                           ErrorKind::kInvalidArgument,
                           {"FaissIndex::add: id 1001 is already in the index"}));
  EXPECT_TRUE(throws_error(
      [&] {
        index.add(std::vector<int64_t>{1, 2}, data.row(0));
      },
      ErrorKind::kInvalidArgument,
      {"FaissIndex::add: 2 ids need 32 floats (dimension 16), got 16"}));
  EXPECT_TRUE(throws_error([&] { index.search(std::vector<float>(3), 1); },
                           ErrorKind::kInvalidArgument,
                           {"FaissIndex::search: query of 3 floats, the index has dimension 16"}));
  EXPECT_EQ(index.size(), 4);
}

TEST(FaissIndex, ConcurrentSearchesWhileAdding) {
  const Data data = make_data(400, 8, 15);
  FaissIndex index(kDim, "HNSW16");
  index.add(std::span(data.ids).first(200), std::span(data.vectors).first(200 * kDim));
  std::vector<std::thread> searchers;
  std::vector<int> misses(3, 0);
  for (int t = 0; t < 3; ++t) {
    searchers.emplace_back([&, t] {
      for (size_t i = t; i < 200; i += 3) {
        const std::vector<int64_t> hits = ids_of(index.search(data.row(i), 5));
        misses[t] += std::count(hits.begin(), hits.end(), data.ids[i]) == 1 ? 0 : 1;
      }
    });
  }
  index.add(std::span(data.ids).subspan(200), std::span(data.vectors).subspan(200 * kDim));
  for (std::thread& t : searchers) t.join();
  EXPECT_EQ(misses, std::vector<int>(3, 0));
  EXPECT_EQ(index.size(), 400);
}

TEST(FaissIndex, BadFactoryIsAnInvalidArgument) {
  EXPECT_TRUE(throws_error([] { FaissIndex index(kDim, "NoSuchIndex42"); },
                           ErrorKind::kInvalidArgument, {"FAISS index factory 'NoSuchIndex42'"}));
  EXPECT_TRUE(throws_error([] { FaissIndex index(kDim, "IDMap,Flat"); },
                           ErrorKind::kInvalidArgument, {"leave out IDMap"}));
}

TEST(FaissIndex, SaveLoadRoundTrip) {
  TempDir dir("kvrag_faiss");
  for (const std::string factory : {"Flat", "IVF16,Flat", "HNSW16"}) {
    SCOPED_TRACE(factory);
    const Data data = make_data(700, 16, 10);
    FaissIndex index(kDim, factory);
    index.add(data.ids, data.vectors);
    const std::string path = dir.file("vectors.faiss");
    index.save(path);
    const auto loaded = FaissIndex::load(path, kDim, factory);
    EXPECT_EQ(loaded->ids(), index.ids());
    EXPECT_EQ(loaded->factory(), factory);
    for (size_t i = 0; i < 700; i += 50) {
      const auto a = index.search(data.row(i), 5);
      const auto b = loaded->search(data.row(i), 5);
      EXPECT_EQ(ids_of(a), ids_of(b));
    }
    // No temporary file left beside it.
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                            std::filesystem::directory_iterator()),
              1);
  }
}

TEST(FaissIndex, PendingVectorsSurviveSaveAndLoad) {
  TempDir dir("kvrag_faiss");
  const Data data = make_data(50, 5, 11);
  FaissIndex index(kDim, "IVF16,Flat");
  index.add(data.ids, data.vectors);
  index.save(dir.file("vectors.faiss"));
  const auto loaded = FaissIndex::load(dir.file("vectors.faiss"), kDim, "IVF16,Flat");
  EXPECT_EQ(loaded->ids(), data.ids);
  EXPECT_EQ(loaded->search(data.row(4), 1)[0].id, data.ids[4]);
  // Enough new vectors then train it.
  const Data more = make_data(600, 5, 12, 9000);
  loaded->add(more.ids, more.vectors);
  EXPECT_EQ(loaded->size(), 650);
  EXPECT_EQ(loaded->search(data.row(4), 1)[0].id, data.ids[4]);
}

// A flat index of `data` saved at `path`, for the tests of reading files back.
void save_flat_index(const std::string& path, const Data& data) {
  FaissIndex index(kDim, "Flat");
  index.add(data.ids, data.vectors);
  index.save(path);
}

TEST(FaissIndex, LoadChecksFileDimensionAndKind) {
  TempDir dir("kvrag_faiss");
  const std::string path = dir.file("vectors.faiss");
  EXPECT_TRUE(throws_error([&] { FaissIndex::load(path, kDim, "Flat"); }, ErrorKind::kNotFound,
                           {path, ": no such FAISS index file"}));
  const Data data = make_data(20, 2, 13);
  save_flat_index(path, data);
  EXPECT_TRUE(throws_error([&] { FaissIndex::load(path, 32, "Flat"); }, ErrorKind::kFormat,
                           {path,
                            ": vectors of dimension 16, the model's embeddings have 32; "
                            "rebuild the vector index"}));
  EXPECT_TRUE(throws_error([&] { FaissIndex::load(path, kDim, "HNSW16"); }, ErrorKind::kFormat,
                           {path,
                            ": holds a FAISS 'Flat' index, the index is configured for "
                            "'HNSW16' ('HNSW'); rebuild the vector index"}));
}

TEST(FaissIndex, TruncatedOrForeignFileIsAFormatError) {
  TempDir dir("kvrag_faiss");
  const std::string path = dir.file("vectors.faiss");
  const Data data = make_data(100, 4, 14);
  save_flat_index(path, data);
  const std::string bytes = testing::read_text(path);
  for (const size_t keep : {bytes.size() / 2, size_t{10}, size_t{0}}) {
    testing::write_text(path, bytes.substr(0, keep));
    EXPECT_TRUE(throws_error([&] { FaissIndex::load(path, kDim, "Flat"); }, ErrorKind::kFormat,
                             {path, ": not a readable FAISS index"}))
        << keep;
  }
  testing::write_text(path, "not an index at all");
  EXPECT_TRUE(throws_error([&] { FaissIndex::load(path, kDim, "Flat"); }, ErrorKind::kFormat,
                           {path, ": not a readable FAISS index"}));
}

// FAISS itself would read both files below without complaint.
TEST(FaissIndex, AFlippedBitOrAMissingTrailerIsAFormatError) {
  TempDir dir("kvrag_faiss");
  const std::string path = dir.file("vectors.faiss");
  const Data data = make_data(100, 4, 15);
  save_flat_index(path, data);
  const std::string bytes = testing::read_text(path);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;  // inside the stored vectors
  testing::write_text(path, flipped);
  EXPECT_TRUE(throws_error([&] { FaissIndex::load(path, kDim, "Flat"); }, ErrorKind::kFormat,
                           {path, ": not a readable FAISS index: checksum mismatch (stored ",
                            "the file is damaged; rebuild the vector index"}));
  testing::write_text(path, bytes.substr(0, bytes.size() - 12));  // as an older kvrag wrote it
  EXPECT_TRUE(throws_error([&] { FaissIndex::load(path, kDim, "Flat"); }, ErrorKind::kFormat,
                           {path, ": not a readable FAISS index: no kvrag checksum trailer"}));
  testing::write_text(path, bytes);
  EXPECT_EQ(FaissIndex::load(path, kDim, "Flat")->ids(), data.ids);
}

}  // namespace
}  // namespace kvrag

// VectorIndex (retriever/vector_index.h) over FAISS, saved as an index
// folder's vectors.faiss: a FAISS IndexIDMap2 over an index_factory string,
// inner product, whose ids are chunk ids. FAISS types stay in this file's
// .cpp; FAISS exceptions come out as kvrag::Error.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "retriever/vector_index.h"

namespace faiss {
struct Index;
}

namespace kvrag {

class FaissIndex final : public VectorIndex {
 public:
  // An empty index of `dim` dimensions built from `factory` ("Flat",
  // "IVF64,Flat", "HNSW32", "IVF16,PQ8" ...); Error(kInvalidArgument) for a
  // string FAISS rejects.
  FaissIndex(int64_t dim, const std::string& factory);
  ~FaissIndex() override;

  // Reads `path`; Error(kFormat) if its checksum trailer (see save()) is
  // missing or does not match, if FAISS cannot read it, or if its dimension
  // is not `dim`.
  // A file of another index kind than `factory` builds is Error(kFormat)
  // too, so the caller rebuilds it from the store.
  static std::unique_ptr<FaissIndex> load(const std::string& path, int64_t dim,
                                          const std::string& factory);

  // Adds vectors (n × dim, row-major) with their ids. An untrained index
  // (IVF, PQ) is first trained on them; with fewer vectors than it needs to
  // train (39 per centroid, FAISS's own threshold for sound k-means), they
  // are kept pending and the index answers by exact search. An id already
  // held is Error(kInvalidArgument).
  void add(std::span<const int64_t> ids, std::span<const float> vectors) override;
  // Removes the ids that are held; ids not held are ignored. An index kind
  // that cannot remove (HNSW) is rebuilt from its remaining vectors.
  void remove(std::span<const int64_t> ids) override;
  // The min(k, size()) best ids by inner product with `query` (dim), best
  // first; an approximate index (IVF, HNSW) may return fewer.
  std::vector<ScoredId> search(std::span<const float> query, int64_t k) const override;
  // Vectors held, pending ones included.
  int64_t size() const override;
  // Every id held, pending ones included, ascending: what the pipeline
  // compares with the store's chunk ids to see whether the file is stale.
  std::vector<int64_t> ids() const override;
  int64_t dim() const { return dim_; }
  const std::string& factory() const override { return factory_; }

  // Writes to `path` atomically: a temporary file in the same folder, then
  // rename, so a crash leaves the old file or the new one. The file is
  // FAISS's serialisation followed by a trailer: its CRC-32C (u32) and the
  // magic "KVRAGVX1", checked by load(). Pending vectors
  // are written as a flat index that load() takes back as pending.
  void save(const std::string& path) const override;

 private:
  FaissIndex(int64_t dim, const std::string& factory, std::unique_ptr<faiss::Index> index);
  void train_if_ready();

  int64_t dim_;
  std::string factory_;
  std::unique_ptr<faiss::Index> index_;
  // Vectors waiting for enough data to train an IVF/PQ index (see add()).
  std::vector<int64_t> pending_ids_;
  std::vector<float> pending_vectors_;
  // Searches share it; add and remove take it alone.
  mutable std::shared_mutex mutex_;
};

}  // namespace kvrag

// The dense-retrieval index behind one interface: vectors keyed by chunk
// id, searched by inner product. Derived data: a MetadataStore's embeddings
// are the truth, and an index is rebuilt from them when missing or behind.
//
// Implementations: FaissIndex (retriever/faiss_index.h), the only place
// FAISS types appear. Thread-safe: searches run concurrently, add and
// remove one at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kvrag {

struct ScoredId {
  int64_t id;
  float score;
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  // Adds vectors (n × dim, row-major) with their ids. An id already held is
  // Error(kInvalidArgument); so is a vector count that does not match.
  virtual void add(std::span<const int64_t> ids, std::span<const float> vectors) = 0;
  // Removes the ids that are held; ids not held are ignored.
  virtual void remove(std::span<const int64_t> ids) = 0;
  // The min(k, size()) best ids by inner product with `query` (dim), best
  // first, equal scores by ascending id; an approximate index may return
  // fewer.
  virtual std::vector<ScoredId> search(std::span<const float> query, int64_t k) const = 0;
  // Vectors held.
  virtual int64_t size() const = 0;
  // Every id held, ascending: compared with the store's chunk ids to see
  // whether a loaded index is stale.
  virtual std::vector<int64_t> ids() const = 0;
  // The kind of index, as the settings name it ("Flat", "IVF64,Flat", ...).
  virtual const std::string& factory() const = 0;
  // Writes the index to `path` atomically (a crash leaves the old file or
  // the new one); load_vector_index reads it back. Error(kIo) on failure.
  virtual void save(const std::string& path) const = 0;
};

// An empty index of `dim` dimensions built from a FAISS index_factory
// string ("Flat", "IVF64,Flat", "HNSW32", ...); Error(kInvalidArgument) for
// a string FAISS rejects.
std::unique_ptr<VectorIndex> make_vector_index(int64_t dim, const std::string& factory);

// The index saved at `path`. Error(kNotFound) when there is no file;
// Error(kFormat) when it is damaged, of another dimension or of another
// kind than `factory` builds: the caller then rebuilds it.
std::unique_ptr<VectorIndex> load_vector_index(const std::string& path, int64_t dim,
                                               const std::string& factory);

}  // namespace kvrag

#include "retriever/vector_index.h"

#include "retriever/faiss_index.h"

namespace kvrag {

std::unique_ptr<VectorIndex> make_vector_index(int64_t dim, const std::string& factory) {
  return std::make_unique<FaissIndex>(dim, factory);
}

std::unique_ptr<VectorIndex> load_vector_index(const std::string& path, int64_t dim,
                                               const std::string& factory) {
  return FaissIndex::load(path, dim, factory);
}

}  // namespace kvrag

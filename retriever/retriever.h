// Retrieval over one index: dense (FAISS inner product over the chunk
// embeddings), BM25 (the store's FTS5) and hybrid (both, fused by
// retriever/fusion.h), behind one search call, as faiss's Index::search puts
// one interface in front of many compositions. Results are joined to their
// chunk and document rows.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/store.h"
#include "retriever/faiss_index.h"
#include "retriever/fusion.h"
#include "retriever/query.h"

namespace kvrag {

enum class RetrieverKind { kDense, kBm25, kHybrid };
const char* retriever_name(RetrieverKind kind);
RetrieverKind parse_retriever(const std::string& name);  // "dense" | "bm25" | "hybrid"

struct RetrievedChunk {
  int64_t chunk_id = 0;
  int64_t document_id = 0;  // the store's row id
  std::string external_id;  // the caller's document id
  std::string title;
  std::string text;
  int64_t position = 0;  // chunk position in its document
  double score = 0.0;    // retriever score (inner product, −bm25 or fused), higher is better
};

class Retriever {
 public:
  // Reads `store` and `vectors`, which must outlive it and hold the same
  // chunk ids. It takes no lock: the caller keeps writers out while a search
  // runs (RagPipeline's state lock).
  Retriever(const Store& store, const FaissIndex& vectors);

  // The top k chunks for `query`, best first: fewer when the index holds
  // fewer. Dense and hybrid read query.embedding, which must be set
  // (Error(kInvalidArgument) otherwise); BM25 reads query.text. k >= 1; the
  // pipeline bounds it (kMaxK).
  std::vector<RetrievedChunk> search(const Query& query, int64_t k, RetrieverKind kind) const;

 private:
  using Ranked = std::vector<std::pair<int64_t, double>>;  // (chunk id, score), best first
  Ranked dense(const Query& query, int64_t depth) const;
  Ranked bm25(const Query& query, int64_t depth) const;
  std::vector<Candidate> with_documents(const Ranked& ranked) const;
  std::vector<RetrievedChunk> join_rows(const Ranked& ranked) const;

  const Store& store_;
  const FaissIndex& vectors_;
};

}  // namespace kvrag

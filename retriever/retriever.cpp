#include "retriever/retriever.h"

#include <map>

#include "core/enum_names.h"
#include "core/error.h"
#include "retriever/fusion.h"

namespace kvrag {
namespace {

constexpr const char* kRetrieverNames[] = {"dense", "bm25", "hybrid"};

}  // namespace

const char* retriever_name(RetrieverKind kind) { return kRetrieverNames[static_cast<int>(kind)]; }
RetrieverKind parse_retriever(const std::string& name) {
  return parse_enum<RetrieverKind>(name, kRetrieverNames, "retriever");
}

Retriever::Retriever(const Store& store, const FaissIndex& vectors)
    : store_(store), vectors_(vectors) {}

std::vector<RetrievedChunk> Retriever::search(const Query& query, int64_t k,
                                              RetrieverKind kind) const {
  KVRAG_CHECK(k >= 1, kInvalidArgument, "k must be >= 1, got ", k);
  switch (kind) {
    case RetrieverKind::kDense:
      return join_rows(dense(query, k));
    case RetrieverKind::kBm25:
      return join_rows(bm25(query, k));
    case RetrieverKind::kHybrid: {
      // Deeper than k: the fusion reads the spread of each list's scores
      // (retriever/fusion.h says how and why).
      const int64_t depth = hybrid_candidates(k);
      return join_rows(hybrid_fusion(with_documents(dense(query, depth)),
                                     with_documents(bm25(query, depth)), k));
    }
  }
  KVRAG_THROW(kInvalidArgument, "unknown retriever kind ", static_cast<int>(kind));
}

Retriever::Ranked Retriever::dense(const Query& query, int64_t depth) const {
  KVRAG_CHECK(!query.embedding.empty(), kInvalidArgument,
              "dense retrieval needs the query's embedding");
  Ranked ranked;
  for (const ScoredId& hit : vectors_.search(query.embedding, depth)) {
    ranked.emplace_back(hit.id, hit.score);
  }
  return ranked;
}

Retriever::Ranked Retriever::bm25(const Query& query, int64_t depth) const {
  return store_.search_bm25(query.text, depth);
}

std::vector<Candidate> Retriever::with_documents(const Ranked& ranked) const {
  std::vector<int64_t> ids;
  for (const auto& [chunk_id, score] : ranked) ids.push_back(chunk_id);
  const std::vector<int64_t> documents = store_.chunk_documents(ids);
  std::vector<Candidate> out;
  for (size_t i = 0; i < ranked.size(); ++i) {
    out.push_back(
        {.chunk_id = ranked[i].first, .document_id = documents[i], .score = ranked[i].second});
  }
  return out;
}

std::vector<RetrievedChunk> Retriever::join_rows(const Ranked& ranked) const {
  // Several chunks of one document are common: read each document once.
  std::map<int64_t, DocumentRecord> documents;
  std::vector<RetrievedChunk> chunks;
  for (const auto& [chunk_id, score] : ranked) {
    const ChunkRecord record = store_.chunk(chunk_id);
    auto doc = documents.find(record.document_id);
    if (doc == documents.end()) {
      doc = documents.emplace(record.document_id, store_.document(record.document_id)).first;
    }
    chunks.push_back({.chunk_id = chunk_id,
                      .document_id = record.document_id,
                      .external_id = doc->second.external_id,
                      .title = doc->second.title,
                      .text = record.text,
                      .position = record.position,
                      .score = score});
  }
  return chunks;
}

}  // namespace kvrag

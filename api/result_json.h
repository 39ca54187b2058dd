// The JSON bodies built from the pipeline's results: what the HTTP API
// answers and what `kvrag ask|search --json` prints, from one place, so that
// neither the server nor the CLI borrows the other's code.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/rag_pipeline.h"

namespace kvrag::api {

// {document_id, chunk_id, title, text, score}: document_id is the caller's
// (external) id.
nlohmann::json chunk_json(const RetrievedChunk& chunk);
// {answer, mode, sources: [chunk_json + attention], question_attention,
//  timings_ms: {retrieve, load_kv, encode, first_token, decode, total},
//  generated_tokens, tokens_per_s, kv_cache: {hits, misses}}.
nlohmann::json answer_json(const Answer& answer);
// {results: [chunk_json…], timings_ms: {retrieve}}.
nlohmann::json search_json(const std::vector<RetrievedChunk>& chunks, double retrieve_ms);
// {ids, added, replaced, unchanged, chunks_added, chunks_reused, kv_bytes_added, seconds}.
nlohmann::json index_report_json(const IndexReport& report);
// {id, title, source, text, metadata, chunks: [{chunk_id, position, text, tokens}]}.
nlohmann::json document_json(const DocumentRecord& doc, const std::vector<ChunkRecord>& chunks);
// {documents, chunks, kv_bytes, kv_bytes_per_token, memory_tokens, store_file_bytes,
//  index_type, vectors, cache, kv_dtype, model: {dir, fingerprint},
//  embedder: {dir, fingerprint} or null, embedding_dim,
//  kv_cache: {bytes_used, hits, misses}}.
nlohmann::json stats_json(const IndexStats& stats);

// `value` as compact JSON; invalid UTF-8 (a generated piece that splits a
// character) is replaced by U+FFFD rather than throwing mid-response.
std::string dump(const nlohmann::json& value);

}  // namespace kvrag::api

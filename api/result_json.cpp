#include "api/result_json.h"

#include "core/error.h"
#include "core/json_input.h"
#include "core/weight_matrix.h"

namespace kvrag::api {

using nlohmann::json;

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json chunk_json(const RetrievedChunk& chunk) {
  return {{"document_id", chunk.external_id},
          {"chunk_id", chunk.chunk_id},
          {"position", chunk.position},
          {"title", chunk.title},
          {"text", chunk.text},
          {"score", chunk.score}};
}

json answer_json(const Answer& answer) {
  json sources = json::array();
  for (const Source& source : answer.sources) {
    json item = chunk_json(source.chunk);
    item["attention"] = source.attention;
    item["prior"] = source.prior ? json(*source.prior) : json(nullptr);
    sources.push_back(std::move(item));
  }
  const AskTimings& t = answer.timings;
  return {{"answer", answer.text},
          {"mode", mode_name(answer.mode)},
          {"sources", std::move(sources)},
          {"question_attention", answer.question_attention},
          {"timings_ms",
           {{"retrieve", t.retrieve_ms},
            {"load_kv", t.load_kv_ms},
            {"encode", t.encode_ms},
            {"first_token", t.first_token_ms},
            {"decode", t.decode_ms},
            {"total", t.total_ms}}},
          {"generated_tokens", t.generated_tokens},
          {"tokens_per_s", t.tokens_per_s},
          {"memory_tokens", t.memory_tokens},
          {"kv_cache", {{"hits", t.kv_cache_hits}, {"misses", t.kv_cache_misses}}}};
}

json search_json(const std::vector<RetrievedChunk>& chunks, double retrieve_ms) {
  json results = json::array();
  for (const RetrievedChunk& chunk : chunks) results.push_back(chunk_json(chunk));
  return {{"results", std::move(results)}, {"timings_ms", {{"retrieve", retrieve_ms}}}};
}

json index_report_json(const IndexReport& report) {
  json ids = json::array();
  for (const auto& [external_id, row_id] : report.ids) ids.push_back(external_id);
  return {{"ids", std::move(ids)},
          {"added", report.documents_added},
          {"replaced", report.documents_replaced},
          {"unchanged", report.documents_unchanged},
          {"chunks_added", report.chunks_added},
          {"chunks_reused", report.chunks_reused},
          {"kv_bytes_added", report.memory_bytes_added},
          {"seconds", report.seconds}};
}

json document_json(const DocumentRecord& doc, const std::vector<ChunkRecord>& chunks) {
  json chunk_list = json::array();
  for (const ChunkRecord& chunk : chunks) {
    chunk_list.push_back({{"chunk_id", chunk.id},
                          {"position", chunk.position},
                          {"text", chunk.text},
                          {"tokens", chunk.token_ids.size()}});
  }
  // Stored metadata is JSON the server or the corpus reader wrote; a row
  // that does not parse (or nests too deep to copy and dump safely) is shown
  // as null rather than failing the request.
  json metadata;
  try {
    metadata = parse_json_bounded(doc.metadata_json);
  } catch (const Error&) {
    metadata = nullptr;
  }
  return {{"id", doc.external_id}, {"title", doc.title},   {"source", doc.source},
          {"text", doc.text},      {"metadata", metadata}, {"chunks", std::move(chunk_list)}};
}

json stats_json(const IndexStats& stats) {
  return {{"documents", stats.store.documents},
          {"chunks", stats.store.chunks},
          {"kv_bytes", stats.store.memory_bytes},
          {"kv_bytes_per_token", stats.memory_bytes_per_token},
          {"memory_tokens", stats.store.memory_tokens},
          {"store_file_bytes", stats.store.file_bytes},
          {"index_type", stats.faiss_factory},
          {"vectors", stats.faiss_vectors},
          {"cache", cache_granularity_name(stats.settings.cache)},
          {"kv_dtype", kv_dtype_name(stats.settings.kv_dtype)},
          {"model",
           {{"dir", stats.model_dir},
            {"fingerprint", stats.model_fingerprint},
            {"weights", weight_dtype_name(stats.model_weights)}}},
          // null when the model's encoder embeds (no separate embedder).
          {"embedder",
           stats.embedder_dir.empty()
               ? json(nullptr)
               : json{{"dir", stats.embedder_dir}, {"fingerprint", stats.embedder_fingerprint}}},
          {"embedding_dim", stats.embedding_dim},
          {"kv_cache",
           {{"bytes_used", stats.kv_cache_bytes_used},
            {"hits", stats.kv_cache_hits},
            {"misses", stats.kv_cache_misses},
            {"reencoded", stats.memories_reencoded}}}};
}

}  // namespace kvrag::api

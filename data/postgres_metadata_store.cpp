#include "data/postgres_metadata_store.h"

#include <cctype>
#include <limits>
#include <unordered_map>

#include "core/error.h"
#include "data/stored_bytes.h"
#include "data/text_normalization.h"

namespace kvrag {
namespace {

constexpr int64_t kEmbeddingBatch = 4096;

// The query's words (lexical_query_words) that are valid UTF-8: PostgreSQL
// rejects an invalid one where FTS5 would just not match it.
std::vector<std::string> query_words(const std::string& text) {
  std::vector<std::string> words = lexical_query_words(text);
  std::erase_if(words, [](const std::string& word) { return utf8_error(word).has_value(); });
  return words;
}

DocumentRecord read_document(const pg::Result& r, int row) {
  DocumentRecord d;
  d.id = r.integer(row, 0);
  d.external_id = r.text(row, 1);
  d.title = r.text(row, 2);
  d.source = r.text(row, 3);
  d.text = r.text(row, 4);
  d.metadata_json = r.text(row, 5);
  d.content_hash = r.text(row, 6);
  d.chunks = r.integer(row, 7);
  return d;
}

constexpr const char* kDocumentColumns =
    "SELECT d.id, d.external_id, d.title, d.source, d.text, d.metadata, d.content_hash, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) FROM documents d ";

ChunkRecord read_chunk(const pg::Result& r, int row) {
  ChunkRecord c;
  c.id = r.integer(row, 0);
  c.document_id = r.integer(row, 1);
  c.position = r.integer(row, 2);
  c.text = r.text(row, 3);
  c.token_ids = from_bytes<int32_t>(r.bytes(row, 4));
  c.content_hash = r.text(row, 5);
  return c;
}

constexpr const char* kChunkColumns =
    "SELECT id, document_id, position, text, token_ids, content_hash FROM chunks ";

// Lexical search. BM25 is not available in PostgreSQL (no extension for it
// ships with Debian's postgresql-15), so the score is ts_rank with length
// normalisation 1 (÷ 1 + log length): a sum over the matched query words
// of their frequency in the chunk, without BM25's inverse document
// frequency. The scale differs from SQLite's −bm25(), and that is fine for
// hybrid search, as retriever/fusion.cpp shows: each list's scores become
// robust z-scores over that list alone (z = (s − median) / σ, σ the larger
// of 1.4826 · MAD and a share of the list's range, shifted by the last
// candidate's z), which a positive affine change of scale leaves as they
// are; the one absolute constant, σ's floor of 1e-12, stays below σ for
// any list whose ts_rank scores are not all equal (σ >= 0.05 × range, and
// two float4 values near ts_rank's 0.01..1 differ by 1e-9 at least). Lists
// of 1 or 2 chunks get u = 1 either way. Two things do change: with one list empty, the lexical
// list's own scores are what a caller sees (ts_rank's, not BM25's), and the order within the
// lexical list differs (no IDF: a common word counts as much as a rare one), so the recall figures
// in retriever/fusion.h, measured with BM25, do not carry over.
//
// The query is an OR of the query's words, each made a tsquery by
// plainto_tsquery (which reads its input as text, never as tsquery
// syntax) and passed as an element of one array parameter: no input can
// change the query's structure. Words that are stop words drop out.
constexpr const char* kLexicalSearch = R"sql(
WITH query AS (
  SELECT string_agg('(' || w::text || ')', ' | ')::tsquery AS q
  FROM unnest($1::text[]) AS word, plainto_tsquery('kvrag_english', word) AS w
  WHERE numnode(w) > 0)
SELECT c.id, ts_rank(c.lexemes, query.q, 1) AS score
FROM chunks c, query
WHERE c.lexemes @@ query.q
ORDER BY score DESC, c.id
LIMIT $2)sql";

}  // namespace

PostgresMetadataStore::PostgresMetadataStore(std::shared_ptr<PostgresStore> store)
    : store_(std::move(store)) {}

std::optional<std::string> PostgresMetadataStore::meta(const std::string& key) const {
  const pg::Result r = store_->read("SELECT value FROM meta WHERE key = $1", {key});
  if (r.rows() == 0) return std::nullopt;
  return r.text(0, 0);
}

void PostgresMetadataStore::set_meta(const std::string& key, const std::string& value) {
  store_->write(
      "INSERT INTO meta(key, value) VALUES($1, $2) "
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      {key, value});
}

void PostgresMetadataStore::write_transaction(const std::function<void()>& body) {
  store_->write_transaction(body);
}

int64_t PostgresMetadataStore::advance_generation() {
  const pg::Result r = store_->write(
      "INSERT INTO meta(key, value) VALUES($1, '1') "
      "ON CONFLICT(key) DO UPDATE SET value = (meta.value::bigint + 1)::text "
      "RETURNING value::bigint",
      {kGenerationMetaKey});
  return r.integer(0, 0);
}

std::optional<DocumentRecord> PostgresMetadataStore::find_document(
    const std::string& external_id) const {
  const pg::Result r =
      store_->read(std::string(kDocumentColumns) + "WHERE d.external_id = $1", {external_id});
  if (r.rows() == 0) return std::nullopt;
  return read_document(r, 0);
}

DocumentRecord PostgresMetadataStore::document(int64_t id) const {
  const pg::Result r = store_->read(std::string(kDocumentColumns) + "WHERE d.id = $1", {id});
  KVRAG_CHECK(r.rows() == 1, kNotFound, "no document with id ", id);
  return read_document(r, 0);
}

int64_t PostgresMetadataStore::add_document(const Document& doc, const std::string& content_hash) {
  const pg::Result r = store_->write(
      "INSERT INTO documents(external_id, title, source, text, metadata, content_hash) "
      "VALUES($1, $2, $3, $4, $5, $6) RETURNING id",
      {doc.external_id, doc.title, doc.source, doc.text,
       doc.metadata_json.empty() ? std::string("{}") : doc.metadata_json, content_hash});
  return r.integer(0, 0);
}

// One statement, so it is atomic on its own: chunk_blobs rows and lexical
// entries (a column of chunks) go with the chunks.
std::vector<int64_t> PostgresMetadataStore::remove_document(int64_t id) {
  const pg::Result r = store_->write(
      "WITH gone AS (DELETE FROM chunks WHERE document_id = $1 RETURNING id, position), "
      "doc AS (DELETE FROM documents WHERE id = $1) "
      "SELECT id FROM gone ORDER BY position, id",
      {id});
  std::vector<int64_t> chunk_ids;
  for (int row = 0; row < r.rows(); ++row) chunk_ids.push_back(r.integer(row, 0));
  return chunk_ids;
}

int64_t PostgresMetadataStore::add_chunk(int64_t document_id, const NewChunk& chunk) {
  const pg::Result r = store_->write(
      "INSERT INTO chunks(document_id, position, text, token_ids, content_hash, embedding) "
      "VALUES($1, $2, $3, $4, $5, $6) RETURNING id",
      {document_id, chunk.position, chunk.text, pg::Param::bytes(as_bytes(chunk.token_ids)),
       chunk.content_hash, pg::Param::bytes(as_bytes(chunk.embedding))});
  return r.integer(0, 0);
}

std::optional<StoredEncoding> PostgresMetadataStore::find_encoding(
    const std::string& content_hash) const {
  const pg::Result r =
      store_->read("SELECT id, embedding FROM chunks WHERE content_hash = $1 ORDER BY id LIMIT 1",
                   {content_hash});
  if (r.rows() == 0) return std::nullopt;
  return StoredEncoding{r.integer(0, 0), from_bytes<float>(r.bytes(0, 1))};
}

ChunkRecord PostgresMetadataStore::chunk(int64_t id) const {
  const pg::Result r = store_->read(std::string(kChunkColumns) + "WHERE id = $1", {id});
  KVRAG_CHECK(r.rows() == 1, kNotFound, "no chunk with id ", id);
  return read_chunk(r, 0);
}

std::vector<ChunkRecord> PostgresMetadataStore::document_chunks(int64_t document_id) const {
  const pg::Result r = store_->read(
      std::string(kChunkColumns) + "WHERE document_id = $1 ORDER BY position", {document_id});
  std::vector<ChunkRecord> out;
  for (int row = 0; row < r.rows(); ++row) out.push_back(read_chunk(r, row));
  return out;
}

std::vector<int64_t> PostgresMetadataStore::chunk_documents(
    const std::vector<int64_t>& chunk_ids) const {
  if (chunk_ids.empty()) return {};
  const pg::Result r =
      store_->read("SELECT id, document_id FROM chunks WHERE id = ANY($1::bigint[])",
                   {pg::int_array(chunk_ids)});
  std::unordered_map<int64_t, int64_t> document_of;
  for (int row = 0; row < r.rows(); ++row) document_of[r.integer(row, 0)] = r.integer(row, 1);
  std::vector<int64_t> out;
  out.reserve(chunk_ids.size());
  for (const int64_t id : chunk_ids) {
    const auto found = document_of.find(id);
    KVRAG_CHECK(found != document_of.end(), kNotFound, "no chunk ", id);
    out.push_back(found->second);
  }
  return out;
}

std::vector<std::vector<float>> PostgresMetadataStore::chunk_embeddings(
    const std::vector<int64_t>& chunk_ids) const {
  if (chunk_ids.empty()) return {};
  const pg::Result r = store_->read("SELECT id, embedding FROM chunks WHERE id = ANY($1::bigint[])",
                                    {pg::int_array(chunk_ids)});
  std::unordered_map<int64_t, int> row_of;
  for (int row = 0; row < r.rows(); ++row) row_of[r.integer(row, 0)] = row;
  std::vector<std::vector<float>> out;
  out.reserve(chunk_ids.size());
  for (const int64_t id : chunk_ids) {
    const auto found = row_of.find(id);
    KVRAG_CHECK(found != row_of.end(), kNotFound, "no chunk ", id);
    out.push_back(from_bytes<float>(r.bytes(found->second, 1)));
  }
  return out;
}

void PostgresMetadataStore::for_each_embedding(
    const std::function<void(int64_t, std::span<const float>)>& fn) const {
  int64_t after = std::numeric_limits<int64_t>::min();
  while (true) {
    const pg::Result r =
        store_->read("SELECT id, embedding FROM chunks WHERE id > $1 ORDER BY id LIMIT $2",
                     {after, kEmbeddingBatch});
    for (int row = 0; row < r.rows(); ++row) {
      after = r.integer(row, 0);
      const std::vector<float> embedding = from_bytes<float>(r.bytes(row, 1));
      fn(after, embedding);
    }
    if (r.rows() < kEmbeddingBatch) return;
  }
}

std::vector<std::pair<int64_t, double>> PostgresMetadataStore::search_lexical(
    const std::string& query, int64_t k) const {
  KVRAG_CHECK(k >= 0, kInvalidArgument, "search_lexical: k must be >= 0, got ", k);
  const std::vector<std::string> words = query_words(query);
  if (words.empty() || k == 0) return {};
  const pg::Result r = store_->read(kLexicalSearch, {pg::text_array(words), k});
  std::vector<std::pair<int64_t, double>> out;
  for (int row = 0; row < r.rows(); ++row) out.emplace_back(r.integer(row, 0), r.real(row, 1));
  return out;
}

MetadataStats PostgresMetadataStore::stats() const {
  const pg::Result r = store_->read(
      "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks), "
      "(SELECT coalesce(sum(octet_length(text)), 0)::bigint FROM documents), "
      "(SELECT coalesce(sum(octet_length(embedding)), 0)::bigint FROM chunks), "
      "(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c "
      " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r')",
      {store_->schema()});
  MetadataStats s;
  s.documents = r.integer(0, 0);
  s.chunks = r.integer(0, 1);
  s.text_bytes = r.integer(0, 2);
  s.embedding_bytes = r.integer(0, 3);
  s.storage_bytes = r.integer(0, 4);
  return s;
}

}  // namespace kvrag

#include "data/sqlite_metadata_store.h"

#include "core/error.h"
#include "data/sqlite.h"
#include "data/stored_bytes.h"
#include "data/text_normalization.h"

namespace kvrag {
namespace {

// FTS5 query of the words of free text (lexical_query_words), each quoted
// and OR-ed, so user input can never be FTS5 syntax.
std::string fts_query(const std::string& text) {
  std::string query;
  for (const std::string& word : lexical_query_words(text)) {
    if (!query.empty()) query += " OR ";
    query += "\"" + word + "\"";
  }
  return query;
}

DocumentRecord read_document(const sql::Statement& st) {
  DocumentRecord d;
  d.id = st.column_int(0);
  d.external_id = st.column_text(1);
  d.title = st.column_text(2);
  d.source = st.column_text(3);
  d.text = st.column_text(4);
  d.metadata_json = st.column_text(5);
  d.content_hash = st.column_text(6);
  d.chunks = st.column_int(7);
  return d;
}

constexpr const char* kDocumentColumns =
    "SELECT d.id, d.external_id, d.title, d.source, d.text, d.metadata, d.content_hash, "
    "(SELECT count(*) FROM chunks c WHERE c.document_id = d.id) FROM documents d ";

ChunkRecord read_chunk(const sql::Statement& st) {
  ChunkRecord c;
  c.id = st.column_int(0);
  c.document_id = st.column_int(1);
  c.position = st.column_int(2);
  c.text = st.column_text(3);
  c.token_ids = from_bytes<int32_t>(st.column_blob_view(4));
  c.content_hash = st.column_text(5);
  return c;
}

constexpr const char* kChunkColumns =
    "SELECT id, document_id, position, text, token_ids, content_hash FROM chunks ";

}  // namespace

SqliteMetadataStore::SqliteMetadataStore(std::shared_ptr<SqliteStore> store)
    : store_(std::move(store)) {}

std::optional<std::string> SqliteMetadataStore::meta(const std::string& key) const {
  return store_->meta(key);
}

void SqliteMetadataStore::set_meta(const std::string& key, const std::string& value) {
  store_->set_meta(key, value);
}

void SqliteMetadataStore::write_transaction(const std::function<void()>& body) {
  const auto held = store_->lock();
  sql::Transaction txn(store_->db());
  body();
  txn.commit();
}

int64_t SqliteMetadataStore::advance_generation() {
  const auto held = store_->lock();
  const int64_t next = generation() + 1;
  set_meta(kGenerationMetaKey, std::to_string(next));
  return next;
}

std::optional<DocumentRecord> SqliteMetadataStore::find_document(
    const std::string& external_id) const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(), std::string(kDocumentColumns) + "WHERE d.external_id = ?");
  st.bind(1, external_id);
  if (!st.step()) return std::nullopt;
  return read_document(st);
}

DocumentRecord SqliteMetadataStore::document(int64_t id) const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(), std::string(kDocumentColumns) + "WHERE d.id = ?");
  st.bind(1, id);
  KVRAG_CHECK(st.step(), kNotFound, "no document with id ", id);
  return read_document(st);
}

int64_t SqliteMetadataStore::add_document(const Document& doc, const std::string& content_hash) {
  const auto held = store_->lock();
  sql::Statement st(store_->db(),
                    "INSERT INTO documents(external_id, title, source, text, metadata, "
                    "content_hash) VALUES(?, ?, ?, ?, ?, ?)");
  st.bind(1, doc.external_id)
      .bind(2, doc.title)
      .bind(3, doc.source)
      .bind(4, doc.text)
      .bind(5, doc.metadata_json.empty() ? std::string("{}") : doc.metadata_json)
      .bind(6, content_hash)
      .run();
  return store_->db().last_insert_rowid();
}

std::vector<int64_t> SqliteMetadataStore::remove_document(int64_t id) {
  const auto held = store_->lock();
  sql::Database& db = store_->db();
  sql::Transaction txn(db);
  std::vector<int64_t> chunk_ids;
  {
    sql::Statement st(db, "SELECT id FROM chunks WHERE document_id = ?");
    st.bind(1, id);
    while (st.step()) chunk_ids.push_back(st.column_int(0));
  }
  sql::Statement fts(db, "DELETE FROM chunks_fts WHERE rowid = ?");
  for (int64_t chunk_id : chunk_ids) {
    fts.bind(1, chunk_id).run();
  }
  // chunks and chunk_kv go with the document through ON DELETE CASCADE.
  sql::Statement st(db, "DELETE FROM documents WHERE id = ?");
  st.bind(1, id).run();
  txn.commit();
  return chunk_ids;
}

int64_t SqliteMetadataStore::add_chunk(int64_t document_id, const NewChunk& chunk) {
  const auto held = store_->lock();
  sql::Database& db = store_->db();
  sql::Transaction txn(db);
  sql::Statement st(db,
                    "INSERT INTO chunks(document_id, position, text, token_ids, content_hash, "
                    "embedding) VALUES(?, ?, ?, ?, ?, ?)");
  st.bind(1, document_id)
      .bind(2, chunk.position)
      .bind(3, chunk.text)
      .bind_blob(4, as_bytes(chunk.token_ids))
      .bind(5, chunk.content_hash)
      .bind_blob(6, as_bytes(chunk.embedding))
      .run();
  const int64_t chunk_id = db.last_insert_rowid();
  sql::Statement fts(db, "INSERT INTO chunks_fts(rowid, text) VALUES(?, ?)");
  fts.bind(1, chunk_id).bind(2, chunk.text).run();
  txn.commit();
  return chunk_id;
}

std::optional<StoredEncoding> SqliteMetadataStore::find_encoding(
    const std::string& content_hash) const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(),
                    "SELECT id, embedding FROM chunks WHERE content_hash = ? ORDER BY id LIMIT 1");
  st.bind(1, content_hash);
  if (!st.step()) return std::nullopt;
  return StoredEncoding{st.column_int(0), from_bytes<float>(st.column_blob_view(1))};
}

ChunkRecord SqliteMetadataStore::chunk(int64_t id) const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(), std::string(kChunkColumns) + "WHERE id = ?");
  st.bind(1, id);
  KVRAG_CHECK(st.step(), kNotFound, "no chunk with id ", id);
  return read_chunk(st);
}

std::vector<ChunkRecord> SqliteMetadataStore::document_chunks(int64_t document_id) const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(),
                    std::string(kChunkColumns) + "WHERE document_id = ? ORDER BY position");
  st.bind(1, document_id);
  std::vector<ChunkRecord> out;
  while (st.step()) out.push_back(read_chunk(st));
  return out;
}

std::vector<int64_t> SqliteMetadataStore::chunk_documents(
    const std::vector<int64_t>& chunk_ids) const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(), "SELECT document_id FROM chunks WHERE id = ?");
  std::vector<int64_t> out;
  out.reserve(chunk_ids.size());
  for (const int64_t id : chunk_ids) {
    st.bind(1, id);
    KVRAG_CHECK(st.step(), kNotFound, "no chunk ", id);
    out.push_back(st.column_int(0));
    st.reset();
  }
  return out;
}

std::vector<std::vector<float>> SqliteMetadataStore::chunk_embeddings(
    const std::vector<int64_t>& chunk_ids) const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(), "SELECT embedding FROM chunks WHERE id = ?");
  std::vector<std::vector<float>> out;
  out.reserve(chunk_ids.size());
  for (const int64_t id : chunk_ids) {
    st.bind(1, id);
    KVRAG_CHECK(st.step(), kNotFound, "no chunk ", id);
    out.push_back(from_bytes<float>(st.column_blob_view(0)));
    st.reset();
  }
  return out;
}

void SqliteMetadataStore::for_each_embedding(
    const std::function<void(int64_t, std::span<const float>)>& fn) const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(), "SELECT id, embedding FROM chunks ORDER BY id");
  while (st.step()) {
    const std::vector<float> embedding = from_bytes<float>(st.column_blob_view(1));
    fn(st.column_int(0), embedding);
  }
}

std::vector<std::pair<int64_t, double>> SqliteMetadataStore::search_lexical(
    const std::string& query, int64_t k) const {
  KVRAG_CHECK(k >= 0, kInvalidArgument, "search_lexical: k must be >= 0, got ", k);
  const std::string match = fts_query(query);
  if (match.empty() || k == 0) return {};
  const auto held = store_->lock();
  sql::Statement st(store_->db(),
                    "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                    "ORDER BY bm25(chunks_fts), rowid LIMIT ?");
  st.bind(1, match).bind(2, k);
  std::vector<std::pair<int64_t, double>> out;
  while (st.step()) out.emplace_back(st.column_int(0), -st.column_double(1));
  return out;
}

MetadataStats SqliteMetadataStore::stats() const {
  const auto held = store_->lock();
  sql::Statement st(store_->db(),
                    "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks), "
                    "(SELECT coalesce(sum(length(text)), 0) FROM documents), "
                    "(SELECT coalesce(sum(length(embedding)), 0) FROM chunks)");
  st.step();
  MetadataStats s;
  s.documents = st.column_int(0);
  s.chunks = st.column_int(1);
  s.text_bytes = st.column_int(2);
  s.embedding_bytes = st.column_int(3);
  s.storage_bytes = store_->file_bytes();
  return s;
}

}  // namespace kvrag

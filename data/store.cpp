#include "data/store.h"

#include <cctype>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/sqlite.h"

namespace kvrag {
namespace {

using Lock = std::lock_guard<std::recursive_mutex>;

// Schema of DESIGN.md. chunk_kv holds whatever the index caches per chunk
// (per-layer K/V or the encoder output, named by meta 'cache'); the FTS5
// table (kFtsTable) keeps its rowid equal to the chunk id. AUTOINCREMENT: an id is never
// reused after a delete, so nothing keyed by chunk id (the RAM K/V cache, a
// FAISS entry not yet removed) can ever name another chunk's data.
constexpr const char* kMetaSchema =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS documents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  external_id TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  source TEXT NOT NULL,
  text TEXT NOT NULL,
  metadata TEXT NOT NULL,
  content_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  text TEXT NOT NULL,
  token_ids BLOB NOT NULL,
  content_hash TEXT NOT NULL,
  embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id, position);
CREATE INDEX IF NOT EXISTS chunks_by_hash ON chunks(content_hash);
CREATE TABLE IF NOT EXISTS chunk_kv (
  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
  tokens INTEGER NOT NULL,
  data BLOB NOT NULL);
)sql";

// BM25's tokenizer: unicode61 folds case and, with remove_diacritics 2, all
// diacritics ("café" finds "cafe"); porter stems English ("strings" finds
// "string"). Measured with scripts/retrieval_lab/bm25_lab.py against plain
// unicode61, document recall @5/@20: SQuAD dev +1.5/+1.7 points, Debian man
// pages +2.2/+1.7, sample −0.3/±0. Schema version 1 had plain unicode61.
constexpr const char* kFtsTable =
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, tokenize = 'porter unicode61 "
    "remove_diacritics 2')";

template <typename T>
std::span<const uint8_t> as_bytes(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

template <typename T>
std::vector<T> from_bytes(std::span<const uint8_t> bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

// FTS5 query of the words of free text: each run of letters and digits
// quoted and OR-ed, so user input can never be FTS5 syntax.
std::string fts_query(const std::string& text) {
  std::string query;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!query.empty()) query += " OR ";
    query += "\"" + word + "\"";
    word.clear();
  };
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (std::isalnum(byte) || byte >= 0x80) {
      word += ch;
    } else {
      flush();
    }
  }
  flush();
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

Store::Store(const std::string& path) : path_(path) {
  db_ = std::make_unique<sql::Database>(path);
  // WAL lets readers (asks) go on while a writer indexes. SQLite answers
  // with the mode it is in, which stays the old one where WAL cannot work
  // (a network file system without shared memory).
  {
    sql::Statement wal(*db_, "PRAGMA journal_mode=WAL");
    KVRAG_CHECK(wal.step() && wal.column_text(0) == "wal", kIo, path_,
                ": SQLite cannot use WAL journal mode here (it stays in '", wal.column_text(0),
                "'); put the index on a local file system");
  }
  db_->exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  // Reads of checkpointed pages come from a memory map rather than a
  // read() per page: a chunk's K/V blob spans hundreds of overflow pages.
  // SQLite caps the size at its compile-time maximum (2 GiB by default);
  // writes still go through write(), so crash safety is unchanged.
  db_->exec("PRAGMA mmap_size=2147418112;");
  create_schema();
}

Store::~Store() = default;

void Store::create_schema() {
  Lock lock(mutex_);
  sql::Transaction txn(*db_);
  // The version is checked before anything else is created, so a store of
  // another version fails with this message rather than an SQL error.
  db_->exec(kMetaSchema);
  const auto version = meta("schema_version");
  if (!version) {
    sql::Statement tables(*db_, "SELECT count(*) FROM sqlite_master WHERE tbl_name <> 'meta'");
    tables.step();
    KVRAG_CHECK(tables.column_int(0) == 0, kFormat, path_,
                ": not a kvrag store (an SQLite database without a schema version)");
    set_meta("schema_version", std::to_string(kSchemaVersion));
  } else if (*version == "1") {
    migrate_from_version_1();
  } else {
    KVRAG_CHECK(*version == std::to_string(kSchemaVersion), kFormat, path_,
                ": store schema version ", *version, ", this build reads version ", kSchemaVersion,
                "; rebuild the index with this version of kvrag");
  }
  db_->exec(kSchema);
  db_->exec(kFtsTable);
  txn.commit();
}

void Store::migrate_from_version_1() {
  // Version 1 differs only in the FTS tokenizer. The FTS table is derived
  // from the chunk texts, so it is rebuilt from them, inside the caller's
  // transaction: a failure leaves the version 1 store as it was.
  db_->exec("DROP TABLE IF EXISTS chunks_fts");
  db_->exec(kFtsTable);
  db_->exec("INSERT INTO chunks_fts(rowid, text) SELECT id, text FROM chunks ORDER BY id");
  set_meta("schema_version", std::to_string(kSchemaVersion));
}

std::optional<std::string> Store::meta(const std::string& key) const {
  Lock lock(mutex_);
  sql::Statement st(*db_, "SELECT value FROM meta WHERE key = ?");
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  return st.column_text(0);
}

void Store::set_meta(const std::string& key, const std::string& value) {
  Lock lock(mutex_);
  sql::Statement st(*db_,
                    "INSERT INTO meta(key, value) VALUES(?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  st.bind(1, key).bind(2, value).run();
}

void Store::write_transaction(const std::function<void()>& body) {
  // Without the mutex another thread's statements would run inside this
  // transaction, since all share one connection.
  Lock lock(mutex_);
  sql::Transaction txn(*db_);
  body();
  txn.commit();
}

std::optional<DocumentRecord> Store::find_document(const std::string& external_id) const {
  Lock lock(mutex_);
  sql::Statement st(*db_, std::string(kDocumentColumns) + "WHERE d.external_id = ?");
  st.bind(1, external_id);
  if (!st.step()) return std::nullopt;
  return read_document(st);
}

DocumentRecord Store::document(int64_t id) const {
  Lock lock(mutex_);
  sql::Statement st(*db_, std::string(kDocumentColumns) + "WHERE d.id = ?");
  st.bind(1, id);
  KVRAG_CHECK(st.step(), kNotFound, "no document with id ", id);
  return read_document(st);
}

int64_t Store::add_document(const Document& doc, const std::string& content_hash) {
  Lock lock(mutex_);
  sql::Statement st(*db_,
                    "INSERT INTO documents(external_id, title, source, text, metadata, "
                    "content_hash) VALUES(?, ?, ?, ?, ?, ?)");
  st.bind(1, doc.external_id)
      .bind(2, doc.title)
      .bind(3, doc.source)
      .bind(4, doc.text)
      .bind(5, doc.metadata_json.empty() ? std::string("{}") : doc.metadata_json)
      .bind(6, content_hash)
      .run();
  return db_->last_insert_rowid();
}

std::vector<int64_t> Store::remove_document(int64_t id) {
  Lock lock(mutex_);
  sql::Transaction txn(*db_);
  std::vector<int64_t> chunk_ids;
  {
    sql::Statement st(*db_, "SELECT id FROM chunks WHERE document_id = ?");
    st.bind(1, id);
    while (st.step()) chunk_ids.push_back(st.column_int(0));
  }
  sql::Statement fts(*db_, "DELETE FROM chunks_fts WHERE rowid = ?");
  for (int64_t chunk_id : chunk_ids) {
    fts.bind(1, chunk_id).run();
  }
  // chunks and chunk_kv go with the document through ON DELETE CASCADE.
  sql::Statement st(*db_, "DELETE FROM documents WHERE id = ?");
  st.bind(1, id).run();
  txn.commit();
  return chunk_ids;
}

int64_t Store::add_chunk(int64_t document_id, const NewChunk& chunk) {
  Lock lock(mutex_);
  sql::Transaction txn(*db_);
  sql::Statement st(*db_,
                    "INSERT INTO chunks(document_id, position, text, token_ids, content_hash, "
                    "embedding) VALUES(?, ?, ?, ?, ?, ?)");
  st.bind(1, document_id)
      .bind(2, chunk.position)
      .bind(3, chunk.text)
      .bind_blob(4, as_bytes(chunk.token_ids))
      .bind(5, chunk.content_hash)
      .bind_blob(6, as_bytes(chunk.embedding))
      .run();
  const int64_t chunk_id = db_->last_insert_rowid();
  sql::Statement kv(*db_, "INSERT INTO chunk_kv(chunk_id, tokens, data) VALUES(?, ?, ?)");
  kv.bind(1, chunk_id).bind(2, chunk.memory_tokens).bind_blob(3, chunk.memory_blob).run();
  sql::Statement fts(*db_, "INSERT INTO chunks_fts(rowid, text) VALUES(?, ?)");
  fts.bind(1, chunk_id).bind(2, chunk.text).run();
  txn.commit();
  return chunk_id;
}

std::optional<StoredEncoding> Store::find_encoding(const std::string& content_hash) const {
  Lock lock(mutex_);
  sql::Statement st(*db_,
                    "SELECT c.embedding, k.data, k.tokens FROM chunks c JOIN chunk_kv k ON "
                    "k.chunk_id = c.id WHERE c.content_hash = ? LIMIT 1");
  st.bind(1, content_hash);
  if (!st.step()) return std::nullopt;
  return StoredEncoding{from_bytes<float>(st.column_blob_view(0)), st.column_blob(1),
                        st.column_int(2)};
}

ChunkRecord Store::chunk(int64_t id) const {
  Lock lock(mutex_);
  sql::Statement st(*db_, std::string(kChunkColumns) + "WHERE id = ?");
  st.bind(1, id);
  KVRAG_CHECK(st.step(), kNotFound, "no chunk with id ", id);
  return read_chunk(st);
}

std::vector<ChunkRecord> Store::document_chunks(int64_t document_id) const {
  Lock lock(mutex_);
  sql::Statement st(*db_, std::string(kChunkColumns) + "WHERE document_id = ? ORDER BY position");
  st.bind(1, document_id);
  std::vector<ChunkRecord> out;
  while (st.step()) out.push_back(read_chunk(st));
  return out;
}

std::vector<uint8_t> Store::memory_blob(int64_t chunk_id) const {
  std::vector<std::optional<std::vector<uint8_t>>> blobs = memory_blobs({&chunk_id, 1});
  KVRAG_CHECK(blobs.front().has_value(), kNotFound, "no cached memory for chunk ", chunk_id);
  return std::move(blobs.front()).value();
}

std::vector<std::optional<std::vector<uint8_t>>> Store::memory_blobs(
    std::span<const int64_t> chunk_ids) const {
  Lock lock(mutex_);
  std::vector<std::optional<std::vector<uint8_t>>> blobs;
  sql::BlobReader reader(*db_, "chunk_kv", "data");  // chunk_id is chunk_kv's rowid
  for (const int64_t id : chunk_ids) blobs.push_back(reader.read(id));
  return blobs;
}

void Store::for_each_embedding(
    const std::function<void(int64_t, std::span<const float>)>& fn) const {
  Lock lock(mutex_);
  sql::Statement st(*db_, "SELECT id, embedding FROM chunks ORDER BY id");
  while (st.step()) {
    const std::vector<float> embedding = from_bytes<float>(st.column_blob_view(1));
    fn(st.column_int(0), embedding);
  }
}

std::vector<std::pair<int64_t, double>> Store::search_bm25(const std::string& query,
                                                           int64_t k) const {
  KVRAG_CHECK(k >= 0, kInvalidArgument, "search_bm25: k must be >= 0, got ", k);
  const std::string match = fts_query(query);
  if (match.empty() || k == 0) return {};
  Lock lock(mutex_);
  sql::Statement st(*db_,
                    "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                    "ORDER BY bm25(chunks_fts), rowid LIMIT ?");
  st.bind(1, match).bind(2, k);
  std::vector<std::pair<int64_t, double>> out;
  while (st.step()) out.emplace_back(st.column_int(0), -st.column_double(1));
  return out;
}

std::vector<int64_t> Store::chunk_documents(const std::vector<int64_t>& chunk_ids) const {
  Lock lock(mutex_);
  sql::Statement st(*db_, "SELECT document_id FROM chunks WHERE id = ?");
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

std::vector<int64_t> Store::chunk_ids() const {
  Lock lock(mutex_);
  sql::Statement st(*db_, "SELECT id FROM chunks ORDER BY id");
  std::vector<int64_t> out;
  while (st.step()) out.push_back(st.column_int(0));
  return out;
}

int64_t Store::document_count() const {
  Lock lock(mutex_);
  sql::Statement st(*db_, "SELECT count(*) FROM documents");
  st.step();
  return st.column_int(0);
}

int64_t Store::chunk_count() const {
  Lock lock(mutex_);
  sql::Statement st(*db_, "SELECT count(*) FROM chunks");
  st.step();
  return st.column_int(0);
}

StoreStats Store::stats() const {
  Lock lock(mutex_);
  StoreStats s;
  sql::Statement st(*db_,
                    "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks), "
                    "(SELECT coalesce(sum(length(data)), 0) FROM chunk_kv), "
                    "(SELECT coalesce(sum(length(text)), 0) FROM documents), "
                    "(SELECT coalesce(sum(length(embedding)), 0) FROM chunks), "
                    "(SELECT coalesce(sum(tokens), 0) FROM chunk_kv)");
  st.step();
  s.documents = st.column_int(0);
  s.chunks = st.column_int(1);
  s.memory_bytes = st.column_int(2);
  s.text_bytes = st.column_int(3);
  s.embedding_bytes = st.column_int(4);
  s.memory_tokens = st.column_int(5);
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path_ + suffix, ec);
    if (!ec) s.file_bytes += static_cast<int64_t>(size);
  }
  return s;
}

int64_t Store::orphan_rows() const {
  Lock lock(mutex_);
  sql::Statement st(*db_,
                    "SELECT (SELECT count(*) FROM chunks WHERE document_id NOT IN "
                    "(SELECT id FROM documents)) + (SELECT count(*) FROM chunk_kv WHERE "
                    "chunk_id NOT IN (SELECT id FROM chunks)) + (SELECT count(*) FROM "
                    "chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)) + (SELECT count(*) "
                    "FROM chunks WHERE id NOT IN (SELECT chunk_id FROM chunk_kv)) + (SELECT "
                    "count(*) FROM chunks WHERE id NOT IN (SELECT rowid FROM chunks_fts))");
  st.step();
  return st.column_int(0);
}

}  // namespace kvrag

#include "tests/store_fixtures.h"

#include <cstdlib>

#include "data/postgres_store.h"

namespace kvrag::testing {

Document make_document(const std::string& id, const std::string& text) {
  Document doc;
  doc.external_id = id;
  doc.title = "Title of " + id;
  doc.source = "corpus.jsonl:" + id;
  doc.text = text;
  doc.metadata_json = R"({"lang":"en"})";
  return doc;
}

NewChunk make_chunk(int64_t position, const std::string& text, int seed) {
  NewChunk c;
  c.position = position;
  c.text = text;
  c.token_ids = {seed, seed + 1, 1};
  c.content_hash = "hash-" + std::to_string(seed);
  c.embedding = {0.5f * static_cast<float>(seed), -1.0f, 0.25f};
  return c;
}

MemoryBlob make_blob(int seed) { return {{static_cast<uint8_t>(seed), 2, 3, 4, 5}, 3}; }

int64_t add_document_with_chunks(MetadataStore& metadata, BlobStore& blobs, const std::string& id,
                                 const std::vector<std::string>& chunk_texts, int seed) {
  std::string text;
  for (const std::string& t : chunk_texts) text += t + " ";
  int64_t doc_id = 0;
  metadata.write_transaction([&] {
    doc_id = metadata.add_document(make_document(id, text), "doc-hash-" + id);
    for (size_t i = 0; i < chunk_texts.size(); ++i) {
      const int chunk_seed = seed + static_cast<int>(i);
      const int64_t chunk_id = metadata.add_chunk(
          doc_id, make_chunk(static_cast<int64_t>(i), chunk_texts[i], chunk_seed));
      blobs.put(chunk_id, make_blob(chunk_seed));
    }
  });
  return doc_id;
}

std::string test_postgres_uri() {
  const char* uri = std::getenv("KVRAG_TEST_POSTGRES");
  return uri ? uri : "";
}

std::string with_schema(const std::string& uri, const std::string& schema) {
  return uri + (uri.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema;
}

void drop_postgres_schema(const std::string& uri, const std::string& schema) {
  kvrag::drop_postgres_schema(with_schema(uri, schema));
}

}  // namespace kvrag::testing

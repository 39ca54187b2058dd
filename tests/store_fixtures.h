// Rows for the store tests (test_store_conformance.cpp, test_sqlite_store.cpp):
// documents and chunks whose every field derives from a seed, so that a
// mix-up between chunks shows, and the write the pipeline makes of them.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/blob_store.h"
#include "data/metadata_store.h"

namespace kvrag::testing {

// A document titled and sourced after `id`, with metadata {"lang":"en"}.
Document make_document(const std::string& id, const std::string& text);
// A chunk with token ids, content hash ("hash-SEED") and embedding (3
// values) derived from `seed`.
NewChunk make_chunk(int64_t position, const std::string& text, int seed);
// A 5-byte blob of 3 tokens whose first byte is `seed`.
MemoryBlob make_blob(int seed);

// Adds document `id` with one chunk per text (seeds seed, seed + 1, ...)
// and their blobs in one write transaction, as the pipeline writes a
// document; returns the document id.
int64_t add_document_with_chunks(MetadataStore& metadata, BlobStore& blobs, const std::string& id,
                                 const std::vector<std::string>& chunk_texts, int seed);

// The PostgreSQL cluster of the tests labelled `cluster`: the URI in
// KVRAG_TEST_POSTGRES (libpq's, without kvrag's parameters), or empty when
// the variable is unset and those tests skip.
std::string test_postgres_uri();
// `uri` with schema=`schema` added to its parameters.
std::string with_schema(const std::string& uri, const std::string& schema);
// Drops `schema` of the database `uri` names, with all it holds.
void drop_postgres_schema(const std::string& uri, const std::string& schema);

}  // namespace kvrag::testing

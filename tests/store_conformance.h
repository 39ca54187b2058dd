// The contract of MetadataStore and BlobStore (data/metadata_store.h,
// data/blob_store.h), as parameterised tests run against every
// implementation (tests/store_conformance.cpp). A binary runs them on its
// backends with
//   INSTANTIATE_TEST_SUITE_P(Stores, StoreConformance, ::testing::Values(backend, ...), ...);
// test_store_conformance.cpp on the SQLite folder, test_postgres_store.cpp
// on PostgreSQL (suite prefix Cluster, labelled `cluster` in CTest),
// test_redis_cluster.cpp on SQLite metadata with Redis Cluster blobs (a
// binary of its own, labelled `cluster`).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "data/index_stores.h"
#include "tests/fixtures.h"
#include "tests/model_files.h"
#include "tests/store_fixtures.h"

namespace kvrag::testing {

// One implementation of the store interfaces under test.
struct StoreBackend {
  std::string name;  // the test name suffix
  // The stores of a scratch index named by `scratch`, a fresh empty folder
  // per test; opening the same scratch again reopens the same index (a
  // remote backend maps it to a namespace of its own: a schema, a key prefix).
  std::function<IndexStores(const std::string& scratch)> open;
  // What the backend promises where implementations may differ. true: the
  // blobs live in the metadata's database, so a blob put inside a write
  // transaction commits or rolls back with it and removing a document
  // takes its chunks' blobs. false: a separate blob store, which writes at
  // once (BlobStore::put) and removes only what remove() names.
  bool blobs_in_metadata_database = true;
  // A write that failed inside a write_transaction and whose error the body
  // caught leaves the transaction usable (SQLite: a statement rolls back
  // alone) rather than doomed (PostgreSQL: the commit throws).
  bool failed_write_leaves_transaction_usable = true;
  // A query word on a stop list ("the") matches chunks holding it.
  bool stop_words_match = true;
  // Why the backend cannot run here (say, no cluster configured): its tests
  // skip with this message. Empty when it can run.
  std::string unavailable;
  // Deletes what opening `scratch` created outside the folder (a remote
  // namespace), before and after each test; null when there is nothing.
  std::function<void(const std::string& scratch)> drop;
};

// The backend's name in test listings (CTest's test names), rather than
// its bytes, which differ from run to run.
inline void PrintTo(const StoreBackend& backend, std::ostream* out) { *out << backend.name; }

class StoreConformance : public ::testing::TestWithParam<StoreBackend> {
 protected:
  StoreConformance() : dir_("kvrag_conformance") {}

  void SetUp() override {
    if (!GetParam().unavailable.empty()) KVRAG_SKIP_OR_FAIL(GetParam().unavailable);
    // A namespace left by a crashed run of an earlier process of the same
    // pid would otherwise show through.
    if (GetParam().drop) GetParam().drop(dir_.path());
    stores_ = GetParam().open(dir_.path());
  }

  void TearDown() override {
    stores_ = {};
    if (GetParam().unavailable.empty() && GetParam().drop) GetParam().drop(dir_.path());
  }

  MetadataStore& metadata() { return *stores_.metadata; }
  BlobStore& blobs() { return *stores_.blobs; }

  int64_t add(const std::string& id, const std::vector<std::string>& chunk_texts, int seed) {
    return add_document_with_chunks(metadata(), blobs(), id, chunk_texts, seed);
  }

  // The ids of a document's chunks, in order.
  std::vector<int64_t> chunk_ids(int64_t document_id) {
    std::vector<int64_t> ids;
    for (const ChunkRecord& c : metadata().document_chunks(document_id)) ids.push_back(c.id);
    return ids;
  }

  void reopen() {
    stores_ = {};
    stores_ = GetParam().open(dir_.path());
  }

  TempDir dir_;
  IndexStores stores_;
};

}  // namespace kvrag::testing

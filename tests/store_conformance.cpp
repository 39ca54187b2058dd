// The tests of tests/store_conformance.h: every one runs on each backend a
// binary instantiates. Nothing here names an implementation; where they
// may differ, the test asks StoreBackend what the backend promises.
#include "tests/store_conformance.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"

namespace kvrag::testing {
namespace {

TEST_P(StoreConformance, DocumentsChunksAndBlobsRoundTrip) {
  const int64_t doc_id = add("doc-1", {"The river Aldan flows north.", "Its delta is wide."}, 10);

  const DocumentRecord doc = metadata().document(doc_id);
  EXPECT_EQ(doc.id, doc_id);
  EXPECT_EQ(doc.external_id, "doc-1");
  EXPECT_EQ(doc.title, "Title of doc-1");
  EXPECT_EQ(doc.source, "corpus.jsonl:doc-1");
  EXPECT_EQ(doc.text, "The river Aldan flows north. Its delta is wide. ");
  EXPECT_EQ(doc.metadata_json, R"({"lang":"en"})");
  EXPECT_EQ(doc.content_hash, "doc-hash-doc-1");
  EXPECT_EQ(doc.chunks, 2);
  const auto found = metadata().find_document("doc-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, doc_id);
  EXPECT_FALSE(metadata().find_document("doc-2").has_value());

  const std::vector<ChunkRecord> chunks = metadata().document_chunks(doc_id);
  ASSERT_EQ(chunks.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const NewChunk expected =
        make_chunk(i, i == 0 ? "The river Aldan flows north." : "Its delta is wide.", 10 + i);
    const ChunkRecord& c = chunks[i];
    EXPECT_EQ(c.document_id, doc_id);
    EXPECT_EQ(c.position, i);
    EXPECT_EQ(c.text, expected.text);
    EXPECT_EQ(c.token_ids, expected.token_ids);
    EXPECT_EQ(c.content_hash, expected.content_hash);
    EXPECT_EQ(metadata().chunk(c.id).text, expected.text);
    EXPECT_EQ(blobs().get(c.id), make_blob(10 + i).bytes);
  }

  std::vector<std::pair<int64_t, std::vector<float>>> embeddings;
  metadata().for_each_embedding([&](int64_t id, std::span<const float> e) {
    embeddings.emplace_back(id, std::vector<float>(e.begin(), e.end()));
  });
  ASSERT_EQ(embeddings.size(), 2u);
  EXPECT_EQ(embeddings[0], std::make_pair(chunks[0].id, make_chunk(0, "", 10).embedding));
  EXPECT_EQ(embeddings[1], std::make_pair(chunks[1].id, make_chunk(0, "", 11).embedding));

  const MetadataStats stats = metadata().stats();
  EXPECT_EQ(stats.documents, 1);
  EXPECT_EQ(stats.chunks, 2);
  EXPECT_EQ(stats.text_bytes, static_cast<int64_t>(doc.text.size()));
  EXPECT_EQ(stats.embedding_bytes, 2 * 3 * 4);
  EXPECT_GT(stats.storage_bytes, 0);
  const BlobStats blob_stats = blobs().stats();
  EXPECT_EQ(blob_stats.bytes, 10);
  EXPECT_EQ(blob_stats.tokens, 6);
}

TEST_P(StoreConformance, FindEncodingNamesAStoredChunkOfThatHash) {
  add("doc-1", {"alpha", "beta"}, 10);
  const auto encoding = metadata().find_encoding("hash-11");
  ASSERT_TRUE(encoding.has_value());
  EXPECT_EQ(encoding->embedding, make_chunk(0, "", 11).embedding);
  EXPECT_EQ(metadata().chunk(encoding->chunk_id).text, "beta");
  EXPECT_EQ(blobs().get(encoding->chunk_id), make_blob(11).bytes);
  EXPECT_FALSE(metadata().find_encoding("hash-99").has_value());
}

TEST_P(StoreConformance, MissingRowsAreNotFound) {
  EXPECT_TRUE(throws_error([&] { metadata().document(42); }, ErrorKind::kNotFound,
                           {"no document with id 42"}));
  EXPECT_TRUE(
      throws_error([&] { metadata().chunk(43); }, ErrorKind::kNotFound, {"no chunk with id 43"}));
  EXPECT_FALSE(blobs().get(44).has_value());
  EXPECT_TRUE(metadata().document_chunks(45).empty());
  EXPECT_TRUE(metadata().remove_document(46).empty());
}

TEST_P(StoreConformance, DuplicateExternalIdAndUnknownDocumentAreInvalidArguments) {
  add("doc-1", {"alpha"}, 1);
  EXPECT_TRUE(throws_error([&] { metadata().add_document(make_document("doc-1", "again"), "h"); },
                           ErrorKind::kInvalidArgument, {}));
  EXPECT_TRUE(throws_error([&] { metadata().add_chunk(999, make_chunk(0, "orphan", 5)); },
                           ErrorKind::kInvalidArgument, {}));
  EXPECT_EQ(metadata().stats().chunks, 1);
}

TEST_P(StoreConformance, MetaRoundTrip) {
  EXPECT_FALSE(metadata().meta("model").has_value());
  metadata().set_meta("model", "abc");
  metadata().set_meta("model", "def");
  EXPECT_EQ(metadata().meta("model"), "def");
}

TEST_P(StoreConformance, GenerationAdvancesOnlyWithItsCommit) {
  EXPECT_EQ(metadata().generation(), 0);
  int64_t advanced = 0;
  metadata().write_transaction([&] { advanced = metadata().advance_generation(); });
  EXPECT_EQ(advanced, 1);
  EXPECT_EQ(metadata().generation(), 1);
  EXPECT_THROW(metadata().write_transaction([&] {
    metadata().advance_generation();
    throw std::runtime_error("write failed");
  }),
               std::runtime_error);
  EXPECT_EQ(metadata().generation(), 1);
  reopen();
  EXPECT_EQ(metadata().generation(), 1);
}

TEST_P(StoreConformance, LexicalSearchFindsAChunkByItsOwnWords) {
  add("doc-1", {"The river Aldan flows north into the Lena.", "Glaciers cover Mount Orvik."}, 1);
  add("doc-2", {"Copper mines opened in 1843 near Tarsk."}, 5);
  for (const ChunkRecord& c : metadata().document_chunks(metadata().find_document("doc-1")->id)) {
    const auto hits = metadata().search_lexical(c.text, 3);
    ASSERT_FALSE(hits.empty()) << c.text;
    EXPECT_EQ(hits[0].first, c.id) << c.text;
  }
  const auto hits = metadata().search_lexical("when did the copper mines open", 10);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(metadata().chunk(hits[0].first).text, "Copper mines opened in 1843 near Tarsk.");
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].second, hits[i].second);
  EXPECT_EQ(metadata().search_lexical("river glaciers copper", 2).size(), 2u);
  EXPECT_TRUE(metadata().search_lexical("copper", 0).empty());
  EXPECT_TRUE(throws_error([&] { metadata().search_lexical("copper", -1); },
                           ErrorKind::kInvalidArgument,
                           {"search_lexical: k must be >= 0, got -1"}));
}

TEST_P(StoreConformance, LexicalSearchTreatsQuerySyntaxAsPlainWords) {
  add("doc-1", {"Copper AND tin NEAR the mines."}, 1);
  for (const std::string query :
       {"\"unbalanced", "copper AND", "NEAR(copper tin)", "tin*", "-copper", "text: copper",
        "^copper", "(((", "{text}: copper", "a OR", "NOT", "copper & !tin | mines", "'copper':*",
        "\xe2\x80\x94 \xc3\xa9", ""}) {
    EXPECT_NO_THROW(metadata().search_lexical(query, 5)) << query;
  }
  EXPECT_EQ(metadata().search_lexical("NEAR(copper", 5).size(), 1u);
  EXPECT_TRUE(metadata().search_lexical("*** ((( \"", 5).empty());
}

TEST_P(StoreConformance, LexicalSearchStemsAndFoldsDiacritics) {
  add("doc-1", {"She tuned the violin's string before the concert at the café."}, 1);
  add("doc-2", {"Naïve Bayes classifiers count words."}, 5);
  for (const std::string query :
       {"strings", "tuning concerts", "cafe", "CAFÉ", "naive", "counting"}) {
    EXPECT_EQ(metadata().search_lexical(query, 5).size(), 1u) << query;
  }
}

TEST_P(StoreConformance, RemoveDocumentTakesItsChunksAndLexicalEntries) {
  const int64_t keep = add("keep", {"Harbour of Velm.", "Lighthouse of Velm."}, 1);
  const int64_t gone = add("gone", {"Salt flats of Quor.", "Dunes of Quor.", "Wells of Quor."}, 10);
  const std::vector<ChunkRecord> gone_chunks = metadata().document_chunks(gone);

  const std::vector<int64_t> removed = metadata().remove_document(gone);
  ASSERT_EQ(removed.size(), 3u);
  for (size_t i = 0; i < removed.size(); ++i) EXPECT_EQ(removed[i], gone_chunks[i].id);
  blobs().remove(removed);
  EXPECT_EQ(metadata().stats().documents, 1);
  EXPECT_EQ(metadata().stats().chunks, 2);
  EXPECT_TRUE(metadata().search_lexical("Quor", 10).empty());
  EXPECT_EQ(metadata().search_lexical("Velm", 10).size(), 2u);
  EXPECT_TRUE(throws_error([&] { metadata().chunk(removed[0]); }, ErrorKind::kNotFound, {}));
  EXPECT_FALSE(blobs().get(removed[0]).has_value());
  EXPECT_EQ(blobs().stats().tokens, 6);
  EXPECT_EQ(metadata().document_chunks(keep).size(), 2u);
  EXPECT_TRUE(metadata().document_chunks(gone).empty());
  EXPECT_TRUE(metadata().remove_document(gone).empty());  // already gone
}

// The pipeline removes a document's blobs with remove() after the metadata;
// only a store in the metadata's database has them gone before.
TEST_P(StoreConformance, RemovingADocumentTakesItsBlobsOnlyInTheMetadataDatabase) {
  const int64_t doc = add("doc-1", {"a", "b"}, 1);
  const std::vector<int64_t> removed = metadata().remove_document(doc);
  ASSERT_EQ(removed.size(), 2u);
  const bool shared = GetParam().blobs_in_metadata_database;
  for (const int64_t id : removed) EXPECT_EQ(blobs().get(id).has_value(), !shared) << id;
  EXPECT_EQ(blobs().stats().bytes, shared ? 0 : 10);
  blobs().remove(removed);
  for (const int64_t id : removed) EXPECT_FALSE(blobs().get(id).has_value()) << id;
  EXPECT_EQ(blobs().stats().bytes, 0);
  EXPECT_EQ(blobs().stats().tokens, 0);
}

// Removing the newest rows must not free their ids: a later chunk taking a
// removed chunk's id would be served that chunk's cached K/V.
TEST_P(StoreConformance, IdsOfRemovedRowsAreNeverReused) {
  add("old", {"Harbour of Velm."}, 1);
  const int64_t newest = add("newest", {"Salt flats of Quor.", "Dunes of Quor."}, 10);
  const std::vector<ChunkRecord> newest_chunks = metadata().document_chunks(newest);
  metadata().remove_document(newest);
  reopen();

  const int64_t again = add("again", {"Wells of Quor.", "Oasis of Quor."}, 20);
  EXPECT_GT(again, newest);
  for (const ChunkRecord& chunk : metadata().document_chunks(again)) {
    EXPECT_GT(chunk.id, newest_chunks.back().id);
  }
}

TEST_P(StoreConformance, ExceptionInWriteTransactionRollsBackTheMetadata) {
  add("before", {"Existing chunk."}, 1);
  int64_t rolled_back_chunk = 0;
  EXPECT_THROW(metadata().write_transaction([&] {
    const int64_t id = metadata().add_document(make_document("inside", "text"), "h");
    rolled_back_chunk = metadata().add_chunk(id, make_chunk(0, "Rolled back chunk.", 7));
    blobs().put(rolled_back_chunk, make_blob(7));
    metadata().set_meta("model", "changed");
    throw std::runtime_error("encoder failed");
  }),
               std::runtime_error);
  EXPECT_FALSE(metadata().find_document("inside").has_value());
  EXPECT_FALSE(metadata().meta("model").has_value());
  EXPECT_EQ(metadata().stats().chunks, 1);
  EXPECT_TRUE(metadata().search_lexical("Rolled", 5).empty());
  EXPECT_FALSE(metadata().find_encoding("hash-7").has_value());
  // The blob rolls back with the metadata where they share a database; a
  // separate store wrote it at once, and it stays, a blob no chunk names
  // (BlobStore::put: never a chunk without its blob).
  const bool shared = GetParam().blobs_in_metadata_database;
  EXPECT_EQ(blobs().get(rolled_back_chunk).has_value(), !shared);
  EXPECT_EQ(blobs().stats().bytes, shared ? 5 : 10);
  // The stores are usable afterwards.
  add("after", {"Later chunk."}, 3);
  EXPECT_EQ(metadata().stats().documents, 2);
}

TEST_P(StoreConformance, NestedTransactionRollsBackOnlyItself) {
  metadata().write_transaction([&] {
    metadata().set_meta("outer", "1");
    EXPECT_THROW(metadata().write_transaction([&] {
      metadata().set_meta("inner", "1");
      throw std::runtime_error("inner failed");
    }),
                 std::runtime_error);
  });
  EXPECT_EQ(metadata().meta("outer"), "1");
  EXPECT_FALSE(metadata().meta("inner").has_value());
}

// A nested transaction around a write that may fail rolls back only that
// write on every backend; a failure caught with none around it is where
// backends differ (failed_write_leaves_transaction_usable).
TEST_P(StoreConformance, AWriteThatFailsInsideATransaction) {
  add("doc-1", {"alpha"}, 1);
  const auto add_duplicate = [&] { metadata().add_document(make_document("doc-1", "again"), "h"); };
  metadata().write_transaction([&] {
    metadata().set_meta("outer", "1");
    EXPECT_TRUE(throws_error([&] { metadata().write_transaction(add_duplicate); },
                             ErrorKind::kInvalidArgument, {}));
    metadata().set_meta("after", "1");
  });
  EXPECT_EQ(metadata().meta("outer"), "1");
  EXPECT_EQ(metadata().meta("after"), "1");

  const auto catch_bare_failure = [&] {
    metadata().write_transaction([&] {
      metadata().set_meta("bare", "1");
      try {
        add_duplicate();
      } catch (const Error&) {
      }
    });
  };
  if (GetParam().failed_write_leaves_transaction_usable) {
    catch_bare_failure();
    EXPECT_EQ(metadata().meta("bare"), "1");
  } else {
    EXPECT_TRUE(throws_error(catch_bare_failure, ErrorKind::kInternal,
                             {"rolled back", "nested write_transaction"}));
    EXPECT_FALSE(metadata().meta("bare").has_value());
  }
  add("doc-2", {"beta"}, 2);
  EXPECT_EQ(metadata().stats().documents, 2);
}

TEST_P(StoreConformance, LexicalSearchOfStopWords) {
  add("doc-1", {"The tower of the city."}, 1);
  EXPECT_EQ(metadata().search_lexical("the of", 5).size(), GetParam().stop_words_match ? 1u : 0u);
  EXPECT_EQ(metadata().search_lexical("the tower", 5).size(), 1u);
}

TEST_P(StoreConformance, DataSurvivesReopening) {
  const int64_t doc_id = add("doc-1", {"Persisted chunk text."}, 4);
  const int64_t chunk_id = metadata().document_chunks(doc_id)[0].id;
  reopen();
  EXPECT_EQ(metadata().document(doc_id).external_id, "doc-1");
  EXPECT_EQ(metadata().search_lexical("persisted", 1).size(), 1u);
  EXPECT_EQ(blobs().get(chunk_id), make_blob(4).bytes);
}

TEST_P(StoreConformance, ChunkDocumentsNamesEachChunksDocument) {
  const int64_t one = add("doc-1", {"a", "b"}, 1);
  const int64_t two = add("doc-2", {"c"}, 5);
  const std::vector<ChunkRecord> c1 = metadata().document_chunks(one);
  const std::vector<ChunkRecord> c2 = metadata().document_chunks(two);
  EXPECT_EQ(metadata().chunk_documents({c2[0].id, c1[1].id, c1[0].id, c2[0].id}),
            (std::vector<int64_t>{two, one, one, two}));
  EXPECT_TRUE(metadata().chunk_documents({}).empty());
  EXPECT_TRUE(throws_error(
      [&] {
        metadata().chunk_documents({c1[0].id, 999});
      },
      ErrorKind::kNotFound, {"no chunk 999"}));
}

TEST_P(StoreConformance, ChunkEmbeddingsAreEachChunksInOrder) {
  const int64_t one = add("doc-1", {"a", "b"}, 1);
  const std::vector<ChunkRecord> chunks = metadata().document_chunks(one);
  const std::vector<float> first = make_chunk(0, "", 1).embedding;
  const std::vector<float> second = make_chunk(0, "", 2).embedding;
  EXPECT_EQ(metadata().chunk_embeddings({chunks[1].id, chunks[0].id, chunks[1].id}),
            (std::vector<std::vector<float>>{second, first, second}));
  EXPECT_TRUE(metadata().chunk_embeddings({}).empty());
  EXPECT_TRUE(throws_error(
      [&] {
        metadata().chunk_embeddings({chunks[0].id, 999});
      },
      ErrorKind::kNotFound, {"no chunk 999"}));
}

TEST_P(StoreConformance, GetManyReturnsBlobsInOrderAndNulloptForNone) {
  const std::vector<int64_t> ids = chunk_ids(add("doc-1", {"a", "b", "c"}, 1));
  const std::vector<int64_t> asked = {ids[2], 999, ids[0], ids[2]};
  const auto got = blobs().get_many(asked);
  ASSERT_EQ(got.size(), asked.size());
  EXPECT_EQ(got[0], make_blob(3).bytes);
  EXPECT_FALSE(got[1].has_value());
  EXPECT_EQ(got[2], make_blob(1).bytes);
  EXPECT_EQ(got[3], make_blob(3).bytes);
  EXPECT_TRUE(blobs().get_many({}).empty());
}

// get_each hands over what get_many returns, one blob at a time in the
// order asked; an exception from the taker ends the read, and the store
// reads on after it.
TEST_P(StoreConformance, GetEachHandsOverEachBlobInOrder) {
  const std::vector<int64_t> ids = chunk_ids(add("doc-1", {"a", "b", "c"}, 1));
  const std::vector<int64_t> asked = {ids[1], 999, ids[0], ids[1]};
  std::vector<size_t> order;
  std::vector<std::optional<Bytes>> taken;
  blobs().get_each(asked, [&](size_t i, std::optional<Bytes> blob) {
    order.push_back(i);
    taken.push_back(std::move(blob));
  });
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(taken, blobs().get_many(asked));
  EXPECT_EQ(taken[0], make_blob(2).bytes);
  EXPECT_FALSE(taken[1].has_value());

  size_t calls = 0;
  EXPECT_TRUE(throws_error(
      [&] {
        blobs().get_each(asked, [&](size_t, std::optional<Bytes>) {
          ++calls;
          KVRAG_THROW(kFormat, "damaged blob");
        });
      },
      ErrorKind::kFormat, {"damaged blob"}));
  EXPECT_EQ(calls, 1u);
  EXPECT_EQ(blobs().get(ids[2]), make_blob(3).bytes);
}

// A chunk's K/V are megabytes (T5-base f16: 2.4 MB for 64 tokens); every
// byte must come back.
TEST_P(StoreConformance, LargeBlobRoundTripsAndPutReplaces) {
  add("doc-1", {"a", "b"}, 1);
  const std::vector<ChunkRecord> chunks =
      metadata().document_chunks(metadata().find_document("doc-1")->id);
  MemoryBlob large;
  large.tokens = 64;
  large.bytes.resize(3 << 20);
  std::mt19937 random(7);
  for (uint8_t& byte : large.bytes) byte = static_cast<uint8_t>(random());
  metadata().write_transaction([&] { blobs().put(chunks[1].id, large); });
  const auto got = blobs().get_many(std::vector<int64_t>{chunks[0].id, chunks[1].id});
  EXPECT_EQ(got[0], make_blob(1).bytes);
  EXPECT_TRUE(got[1] == large.bytes) << "the 3 MiB blob came back changed";
  EXPECT_EQ(blobs().stats().bytes, 5 + static_cast<int64_t>(large.bytes.size()));
  EXPECT_EQ(blobs().stats().tokens, 3 + 64);
}

TEST_P(StoreConformance, RemoveBlobsIgnoresChunksWithout) {
  add("doc-1", {"a", "b"}, 1);
  const std::vector<ChunkRecord> chunks =
      metadata().document_chunks(metadata().find_document("doc-1")->id);
  blobs().remove(std::vector<int64_t>{chunks[0].id, 999});
  EXPECT_FALSE(blobs().get(chunks[0].id).has_value());
  EXPECT_EQ(blobs().get(chunks[1].id), make_blob(2).bytes);
  blobs().remove(std::vector<int64_t>{chunks[0].id});
  EXPECT_EQ(blobs().stats().bytes, 5);
}

TEST_P(StoreConformance, ConcurrentReadersAndAWriter) {
  const int64_t doc = metadata().add_document(make_document("d", "text"), "h");
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) {
      metadata().write_transaction([&] {
        blobs().put(metadata().add_chunk(doc, make_chunk(i, "word" + std::to_string(i), i)),
                    make_blob(i));
      });
    }
  });
  int64_t seen = 0;
  for (int i = 0; i < 50; ++i) {
    seen = std::max(seen, metadata().stats().chunks);
    for (const ChunkRecord& c : metadata().document_chunks(doc)) {
      EXPECT_TRUE(blobs().get(c.id).has_value()) << "a committed chunk without its blob";
    }
  }
  writer.join();
  EXPECT_LE(seen, 50);
  EXPECT_EQ(metadata().stats().chunks, 50);
}

}  // namespace
}  // namespace kvrag::testing

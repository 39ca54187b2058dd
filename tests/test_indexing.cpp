// Indexing through RagPipeline with the demo model: what the store holds
// must be what the model computes, documents round-trip, re-indexing and
// removal keep SQLite and FAISS in step, and a stale vectors.faiss is rebuilt.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "data/index_stores.h"
#include "data/kv_blob.h"
#include "data/sqlite.h"
#include "data/sqlite_store.h"
#include "encoder/cross_kv.h"
#include "encoder/t5_encoder.h"
#include "pipeline/document_encoder.h"
#include "pipeline/prompts.h"
#include "pipeline/rag_pipeline.h"
#include "retriever/embedder.h"
#include "retriever/faiss_index.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TempDir;

using testing::kDemoModel;

Document make_document(const std::string& id, const std::string& title, const std::string& text,
                       const std::string& metadata = "{}") {
  Document doc;
  doc.external_id = id;
  doc.title = title;
  doc.source = "test:" + id;
  doc.text = text;
  doc.metadata_json = metadata;
  return doc;
}

// Three made-up documents of several sentences, so that 16-token chunks
// give each of them more than one chunk.
std::vector<Document> small_corpus() {
  return {
      make_document("altan", "Altan (river)",
                    "The Altan is a river of the northern hills. It rises on Mount Sorrel and "
                    "empties into Lake Vire. Its valley was first mapped in 1802 by the surveyor "
                    "Ilse Mardt. Otters live along its quieter stretches.",
                    R"({"kind":"river","length_km":412})"),
      make_document("brenna", "Brenna",
                    "Brenna is a harbour town on the eastern coast. It was founded in 1544 by "
                    "salt traders. The town is known for its blue lighthouse and its autumn fish "
                    "market."),
      make_document("corvin", "Corvin Hale",
                    "Corvin Hale was a painter of the coastal school. He was born in Brenna in "
                    "1871 and studied in the capital. His best-known work shows the Altan in "
                    "winter light."),
  };
}

IndexSettings small_settings(KvDtype dtype = KvDtype::kF32,
                             CacheGranularity cache = CacheGranularity::kKv) {
  IndexSettings s;
  s.chunking.max_tokens = 16;
  s.kv_dtype = dtype;
  s.cache = cache;
  return s;
}

// The decoded memory blob of every chunk of the index at `dir`, by chunk id.
std::map<int64_t, std::vector<Tensor>> stored_memories(const std::string& dir) {
  const IndexStores stores = open_index_stores(dir + "/store.sqlite");
  std::map<int64_t, std::vector<Tensor>> out;
  stores.metadata->for_each_embedding([&](int64_t id, std::span<const float>) {
    out[id] = decode_kv_blob(stores.blobs->get(id).value(), "chunk " + std::to_string(id));
  });
  return out;
}

// What the memory of `chunk` must be: a fresh encoding of its prompt,
// projected (kKv, matrices K_0, V_0, K_1, …) or not (kHidden).
std::vector<Tensor> expected_memory(const RagPipeline& pipeline, const T5Encoder& encoder,
                                    const DocumentRecord& doc, const ChunkRecord& chunk) {
  const T5Model& model = pipeline.model();
  const std::vector<int32_t> ids =
      chunk_prompt_ids(model, pipeline.settings(), doc.title, chunk.text);
  Tensor hidden = encoder.encode(ids);
  std::vector<Tensor> out;
  if (pipeline.settings().cache == CacheGranularity::kHidden) {
    out.push_back(std::move(hidden));
    return out;
  }
  CrossKV kv = project_cross_kv(model, hidden.view());
  for (int64_t l = 0; l < kv.layers(); ++l) {
    out.push_back(std::move(kv.k[l]));
    out.push_back(std::move(kv.v[l]));
  }
  return out;
}

// Largest |got - want| / bound over all values, where bound is
// `relative` × |want| + `absolute` + `row_fraction` × max |row of want|;
// <= 1 means every value is within its bound.
double worst_error_ratio(const std::vector<Tensor>& got, const std::vector<Tensor>& want,
                         double relative, double absolute, double row_fraction) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0.0;
  for (size_t m = 0; m < std::min(got.size(), want.size()); ++m) {
    EXPECT_EQ(got[m].rows(), want[m].rows());
    EXPECT_EQ(got[m].cols(), want[m].cols());
    if (got[m].rows() != want[m].rows() || got[m].cols() != want[m].cols()) return INFINITY;
    for (int64_t i = 0; i < want[m].rows(); ++i) {
      double row_max = 0.0;
      for (int64_t j = 0; j < want[m].cols(); ++j) {
        row_max = std::max(row_max, std::fabs(static_cast<double>(want[m].at(i, j))));
      }
      for (int64_t j = 0; j < want[m].cols(); ++j) {
        const double w = want[m].at(i, j);
        const double bound = relative * std::fabs(w) + absolute + row_fraction * row_max;
        worst = std::max(worst, std::fabs(got[m].at(i, j) - w) / bound);
      }
    }
  }
  return worst;
}

// Checks every stored chunk memory against a fresh computation.
void expect_memories_match(const RagPipeline& pipeline, double relative, double absolute,
                           double row_fraction) {
  const auto memories = stored_memories(pipeline.dir());
  const T5Encoder encoder(load_t5_model(kDemoModel));
  int64_t checked = 0;
  for (const Document& d : small_corpus()) {
    const auto doc = pipeline.find_document(d.external_id);
    ASSERT_TRUE(doc.has_value()) << d.external_id;
    for (const ChunkRecord& chunk : pipeline.document_chunks(doc->id)) {
      ASSERT_TRUE(memories.count(chunk.id)) << "chunk " << chunk.id;
      EXPECT_LE(
          worst_error_ratio(memories.at(chunk.id), expected_memory(pipeline, encoder, *doc, chunk),
                            relative, absolute, row_fraction),
          1.0)
          << "chunk " << chunk.id << " of " << d.external_id;
      ++checked;
    }
  }
  EXPECT_GT(checked, 3);
}

// The chunk ids in vectors.faiss and in the store, which must be equal.
std::pair<std::vector<int64_t>, std::vector<int64_t>> faiss_and_store_ids(const RagPipeline& p) {
  const auto index = FaissIndex::load(p.dir() + "/vectors.faiss", p.model().config.d_model,
                                      p.settings().faiss_factory);
  std::vector<int64_t> store_ids;
  const IndexStores stores = open_index_stores(p.dir() + "/store.sqlite");
  stores.metadata->for_each_embedding(
      [&](int64_t id, std::span<const float>) { store_ids.push_back(id); });
  return {index->ids(), store_ids};
}

TEST(IndexingPrompts, FillsPlaceholdersOnce) {
  PromptFields f;
  f.question = "who {text}?";
  f.title = "T";
  f.text = "body";
  f.passages = "P";
  EXPECT_EQ(
      fill_prompt("question: {question} title: {title} context: {text} {passages} {other}", f),
      "question: who {text}? title: T context: body P {other}");
  const auto model = load_t5_model(kDemoModel);
  const std::vector<int32_t> ids = prompt_ids(*model, "title: Brenna context: a town");
  EXPECT_EQ(ids.back(), model->config.eos_token_id);
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.end() - 1),
            model->require_tokenizer().encode("title: Brenna context: a town"));
}

TEST(IndexingNames, ParseAndNameRoundTrip) {
  for (const auto g : {CacheGranularity::kKv, CacheGranularity::kHidden}) {
    EXPECT_EQ(parse_cache_granularity(cache_granularity_name(g)), g);
  }
  for (const auto m : {Mode::kCached, Mode::kConcat, Mode::kFid})
    EXPECT_EQ(parse_mode(mode_name(m)), m);
  for (const auto r : {RetrieverKind::kDense, RetrieverKind::kBm25, RetrieverKind::kHybrid}) {
    EXPECT_EQ(parse_retriever(retriever_name(r)), r);
  }
  EXPECT_TRUE(testing::throws_error([] { parse_cache_granularity("layers"); },
                                    ErrorKind::kInvalidArgument, {"'layers'", "kv, hidden"}));
  EXPECT_TRUE(testing::throws_error([] { parse_mode("fast"); }, ErrorKind::kInvalidArgument,
                                    {"mode 'fast'"}));
}

TEST(IndexingMemory, F32KvEqualsProjectionOfFreshEncoding) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  p->add_documents(small_corpus());
  // Batched and single encodings sum in different orders: float rounding only.
  expect_memories_match(*p, 1e-4, 1e-5, 0.0);
}

TEST(IndexingMemory, F16KvWithinHalfPrecision) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings(KvDtype::kF16));
  p->add_documents(small_corpus());
  // binary16 keeps 11 significant bits: relative error <= 2^-11 (+ subnormals).
  expect_memories_match(*p, 1.0 / 2048 + 1e-4, 1e-5, 0.0);
}

TEST(IndexingMemory, Int8KvWithinHalfAStep) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings(KvDtype::kInt8));
  p->add_documents(small_corpus());
  // One int8 step is max|row| / 127; rounding is off by at most half of it.
  expect_memories_match(*p, 1e-4, 1e-5, 0.5 / 127 + 1e-4);
}

TEST(IndexingMemory, HiddenGranularityStoresTheEncoderOutput) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel,
                                     small_settings(KvDtype::kF32, CacheGranularity::kHidden));
  p->add_documents(small_corpus());
  expect_memories_match(*p, 1e-4, 1e-5, 0.0);
  const IndexStats s = p->stats();
  EXPECT_EQ(s.memory_bytes_per_token, p->model().config.d_model * 4);
}

TEST(Indexing, DocumentsChunksAndMetadataRoundTrip) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  const std::vector<Document> docs = small_corpus();
  int calls = 0;
  const IndexReport report = p->add_documents(docs, 2, [&](const IndexProgress& progress) {
    ++calls;
    EXPECT_EQ(progress.documents_total, 3);
  });
  EXPECT_EQ(calls, 2);  // batches of 2 and 1
  EXPECT_EQ(report.documents_added, 3);
  ASSERT_EQ(report.ids.size(), 3u);

  const IndexStores stores = open_index_stores(p->dir() + "/store.sqlite");
  int64_t chunks = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    const auto doc = p->find_document(docs[i].external_id);
    ASSERT_TRUE(doc.has_value());
    EXPECT_EQ(report.ids[i], std::make_pair(docs[i].external_id, doc->id));
    EXPECT_EQ(doc->title, docs[i].title);
    EXPECT_EQ(doc->source, docs[i].source);
    EXPECT_EQ(doc->text, docs[i].text);
    EXPECT_EQ(doc->metadata_json, docs[i].metadata_json);
    const std::vector<ChunkRecord> doc_chunks = p->document_chunks(doc->id);
    ASSERT_GT(doc_chunks.size(), 1u) << "16-token chunks of a few sentences";
    std::string joined;
    for (size_t c = 0; c < doc_chunks.size(); ++c) {
      EXPECT_EQ(doc_chunks[c].position, static_cast<int64_t>(c));
      EXPECT_LE(doc_chunks[c].token_ids.size(), 16u);
      EXPECT_EQ(doc_chunks[c].token_ids, p->model().require_tokenizer().encode(doc_chunks[c].text));
      joined += (c ? " " : "") + doc_chunks[c].text;
      // BM25 finds the chunk by its own text.
      const auto bm25 = stores.metadata->search_lexical(doc_chunks[c].text, 1);
      ASSERT_EQ(bm25.size(), 1u);
      EXPECT_EQ(bm25[0].first, doc_chunks[c].id);
    }
    std::istringstream words(docs[i].text);
    std::string expected;
    for (std::string w; words >> w;) expected += (expected.empty() ? "" : " ") + w;
    EXPECT_EQ(joined, expected);
    chunks += static_cast<int64_t>(doc_chunks.size());
  }
  EXPECT_EQ(report.chunks_added, chunks);
  EXPECT_GT(report.memory_bytes_added, 0);

  // FAISS finds every chunk by its own embedding, which is embed() of its encoding.
  const auto index =
      FaissIndex::load(p->dir() + "/vectors.faiss", p->model().config.d_model, "Flat");
  stores.metadata->for_each_embedding([&](int64_t id, std::span<const float> embedding) {
    const auto hits = index->search(embedding, 1);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].id, id);
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-4);
  });

  const IndexStats s = p->stats();
  EXPECT_EQ(s.store.documents, 3);
  EXPECT_EQ(s.store.chunks, chunks);
  EXPECT_EQ(s.faiss_vectors, chunks);
  EXPECT_EQ(s.model_fingerprint, p->model().fingerprint);
  const T5Config& c = p->model().config;
  EXPECT_EQ(s.memory_bytes_per_token, 2 * c.num_decoder_layers * c.inner_dim() * 4);
  EXPECT_EQ(s.store.memory_bytes, report.memory_bytes_added);
}

TEST(Indexing, SettingsAndModelAreRecorded) {
  const TempDir tmp("kvrag_indexing");
  IndexSettings settings = small_settings(KvDtype::kInt8, CacheGranularity::kHidden);
  settings.chunking.overlap = 4;
  settings.prompts.chunk = "passage {title}: {text}";
  RagPipeline::create(tmp.file("index"), kDemoModel, settings)->add_documents(small_corpus());
  const auto p = RagPipeline::open(tmp.file("index"));
  EXPECT_EQ(p->settings().chunking.max_tokens, 16);
  EXPECT_EQ(p->settings().chunking.overlap, 4);
  EXPECT_EQ(p->settings().cache, CacheGranularity::kHidden);
  EXPECT_EQ(p->settings().kv_dtype, KvDtype::kInt8);
  EXPECT_EQ(p->settings().prompts.chunk, "passage {title}: {text}");
  EXPECT_EQ(p->settings().prompts.question, PromptTemplates().question);
  EXPECT_EQ(fs::path(p->stats().model_dir), fs::absolute(kDemoModel).lexically_normal());
  EXPECT_EQ(p->stats().store.documents, 3);
}

TEST(Indexing, ReindexReplacesChangedSkipsUnchangedReusesEqualChunks) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  std::vector<Document> docs = small_corpus();
  p->add_documents(docs);
  const auto before = p->find_document("brenna");
  ASSERT_TRUE(before.has_value());
  const std::vector<ChunkRecord> old_chunks = p->document_chunks(before->id);

  docs[1].text += " A ferry leaves for the islands every morning.";
  // A copy of Altan under another id: every chunk equals a stored one.
  Document copy = docs[0];
  copy.external_id = "altan-copy";
  const IndexReport second = p->add_documents({docs[0], docs[1], docs[2], copy});
  EXPECT_EQ(second.documents_unchanged, 2);
  EXPECT_EQ(second.documents_replaced, 1);
  EXPECT_EQ(second.documents_added, 1);
  const auto altan = p->find_document("altan");
  const auto altan_copy = p->find_document("altan-copy");
  ASSERT_TRUE(altan && altan_copy);
  EXPECT_EQ(second.ids[0].second, altan->id);
  EXPECT_GE(second.chunks_reused, altan->chunks);

  const IndexStores stores = open_index_stores(p->dir() + "/store.sqlite");
  const auto copy_chunks = p->document_chunks(altan_copy->id);
  const auto altan_chunks = p->document_chunks(altan->id);
  ASSERT_EQ(copy_chunks.size(), altan_chunks.size());
  for (size_t c = 0; c < copy_chunks.size(); ++c) {
    EXPECT_EQ(stores.blobs->get(copy_chunks[c].id), stores.blobs->get(altan_chunks[c].id));
  }

  const auto after = p->find_document("brenna");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->text, docs[1].text);
  // The replaced document's chunks sat between others' ids: SQLite does not
  // hand them out again, so they must simply be gone.
  for (const ChunkRecord& old : old_chunks) {
    EXPECT_TRUE(
        testing::throws_error([&] { stores.metadata->chunk(old.id); }, ErrorKind::kNotFound, {}))
        << "old chunk " << old.id << " of the replaced document is still there";
  }
  EXPECT_EQ(SqliteStore(p->dir() + "/store.sqlite").orphan_rows(), 0);
  const auto [faiss_ids, store_ids] = faiss_and_store_ids(*p);
  EXPECT_EQ(faiss_ids, store_ids);
  EXPECT_EQ(p->stats().store.documents, 4);
}

TEST(Indexing, RemovalLeavesNoOrphansNorFaissIds) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  p->add_documents(small_corpus());
  const auto corvin = p->find_document("corvin");
  ASSERT_TRUE(corvin.has_value());
  const std::vector<ChunkRecord> removed = p->document_chunks(corvin->id);

  EXPECT_TRUE(p->remove_document("corvin"));
  EXPECT_FALSE(p->remove_document("corvin"));
  EXPECT_FALSE(p->remove_document("nobody"));
  EXPECT_FALSE(p->find_document("corvin").has_value());
  EXPECT_TRUE(p->document_chunks(corvin->id).empty());

  const IndexStores stores = open_index_stores(p->dir() + "/store.sqlite");
  EXPECT_EQ(SqliteStore(p->dir() + "/store.sqlite").orphan_rows(), 0);
  for (const ChunkRecord& c : removed) {
    EXPECT_FALSE(stores.blobs->get(c.id).has_value());
  }
  const auto [faiss_ids, store_ids] = faiss_and_store_ids(*p);
  EXPECT_EQ(faiss_ids, store_ids);
  for (const ChunkRecord& c : removed) {
    EXPECT_EQ(std::count(faiss_ids.begin(), faiss_ids.end(), c.id), 0);
  }
  EXPECT_EQ(p->stats().faiss_vectors, static_cast<int64_t>(store_ids.size()));
}

// SQLite would hand the ids of the newest rows out again after their
// removal; the RAM K/V cache and FAISS are keyed by chunk id, so it must not.
TEST(Indexing, IdsOfRemovedChunksAreNeverReused) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  const std::vector<Document> docs = small_corpus();
  p->add_documents({docs[0], docs[1]});
  const auto newest = p->find_document("brenna");
  ASSERT_TRUE(newest.has_value());
  const int64_t highest_used = p->document_chunks(newest->id).back().id;
  ASSERT_TRUE(p->remove_document("brenna"));

  p->add_documents({docs[2]});
  const auto added = p->find_document("corvin");
  ASSERT_TRUE(added.has_value());
  EXPECT_GT(added->id, newest->id);
  for (const ChunkRecord& chunk : p->document_chunks(added->id)) {
    EXPECT_GT(chunk.id, highest_used);
  }
}

// Of an id repeated within one call the last copy wins, whether the copies
// fall in one batch or in two, and also when the last equals the stored
// document while an earlier copy differs.
TEST(Indexing, RepeatedIdLastCopyWins) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  const std::vector<Document> docs = small_corpus();
  Document first = docs[1];
  first.text = "Brenna was a fishing village before the salt trade.";
  for (const int64_t batch : {16, 1}) {
    SCOPED_TRACE(batch);
    p->add_documents({docs[1]});
    const IndexReport report = p->add_documents({first, docs[0], docs[1]}, batch);
    const auto stored = p->find_document("brenna");
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->text, docs[1].text);
    ASSERT_EQ(report.ids.size(), 2u);
    EXPECT_EQ(report.ids[1].first, "brenna");
    EXPECT_EQ(report.documents_unchanged, 1);
    EXPECT_TRUE(p->remove_document("brenna"));
    EXPECT_TRUE(p->remove_document("altan"));

    p->add_documents({docs[1], first}, batch);
    EXPECT_EQ(p->find_document("brenna")->text, first.text);
    EXPECT_TRUE(p->remove_document("brenna"));
  }
  const auto [faiss_ids, store_ids] = faiss_and_store_ids(*p);
  EXPECT_EQ(faiss_ids, store_ids);
}

// Documents from a library caller are normalised like the corpus reader's
// and the server's: the pipeline does it, whoever sends them.
TEST(Indexing, DocumentsAreNormalisedWhoeverSendsThem) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  const Document clean = small_corpus()[1];
  Document raw = clean;
  raw.text = "\xEF\xBB\xBF\r\n  \n" + clean.text + "  \r\n\r\n";
  p->add_documents({raw});
  const auto stored = p->find_document(clean.external_id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->text, clean.text);
  // Equal once normalised: the second copy leaves the document alone.
  EXPECT_EQ(p->add_documents({clean}).documents_unchanged, 1);
  Document blank = clean;
  blank.text = " \r\n\t ";
  EXPECT_TRUE(testing::throws_error([&] { p->add_documents({blank}); }, ErrorKind::kInvalidArgument,
                                    {"document 'brenna' has no text"}));
}

// A replacement whose text gives no chunk is refused, before anything of
// the call is written: it replaced the stored document's chunks with none.
TEST(Indexing, ADocumentThatGivesNoChunkIsRefusedAndTheStoredOneKept) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  const std::vector<Document> docs = small_corpus();
  p->add_documents({docs[0]});
  const auto stored = p->find_document(docs[0].external_id);
  ASSERT_TRUE(stored.has_value());
  const size_t chunks = p->document_chunks(stored->id).size();
  Document empty = docs[0];
  empty.text = "\u200b";
  const Document other = docs[1];
  EXPECT_TRUE(testing::throws_error(
      [&] {
        p->add_documents({other, empty}, 1);
      },
      ErrorKind::kInvalidArgument, {"document '" + docs[0].external_id + "' gives no chunk"}));
  EXPECT_EQ(p->document_chunks(stored->id).size(), chunks);
  EXPECT_FALSE(p->find_document(other.external_id).has_value());
}

// A second process writing the folder is refused while one writes; flock
// locks of two open() calls conflict even within one process.
TEST(Indexing, SecondWriterIsRefused) {
  const TempDir tmp("kvrag_indexing");
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  const std::vector<Document> docs = small_corpus();
  p->add_documents({docs[0]});
  const std::string lock_path = p->dir() + "/write.lock";
  ASSERT_TRUE(fs::exists(lock_path));
  {
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    const std::string message = "index " + p->dir() + " is being written by another process";
    EXPECT_TRUE(testing::throws_error([&] { p->add_documents({docs[1]}); }, ErrorKind::kUnavailable,
                                      {message}));
    EXPECT_TRUE(testing::throws_error([&] { p->remove_document("altan"); }, ErrorKind::kUnavailable,
                                      {message}));
    ::close(fd);
  }
  EXPECT_FALSE(p->find_document("brenna").has_value());
  p->add_documents({docs[1]});
  EXPECT_TRUE(p->find_document("brenna").has_value());
}

TEST(Indexing, OpeningWithAnotherModelIsRefused) {
  const TempDir tmp("kvrag_indexing");
  RagPipeline::create(tmp.file("index"), kDemoModel, small_settings())
      ->add_documents(small_corpus());
  // Same weights, a config.json that differs by one space: another fingerprint.
  const fs::path other = tmp.path() / "other-model";
  fs::create_directories(other);
  for (const char* name : {"config.json", "model.safetensors", "spiece.model"}) {
    fs::copy_file(fs::path(kDemoModel) / name, other / name);
  }
  testing::replace_in_file((other / "config.json").string(), "{", "{ ");
  OpenOptions options;
  options.model_dir = other.string();
  EXPECT_TRUE(testing::throws_error([&] { RagPipeline::open(tmp.file("index"), options); },
                                    ErrorKind::kInvalidArgument,
                                    {"kvrag-demo", other.string(), "fingerprint"}));
}

// OpenOptions::model: a second index of the same model shares its weights
// and answers as with its own copy; an index of another model refuses it,
// as it refuses that model's folder.
TEST(Indexing, OpeningWithALoadedModelSharesIt) {
  const TempDir tmp("kvrag_indexing");
  const auto first = RagPipeline::create(tmp.file("a"), kDemoModel, small_settings());
  first->add_documents(small_corpus());
  RagPipeline::create(tmp.file("b"), kDemoModel, small_settings())->add_documents(small_corpus());
  OpenOptions options;
  options.model = first->shared_model();
  const auto shared = RagPipeline::open(tmp.file("b"), options);
  EXPECT_EQ(&shared->model(), &first->model());
  const auto own = RagPipeline::open(tmp.file("b"));
  EXPECT_NE(&own->model(), &first->model());
  AskOptions ask;
  ask.mode = Mode::kCached;
  const std::string question = "Where does the Altan rise?";
  EXPECT_EQ(shared->ask(question, ask).ids, own->ask(question, ask).ids);

  const fs::path other = tmp.path() / "other-model";
  fs::create_directories(other);
  for (const char* name : {"config.json", "model.safetensors", "spiece.model"}) {
    fs::copy_file(fs::path(kDemoModel) / name, other / name);
  }
  testing::replace_in_file((other / "config.json").string(), "{", "{ ");
  RagPipeline::create(tmp.file("c"), other.string(), small_settings());
  EXPECT_TRUE(testing::throws_error([&] { RagPipeline::open(tmp.file("c"), options); },
                                    ErrorKind::kInvalidArgument,
                                    {other.string(), "kvrag-demo", "fingerprint"}));
}

// An index opens over any weight dtype of its model (the fingerprint is the
// checkpoint's) and says which one it holds. The demo model answers this
// question alike with f32 and f16 weights (one rounding per weight; its dev
// EM is the same too, README "f16 weights").
TEST(Indexing, OpensWithEveryWeightDtypeAndSaysWhichItHolds) {
  const TempDir tmp("kvrag_indexing");
  RagPipeline::create(tmp.file("a"), kDemoModel, small_settings())->add_documents(small_corpus());
  AskOptions ask;
  ask.mode = Mode::kCached;
  const std::string question = "Where does the Altan rise?";
  std::map<WeightDtype, std::vector<int32_t>> ids;
  for (const WeightDtype weights : {WeightDtype::kF32, WeightDtype::kF16, WeightDtype::kInt8}) {
    OpenOptions options;
    options.weights = weights;
    const auto pipeline = RagPipeline::open(tmp.file("a"), options);
    EXPECT_EQ(pipeline->stats().model_weights, weights) << weight_dtype_name(weights);
    ids[weights] = pipeline->ask(question, ask).ids;
  }
  EXPECT_EQ(ids[WeightDtype::kF16], ids[WeightDtype::kF32]);
  EXPECT_FALSE(ids[WeightDtype::kInt8].empty());
}

// The same config and weights with another spiece.model: another index
// identity (the model fingerprint alone covered config.json and weights).
TEST(Indexing, OpeningWithAnotherTokenizerIsRefused) {
  const TempDir tmp("kvrag_indexing");
  RagPipeline::create(tmp.file("index"), kDemoModel, small_settings())
      ->add_documents({small_corpus()[0]});
  const fs::path other = tmp.path() / "other-tokenizer";
  fs::create_directories(other);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(fs::path(kDemoModel) / name, other / name);
  }
  testing::train_tiny_spiece((other / "spiece.model").string());
  OpenOptions options;
  options.model_dir = other.string();
  EXPECT_TRUE(testing::throws_error(
      [&] { RagPipeline::open(tmp.file("index"), options); }, ErrorKind::kInvalidArgument,
      {"was built with the tokenizer ", "kvrag-demo/spiece.model (fingerprint ",
       "), not with " + other.string() + "/spiece.model (fingerprint ",
       "the same weights with another tokenizer read other token ids"}));
  // Without any spiece.model it is "none", also another identity.
  fs::remove(other / "spiece.model");
  EXPECT_TRUE(testing::throws_error([&] { RagPipeline::open(tmp.file("index"), options); },
                                    ErrorKind::kInvalidArgument, {"(fingerprint none)"}));
  // The index's own model folder still opens it.
  EXPECT_NO_THROW(RagPipeline::open(tmp.file("index")));
}

// An index of the kvrag before tokenizer fingerprints and K/V checksums:
// a clear error that says to index again, not a fingerprint puzzle.
TEST(Indexing, AnIndexOfAnOlderKvragSaysToIndexAgain) {
  const TempDir tmp("kvrag_indexing");
  RagPipeline::create(tmp.file("index"), kDemoModel, small_settings())
      ->add_documents({small_corpus()[0]});
  sql::Database(tmp.file("index/store.sqlite"))
      .exec("DELETE FROM meta WHERE key = 'tokenizer_fingerprint'");
  EXPECT_TRUE(testing::throws_error(
      [&] { RagPipeline::open(tmp.file("index")); }, ErrorKind::kFormat,
      {"store.sqlite: this index was built by an older kvrag (no tokenizer fingerprint, K/V "
       "blobs without checksums); index the documents again into a new folder"}));
}

// A K/V blob damaged on disk (one byte of one chunk's blob) is refused with
// its chunk id, where before it changed attention shares silently.
TEST(Indexing, ADamagedKvBlobIsRefusedWithItsChunkId) {
  const TempDir tmp("kvrag_indexing");
  int64_t chunk = 0;
  {
    const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
    p->add_documents({small_corpus()[0]});
    chunk = p->document_chunks(p->find_document("altan")->id).at(0).id;
  }
  {
    sql::Database db(tmp.file("index/store.sqlite"));
    // Four payload bytes (after the 32-byte header) set to 0xFF, which no
    // f16 K/V value (NaN) had there.
    db.exec(
        str_cat("UPDATE chunk_kv SET data = CAST(substr(data, 1, 100) || x'FFFFFFFF' || "
                "substr(data, 105) AS BLOB) WHERE chunk_id = ",
                chunk));
  }
  const auto p = RagPipeline::open(tmp.file("index"));
  AskOptions options;
  options.k = 5;  // every chunk of the one document, the damaged one included
  EXPECT_TRUE(testing::throws_error(
      [&] { p->ask("Where does the Altan rise?", options); }, ErrorKind::kFormat,
      {str_cat("memory of chunk ", chunk, ": K/V blob checksum mismatch (stored 0x"),
       "the store is damaged; remove and re-index the document"}));

  // A copy under another id reuses the intact chunks' memories and encodes
  // the damaged one's afresh: copied, the damage spread to the new chunk.
  Document copy = small_corpus()[0];
  copy.external_id = "altan-copy";
  const IndexReport report = p->add_documents({copy});
  const std::vector<ChunkRecord> copied = p->document_chunks(p->find_document("altan-copy")->id);
  EXPECT_EQ(report.chunks_reused, static_cast<int64_t>(copied.size()) - 1);
  const IndexStores stores = open_index_stores(tmp.file("index/store.sqlite"));
  for (const ChunkRecord& c : copied) {
    EXPECT_NO_THROW(read_kv_blob(*stores.blobs->get(c.id), "copied memory")) << c.id;
  }
}

// A long-lived reader (kvrag serve) holds the folder's write lock, so that
// another process's writes are refused, naming it, instead of half-seen
// (BM25 and document reads saw them, its in-memory FAISS did not).
TEST(Indexing, AHeldWriteLockRefusesOtherWritersButNotItsOwn) {
  const TempDir tmp("kvrag_indexing");
  const std::vector<Document> docs = small_corpus();
  const auto server = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  server->add_documents({docs[0]});
  server->hold_write_lock("held by kvrag serve, pid 42");
  {
    // Another open of the folder stands for another process: flock is per
    // open file, so it conflicts within one process too.
    const auto other = RagPipeline::open(tmp.file("index"));
    const std::vector<std::string> message = {
        "index " + server->dir() +
        " is being written by another process (held by kvrag serve, pid 42)"};
    EXPECT_TRUE(testing::throws_error([&] { other->add_documents({docs[1]}); },
                                      ErrorKind::kUnavailable, message));
    EXPECT_TRUE(testing::throws_error([&] { other->remove_document("altan"); },
                                      ErrorKind::kUnavailable, message));
  }
  server->add_documents({docs[1]});
  EXPECT_TRUE(server->remove_document("altan"));
  EXPECT_EQ(server->retrieve("harbour town", 1, RetrieverKind::kDense).at(0).external_id, "brenna");
}

TEST(Indexing, MissingIndexAndExistingIndexAreErrors) {
  const TempDir tmp("kvrag_indexing");
  EXPECT_TRUE(testing::throws_error([&] { RagPipeline::open(tmp.file("none")); },
                                    ErrorKind::kNotFound, {tmp.file("none")}));
  RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  EXPECT_TRUE(testing::throws_error(
      [&] { RagPipeline::create(tmp.file("index"), kDemoModel, small_settings()); },
      ErrorKind::kInvalidArgument, {"already holds an index"}));
  IndexSettings bad = small_settings();
  bad.chunking.overlap = 16;
  EXPECT_TRUE(testing::throws_error([&] { RagPipeline::create(tmp.file("bad"), kDemoModel, bad); },
                                    ErrorKind::kInvalidArgument, {"overlap"}));
  bad = small_settings();
  bad.faiss_factory = "NoSuchIndex";
  EXPECT_TRUE(testing::throws_error([&] { RagPipeline::create(tmp.file("bad"), kDemoModel, bad); },
                                    ErrorKind::kInvalidArgument, {"NoSuchIndex"}));
  EXPECT_FALSE(fs::exists(tmp.path() / "bad" / "store.sqlite"));
  EXPECT_TRUE(testing::throws_error(
      [&] { RagPipeline::open_or_create(tmp.file("new"), "", small_settings()); },
      ErrorKind::kInvalidArgument, {"model"}));
}

// vectors.faiss after `damage`, reopened: rebuilt with exactly the store's ids.
void expect_faiss_rebuilt(const std::function<void(const std::string& faiss_file)>& damage) {
  const TempDir tmp("kvrag_indexing");
  std::vector<int64_t> ids;
  {
    const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
    p->add_documents(small_corpus());
    ids = faiss_and_store_ids(*p).second;
  }
  damage(tmp.file("index/vectors.faiss"));
  const auto p = RagPipeline::open(tmp.file("index"));
  EXPECT_EQ(p->stats().faiss_vectors, static_cast<int64_t>(ids.size()));
  const auto [faiss_ids, store_ids] = faiss_and_store_ids(*p);
  EXPECT_EQ(faiss_ids, ids);
  EXPECT_EQ(store_ids, ids);
}

// SQLite has committed when vectors.faiss cannot be replaced (here a
// folder stands in its way): the error is reported, searches find exactly
// the committed chunks, and the next open rebuilds the file.
TEST(IndexingFaiss, FailedSaveAfterCommitKeepsSearchesInStep) {
  const TempDir tmp("kvrag_indexing");
  const std::vector<Document> docs = small_corpus();
  const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
  p->add_documents({docs[0], docs[1]});
  const fs::path faiss_file = tmp.file("index/vectors.faiss");
  fs::remove(faiss_file);
  fs::create_directories(faiss_file / "in-the-way");

  EXPECT_TRUE(testing::throws_error([&] { p->add_documents({docs[2]}); }, ErrorKind::kIo,
                                    {"vectors.faiss"}));
  EXPECT_TRUE(p->find_document("corvin").has_value());
  EXPECT_TRUE(testing::throws_error([&] { p->remove_document("altan"); }, ErrorKind::kIo,
                                    {"vectors.faiss"}));
  std::vector<int64_t> store_ids;
  open_index_stores(p->dir() + "/store.sqlite")
      .metadata->for_each_embedding(
          [&](int64_t id, std::span<const float>) { store_ids.push_back(id); });
  std::vector<int64_t> found;
  for (const RetrievedChunk& c : p->retrieve("Brenna", kMaxK, RetrieverKind::kDense)) {
    found.push_back(c.chunk_id);
  }
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, store_ids);
  EXPECT_EQ(p->stats().faiss_vectors, static_cast<int64_t>(store_ids.size()));

  fs::remove_all(faiss_file);
  const auto reopened = RagPipeline::open(tmp.file("index"));
  const auto [faiss_ids, reopened_store_ids] = faiss_and_store_ids(*reopened);
  EXPECT_EQ(faiss_ids, store_ids);
}

TEST(IndexingFaiss, DeletedFileIsRebuilt) {
  expect_faiss_rebuilt([](const std::string& file) { fs::remove(file); });
}

TEST(IndexingFaiss, TruncatedFileIsRebuilt) {
  expect_faiss_rebuilt(
      [](const std::string& file) { fs::resize_file(file, fs::file_size(file) / 2); });
}

// A damaged vector FAISS would still read (same ids, a wrong value) is
// caught by the file's checksum and rebuilt: the file is as it was.
TEST(IndexingFaiss, FileWithAFlippedBitIsRebuilt) {
  const TempDir tmp("kvrag_indexing");
  const std::string file = tmp.file("index/vectors.faiss");
  RagPipeline::create(tmp.file("index"), kDemoModel, small_settings())
      ->add_documents(small_corpus());
  const std::string intact = testing::read_text(file);
  std::string flipped = intact;
  flipped[intact.size() / 2] ^= 0x10;
  testing::write_text(file, flipped);
  RagPipeline::open(tmp.file("index"));
  EXPECT_EQ(testing::read_text(file), intact);
}

TEST(IndexingFaiss, FileBehindTheStoreIsRebuilt) {
  const TempDir tmp("kvrag_indexing");
  const std::vector<Document> docs = small_corpus();
  std::string old_faiss_generation;
  {
    const auto p = RagPipeline::create(tmp.file("index"), kDemoModel, small_settings());
    p->add_documents({docs[0], docs[1]});
    old_faiss_generation =
        *open_index_stores(tmp.file("index/store.sqlite")).metadata->meta("faiss_generation");
    Document changed = docs[1];
    changed.text.replace(changed.text.find("harbour"), 7, "river");
    p->add_documents({changed});
  }
  // As if killed after the store's commit and before the FAISS save, with a
  // file that holds the store's chunk ids but other vectors (negated): only
  // the generations in meta can tell.
  {
    const IndexStores stores = open_index_stores(tmp.file("index/store.sqlite"));
    std::vector<int64_t> ids;
    std::vector<float> vectors;
    stores.metadata->for_each_embedding([&](int64_t id, std::span<const float> embedding) {
      ids.push_back(id);
      for (const float v : embedding) vectors.push_back(-v);
    });
    FaissIndex stale(static_cast<int64_t>(vectors.size() / ids.size()), "Flat");
    stale.add(ids, vectors);
    stale.save(tmp.file("index/vectors.faiss"));
  }
  open_index_stores(tmp.file("index/store.sqlite"))
      .metadata->set_meta("faiss_generation", old_faiss_generation);
  const auto p = RagPipeline::open(tmp.file("index"));
  const auto index =
      FaissIndex::load(tmp.file("index/vectors.faiss"), p->model().config.d_model, "Flat");
  const IndexStores stores = open_index_stores(tmp.file("index/store.sqlite"));
  stores.metadata->for_each_embedding([&](int64_t id, std::span<const float> embedding) {
    const auto hits = index->search(embedding, 1);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(hits[0].id, id);
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-4);
  });
}

// A long title enters each chunk prompt cut to kMaxTitleTokens tokens; a
// short one whole.
TEST(IndexingPrompts, LongTitleIsCutInChunkPrompts) {
  const auto model = load_t5_model(kDemoModel);
  const IndexSettings settings = small_settings();
  std::string long_title;
  for (int i = 0; i < 200; ++i) long_title += " Altan";
  const std::string text = "The Altan is a river.";
  const auto untitled = chunk_prompt_ids(*model, settings, "", text);
  const auto titled = chunk_prompt_ids(*model, settings, long_title, text);
  EXPECT_GT(titled.size(), untitled.size());
  EXPECT_LE(titled.size(), untitled.size() + static_cast<size_t>(kMaxTitleTokens));
  const std::string short_title = "Corvin Hale";
  EXPECT_EQ(prompt_title(*model, short_title), short_title);
  EXPECT_EQ(chunk_prompt_ids(*model, settings, short_title, text),
            prompt_ids(*model, fill_prompt(settings.prompts.chunk,
                                           PromptFields{{}, short_title, text, {}})));
}

}  // namespace
}  // namespace kvrag

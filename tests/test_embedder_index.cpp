// An index built with a separate embedder (IndexSettings::embedder_dir,
// `kvrag index --embedder`): chunks and questions are embedded by it, FAISS
// has its dimension, the index records it and opens with it again, and an
// index refuses an embedder other than its own.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <vector>

#include "data/sqlite.h"
#include "data/store.h"
#include "pipeline/document_encoder.h"
#include "pipeline/index_meta.h"
#include "pipeline/rag_pipeline.h"
#include "tests/cli_run.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;
using testing::kDemoModel;
using testing::kTinySentenceT5;
using testing::TempDir;
using testing::throws_error;

Document make_document(const std::string& id, const std::string& title, const std::string& text) {
  Document doc;
  doc.external_id = id;
  doc.title = title;
  doc.source = "test:" + id;
  doc.text = text;
  doc.metadata_json = "{}";
  return doc;
}

// Two titled documents of two 16-token chunks or more, and one untitled.
std::vector<Document> corpus() {
  return {
      make_document("altan", "Altan (river)",
                    "The Altan is a river of the northern hills. It rises on Mount Sorrel and "
                    "empties into Lake Vire. Otters live along its quieter stretches."),
      make_document("brenna", "Brenna",
                    "Brenna is a harbour town on the eastern coast. It was founded in 1544 by "
                    "salt traders. The town is known for its blue lighthouse."),
      make_document("note", "", "A violin has four strings tuned in fifths."),
  };
}

IndexSettings embedder_settings() {
  IndexSettings s;
  s.chunking.max_tokens = 16;
  s.embedder_dir = kTinySentenceT5;
  return s;
}

// A copy of the fixture embedder at `dir`, its Dense bias shifted when
// `altered`: another embedder of the same layout and dimension.
void copy_embedder(const fs::path& dir, bool altered) {
  fs::copy(kTinySentenceT5, dir, fs::copy_options::recursive);
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    fs::permissions(entry.path(), fs::perms::owner_all, fs::perm_options::add);
  }
  if (!altered) return;
  const std::string dense = (dir / "2_Dense" / "model.safetensors").string();
  std::vector<testing::NamedTensor> tensors = testing::read_tensors(dense);
  testing::find_tensor(tensors, "linear.bias").values[0] += 1.0f;
  testing::write_safetensors(dense, tensors);
}

class EmbedderIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = RagPipeline::create(index_, kDemoModel, embedder_settings());
    p->add_documents(corpus());
  }

  TempDir tmp_{"kvrag_test_embedder_index"};
  std::string index_ = tmp_.file("index");
};

TEST_F(EmbedderIndex, ChunksAreEmbeddedByTheEmbedder) {
  const auto p = RagPipeline::open(index_);
  ASSERT_NE(p->embedder(), nullptr);
  const SentenceEmbedder& embedder = *p->embedder();
  const IndexStats stats = p->stats();
  EXPECT_EQ(stats.embedding_dim, 24);  // Dense out_features, not the reader's d_model 128
  EXPECT_EQ(stats.embedder_dir, fs::absolute(kTinySentenceT5).lexically_normal().string());
  EXPECT_EQ(stats.embedder_fingerprint, SentenceEmbedder::load(kTinySentenceT5)->fingerprint());
  EXPECT_GT(stats.store.chunks, 4);
  EXPECT_EQ(stats.faiss_vectors, stats.store.chunks);

  // Every stored embedding is the embedder's of "title text" (no prompt).
  const Store store(index_ + "/store.sqlite");
  std::map<int64_t, std::vector<float>> stored;
  store.for_each_embedding([&](int64_t id, std::span<const float> e) {
    stored[id] = std::vector<float>(e.begin(), e.end());
  });
  for (const Document& doc : corpus()) {
    const auto record = p->find_document(doc.external_id);
    ASSERT_TRUE(record.has_value());
    for (const ChunkRecord& c : p->document_chunks(record->id)) {
      const std::string text = chunk_embedder_text(doc.title, c.text);
      EXPECT_EQ(text, doc.title.empty() ? c.text : doc.title + " " + c.text);
      const std::vector<float> want = embedder.embed(embedder.input_ids(text));
      ASSERT_EQ(stored.at(c.id).size(), 24u);
      for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(stored.at(c.id)[j], want[j], 1e-6);
    }
  }
}

TEST_F(EmbedderIndex, SearchFindsTheChunkWhoseTextIsTheQuery) {
  const auto p = RagPipeline::open(index_);
  const auto brenna = p->find_document("brenna");
  ASSERT_TRUE(brenna.has_value());
  const std::vector<ChunkRecord> chunks = p->document_chunks(brenna->id);
  ASSERT_GE(chunks.size(), 2u);
  // The query embeds as its chunk did: the same text, the same ids.
  for (const ChunkRecord& c : chunks) {
    const auto hits = p->retrieve("Brenna " + c.text, 3, RetrieverKind::kDense);
    ASSERT_FALSE(hits.empty());
    EXPECT_EQ(hits[0].chunk_id, c.id) << c.text;
    EXPECT_NEAR(hits[0].score, 1.0, 1e-5);
    EXPECT_LT(hits[1].score, hits[0].score - 1e-4);
  }
  const auto note =
      p->retrieve("A violin has four strings tuned in fifths.", 1, RetrieverKind::kHybrid);
  ASSERT_EQ(note.size(), 1u);
  EXPECT_EQ(note[0].external_id, "note");

  // Asking runs the reader as before: cached mode encodes the question
  // prompt itself, the embedder only retrieves.
  AskOptions options;
  options.k = 2;
  options.retriever = RetrieverKind::kDense;
  const Answer answer = p->ask("Who founded Brenna?", options);
  ASSERT_EQ(answer.sources.size(), 2u);
  EXPECT_GT(answer.timings.encode_ms, 0.0);
}

TEST_F(EmbedderIndex, OpensWithItsEmbedderAndRefusesAnother) {
  // The same embedder in another folder (moved) is the same fingerprint.
  copy_embedder(tmp_.path() / "moved", false);
  OpenOptions moved;
  moved.embedder_dir = tmp_.file("moved");
  EXPECT_EQ(RagPipeline::open(index_, moved)->embedder()->dir(), tmp_.file("moved"));

  copy_embedder(tmp_.path() / "other", true);
  OpenOptions other;
  other.embedder_dir = tmp_.file("other");
  const std::string recorded = fs::absolute(kTinySentenceT5).lexically_normal().string();
  EXPECT_TRUE(throws_error(
      [&] { RagPipeline::open(index_, other); }, ErrorKind::kInvalidArgument,
      {"the index " + index_ + " was built with the embedder " + recorded + " (fingerprint " +
           SentenceEmbedder::load(kTinySentenceT5)->fingerprint() + ")",
       "not with the embedder " + tmp_.file("other") + " (fingerprint " +
           SentenceEmbedder::load(tmp_.file("other"))->fingerprint() + ")"}));
  // open_or_create with another embedder, as `kvrag index --embedder` does.
  IndexSettings settings = embedder_settings();
  settings.embedder_dir = tmp_.file("other");
  EXPECT_TRUE(throws_error([&] { RagPipeline::open_or_create(index_, kDemoModel, settings); },
                           ErrorKind::kInvalidArgument, {"not with the embedder"}));
}

TEST(EmbedderIndexWithout, TheReaderEncoderEmbedsAndAnEmbedderIsRefused) {
  const TempDir tmp("kvrag_test_embedder_index");
  const std::string index = tmp.file("index");
  IndexSettings settings;
  settings.chunking.max_tokens = 16;
  RagPipeline::create(index, kDemoModel, settings)->add_documents(corpus());
  const auto p = RagPipeline::open(index);
  EXPECT_EQ(p->embedder(), nullptr);
  const IndexStats stats = p->stats();
  EXPECT_EQ(stats.embedding_dim, 128);
  EXPECT_EQ(stats.embedder_dir, "");
  EXPECT_EQ(stats.embedder_fingerprint, kNoEmbedder);

  OpenOptions with;
  with.embedder_dir = kTinySentenceT5;
  EXPECT_TRUE(throws_error(
      [&] { RagPipeline::open(index, with); }, ErrorKind::kInvalidArgument,
      {"the index " + index +
       " was built without a separate embedder (the reader's encoder embeds), not with the "
       "embedder " +
       kTinySentenceT5}));

  // An index written before separate embedders (no embedder keys) opens as
  // one without.
  const std::vector<int64_t> before = [&] {
    std::vector<int64_t> ids;
    for (const auto& hit : p->retrieve("Who founded Brenna?", 3, RetrieverKind::kDense)) {
      ids.push_back(hit.chunk_id);
    }
    return ids;
  }();
  sql::Database(index + "/store.sqlite")
      .exec("DELETE FROM meta WHERE key IN ('embedder_dir', 'embedder_fingerprint')");
  const auto old = RagPipeline::open(index);
  EXPECT_EQ(old->embedder(), nullptr);
  std::vector<int64_t> after;
  for (const auto& hit : old->retrieve("Who founded Brenna?", 3, RetrieverKind::kDense)) {
    after.push_back(hit.chunk_id);
  }
  EXPECT_EQ(after, before);
}

TEST(EmbedderIndexCli, IndexInfoAndABadFolder) {
  const TempDir tmp("kvrag_test_embedder_index");
  testing::write_text(tmp.file("note.txt"), "A violin has four strings tuned in fifths.");
  const testing::CliRun run =
      testing::run_kvrag({"index", "--model", kDemoModel, "--embedder", kTinySentenceT5, "--index",
                          tmp.file("index"), tmp.file("note.txt")});
  ASSERT_EQ(run.exit_code, 0) << testing::describe(run);
  const testing::CliRun info = testing::run_kvrag({"info", "--index", tmp.file("index")});
  ASSERT_EQ(info.exit_code, 0) << testing::describe(info);
  const std::string fingerprint = SentenceEmbedder::load(kTinySentenceT5)->fingerprint();
  EXPECT_NE(info.out.find("embedder              " +
                          fs::absolute(kTinySentenceT5).lexically_normal().string() +
                          " (fingerprint " + fingerprint + "), 24 dimensions"),
            std::string::npos)
      << info.out;
  // Every command that opens the index checks an --embedder it is given.
  copy_embedder(tmp.path() / "other", true);
  const testing::CliRun other = testing::run_kvrag(
      {"search", "--index", tmp.file("index"), "--embedder", tmp.file("other"), "violin"});
  EXPECT_EQ(other.exit_code, 2) << testing::describe(other);
  EXPECT_NE(other.err.find("not with the embedder " + tmp.file("other")), std::string::npos)
      << testing::describe(other);

  const testing::CliRun bad =
      testing::run_kvrag({"index", "--model", kDemoModel, "--embedder", kDemoModel, "--index",
                          tmp.file("bad"), tmp.file("note.txt")});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find(kDemoModel + "/modules.json: no such file"), std::string::npos)
      << testing::describe(bad);
  EXPECT_FALSE(fs::exists(tmp.file("bad") + "/store.sqlite"));
}

}  // namespace
}  // namespace kvrag

// Answering through RagPipeline with the demo model over a few documents of
// the sample corpus: the cached mode is exactly the computation over freshly
// encoded chunks, every mode reads the pinned answer from its chunk and its
// attention ranks that chunk first, the retrievers find chunks by their own
// words, streaming, the RAM cache, and bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "data/corpus_reader.h"
#include "encoder/cross_kv.h"
#include "pipeline/document_encoder.h"
#include "pipeline/evaluation.h"
#include "pipeline/passage_prior.h"
#include "pipeline/prompts.h"
#include "pipeline/qa_metrics.h"
#include "pipeline/rag_pipeline.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {
using ::testing::HasSubstr;
using testing::kDemoModel;
using testing::kSampleCorpus;
using testing::relative_error;
using testing::TempDir;
using testing::throws_error;

// The pinned question (tests/sample_corpus.h says why this one), its answer
// and its document.
constexpr const char* kQuestion = testing::kPinnedQuestion;
const std::vector<std::string> kGold = {testing::kPinnedAnswer};
constexpr const char* kGoldDocument = testing::kPinnedDocumentId;
// Questions over this corpus on which the K/V dtypes are compared.
const std::vector<std::string> kDtypeQuestions = {
    kQuestion, "Who first mapped the Yiolind?", "Who holds the office of mayor in Wiafoundholt?",
    "How many patents did Florian Nyv hold?", "How long is the Fozad?"};

std::vector<Document> test_documents() {
  const CorpusReadResult read = read_corpus({kSampleCorpus});
  std::map<std::string, Document> by_id;
  for (const Document& doc : read.documents) by_id[doc.external_id] = doc;
  std::vector<Document> docs;
  for (const std::string& id : testing::kPinnedDocumentIds) docs.push_back(by_id.at(id));
  return docs;
}

std::shared_ptr<const T5Model> demo_model() {
  static const std::shared_ptr<const T5Model> model = load_t5_model(kDemoModel);
  return model;
}

// One index per setting, built once for the whole suite (a few seconds).
RagPipeline& index(KvDtype dtype, CacheGranularity cache = CacheGranularity::kKv) {
  static TempDir dir("kvrag-answering");
  static std::map<std::pair<KvDtype, CacheGranularity>, std::unique_ptr<RagPipeline>> indexes;
  std::unique_ptr<RagPipeline>& slot = indexes[{dtype, cache}];
  if (!slot) {
    IndexSettings settings;
    settings.kv_dtype = dtype;
    settings.cache = cache;
    slot = RagPipeline::create(
        dir.file(str_cat(kv_dtype_name(dtype), "-", cache_granularity_name(cache))), kDemoModel,
        settings);
    slot->add_documents(test_documents());
  }
  return *slot;
}
RagPipeline& f32() { return index(KvDtype::kF32); }

AskOptions ask_options(Mode mode, int64_t k = 3) {
  AskOptions options;
  options.mode = mode;
  options.k = k;
  return options;
}

// The generated ids behind the decoder start token: what teacher_forced scores.
std::vector<int32_t> with_start(const std::vector<int32_t>& ids) {
  std::vector<int32_t> out{demo_model()->config.decoder_start_token_id};
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

// Teacher-forced logits of `ids` (after the start token) over `memory`.
Tensor forced_logits(const CrossMemory& memory, const std::vector<int32_t>& ids) {
  return T5Decoder(demo_model()).teacher_forced(with_start(ids), memory).logits;
}

// The cached-mode memory `p` builds for `question` over `chunks`.
CrossMemory cached_memory(const RagPipeline& p, const std::string& question,
                      const std::vector<RetrievedChunk>& chunks) {
  AskTimings timings;
  return p.build_memory(question, chunks, Mode::kCached, timings).kv;
}

// A pinned document of another topic, whose chunks the retrievers must find by their own words.
constexpr const char* kRetrievalDocumentId = "doc-0037";

bool is_gold_chunk(const RetrievedChunk& chunk) {
  return chunk.external_id == kGoldDocument && contains_answer(chunk.text, kGold);
}

// ---------------------------------------------------------------- exactness

TEST(AnsweringExactness, CachedModeIsTheComputationOverFreshlyEncodedChunks) {
  const RagPipeline& p = f32();
  const std::vector<RetrievedChunk> chunks = p.retrieve(kQuestion, 3, RetrieverKind::kDense);
  ASSERT_EQ(chunks.size(), 3u);

  // The reference: the question prompt and each chunk prompt encoded now,
  // the encoder outputs concatenated on the time axis and projected.
  const T5Model& model = *demo_model();
  const T5Encoder encoder(demo_model());
  Tensor hidden = encoder.encode(
      prompt_ids(model, fill_prompt(p.settings().prompts.question, {kQuestion, {}, {}, {}})));
  const int64_t question_tokens = hidden.rows();
  for (const RetrievedChunk& chunk : chunks) {
    hidden.append_rows(
        encoder.encode(chunk_prompt_ids(model, p.settings(), chunk.title, chunk.text)).view());
  }
  const CrossMemory fresh(project_cross_kv(model, hidden.view()));

  AskTimings timings;
  const AnswerMemory cached = p.build_memory(kQuestion, chunks, Mode::kCached, timings);
  ASSERT_EQ(cached.kv.tokens(), fresh.tokens());
  EXPECT_EQ(timings.memory_tokens, fresh.tokens());
  ASSERT_EQ(cached.spans.size(), 3u);
  EXPECT_EQ(cached.spans.front().first, question_tokens);
  EXPECT_EQ(cached.spans.back().second, fresh.tokens());

  // The memory alone: the passage prior (tested below) weighs nothing here.
  AskOptions unweighed = ask_options(Mode::kCached);
  unweighed.passage_prior = false;
  const Answer answer = p.answer(kQuestion, chunks, unweighed);
  const Generation reference = generate(T5Decoder(demo_model()), fresh, unweighed.generation);
  EXPECT_EQ(with_start(answer.ids), reference.ids);
  const double error =
      relative_error(forced_logits(cached.kv, answer.ids), forced_logits(fresh, answer.ids));
  std::cout << "cached (f32 K/V) vs fresh encoding: max |logit diff| / max |logit| = " << error
            << "\n";
  EXPECT_LT(error, 1e-5);
}

TEST(AnsweringExactness, HiddenGranularityEqualsKv) {
  const RagPipeline& hidden = index(KvDtype::kF32, CacheGranularity::kHidden);
  for (const std::string& question : kDtypeQuestions) {
    const std::vector<RetrievedChunk> chunks = f32().retrieve(question, 3, RetrieverKind::kDense);
    const Answer kv = f32().answer(question, chunks, ask_options(Mode::kCached));
    const Answer projected = hidden.answer(question, chunks, ask_options(Mode::kCached));
    EXPECT_EQ(projected.ids, kv.ids) << question;
    EXPECT_LT(relative_error(forced_logits(cached_memory(hidden, question, chunks), kv.ids),
                             forced_logits(cached_memory(f32(), question, chunks), kv.ids)),
              1e-5)
        << question;
  }
}

// f16 and int8 K/V round the stored memory; on this corpus the generated
// tokens stay those of f32 (the logit differences are printed: with the demo
// model up to 7e-4 for f16 and 0.094 for int8, whose per-row absmax scale
// rounds each value to 1/254 of its row's largest).
TEST(AnsweringExactness, F16AndInt8GiveTheTokensOfF32) {
  for (const std::string& question : kDtypeQuestions) {
    const std::vector<RetrievedChunk> chunks = f32().retrieve(question, 3, RetrieverKind::kDense);
    const Answer exact = f32().answer(question, chunks, ask_options(Mode::kCached));
    const Tensor exact_logits = forced_logits(cached_memory(f32(), question, chunks), exact.ids);
    for (KvDtype dtype : {KvDtype::kF16, KvDtype::kInt8}) {
      const RagPipeline& rounded = index(dtype);
      const Answer answer = rounded.answer(question, chunks, ask_options(Mode::kCached));
      EXPECT_EQ(answer.ids, exact.ids) << kv_dtype_name(dtype) << ": " << question;
      const double error = relative_error(
          forced_logits(cached_memory(rounded, question, chunks), exact.ids), exact_logits);
      std::cout << kv_dtype_name(dtype) << " vs f32 K/V, \"" << question
                << "\": max |logit diff| / max |logit| = " << error << "\n";
      EXPECT_LT(error, dtype == KvDtype::kF16 ? 1e-2 : 0.15);
    }
  }
}

// ---------------------------------------------------------------- modes

TEST(AnsweringModes, EachModeReadsTheAnswerFromItsChunk) {
  const RagPipeline& p = f32();
  // The best chunks of other documents: the memory without the gold one.
  std::vector<RetrievedChunk> without;
  for (const RetrievedChunk& chunk : p.retrieve(kQuestion, 10, RetrieverKind::kDense)) {
    if (chunk.external_id != kGoldDocument && without.size() < 3) without.push_back(chunk);
  }
  ASSERT_EQ(without.size(), 3u);
  for (Mode mode : {Mode::kCached, Mode::kConcat, Mode::kFid}) {
    SCOPED_TRACE(mode_name(mode));
    const Answer answer = p.ask(kQuestion, ask_options(mode));
    EXPECT_EQ(answer.mode, mode);
    EXPECT_EQ(exact_match(answer.text, kGold), 1.0) << answer.text;
    ASSERT_EQ(answer.sources.size(), 3u);
    EXPECT_TRUE(is_gold_chunk(answer.sources.front().chunk));
    double total = answer.question_attention;
    for (const Source& source : answer.sources) total += source.attention;
    EXPECT_NEAR(total, 1.0, 1e-4);

    // The attention share ranks a chunk of the gold document first; in
    // cached and concat mode the answer-bearing one. (In fid mode every
    // encoding holds the question, so a chunk that names the river without
    // the answer can draw as much attention.)
    const auto most = std::max_element(
        answer.sources.begin(), answer.sources.end(),
        [](const Source& a, const Source& b) { return a.attention < b.attention; });
    EXPECT_EQ(most->chunk.external_id, kGoldDocument);
    if (mode == Mode::kFid) {
      EXPECT_NEAR(answer.question_attention, 0.0, 1e-6);
    } else {
      EXPECT_TRUE(is_gold_chunk(most->chunk)) << most->chunk.text;
    }

    // Without the gold document the answer is gone: it is read, not known.
    const Answer guess = p.answer(kQuestion, without, ask_options(mode));
    EXPECT_EQ(exact_match(guess.text, kGold), 0.0) << guess.text;
  }
}

// ---------------------------------------------------------------- passage prior

// With dense retrieval a chunk's score is the inner product of its embedding
// with the question's: the prior every mode reports is softmax(score / τ)
// over the k chunks, τ the demo model's declared temperature; and the answer
// is the generation over the memory with that bias, which the prior's
// absence leaves out.
TEST(AnsweringPrior, WeighsEachModesChunksByTheRetrieversProbability) {
  const RagPipeline& p = f32();
  const double temperature = demo_model()->config.retrieval_temperature;
  ASSERT_GT(temperature, 0.0) << "the demo model declares kvrag_retrieval_temperature";
  const std::vector<RetrievedChunk> chunks = p.retrieve(kQuestion, 4, RetrieverKind::kDense);
  double sum = 0.0;
  for (const RetrievedChunk& chunk : chunks) sum += std::exp(chunk.score / temperature);
  for (Mode mode : {Mode::kCached, Mode::kConcat, Mode::kFid}) {
    SCOPED_TRACE(mode_name(mode));
    AskOptions options = ask_options(mode, 4);
    const Answer answer = p.answer(kQuestion, chunks, options);
    ASSERT_EQ(answer.sources.size(), chunks.size());
    std::vector<float> log_weights;
    for (size_t i = 0; i < chunks.size(); ++i) {
      ASSERT_TRUE(answer.sources[i].prior.has_value());
      const double want = std::exp(chunks[i].score / temperature) / sum;
      EXPECT_NEAR(*answer.sources[i].prior, want, 1e-5) << i;
      log_weights.push_back(static_cast<float>(std::log(4.0 * want)));
    }
    AskTimings timings;
    AnswerMemory memory = p.build_memory(kQuestion, chunks, mode, timings);
    memory.kv.set_bias(passage_bias(memory.kv.tokens(), memory.spans, log_weights));
    EXPECT_EQ(with_start(answer.ids),
              generate(T5Decoder(demo_model()), memory.kv, options.generation).ids);

    options.passage_prior = false;
    const Answer unweighed = p.answer(kQuestion, chunks, options);
    for (const Source& source : unweighed.sources) EXPECT_FALSE(source.prior.has_value());
  }
}

TEST(AnsweringModes, ConcatSpansAreThePassageTokens) {
  const RagPipeline& p = f32();
  const std::vector<RetrievedChunk> chunks = p.retrieve(kQuestion, 3, RetrieverKind::kDense);
  AskTimings timings;
  const AnswerMemory memory = p.build_memory(kQuestion, chunks, Mode::kConcat, timings);
  const PromptTemplates& prompts = p.settings().prompts;
  std::string passages;
  for (const RetrievedChunk& chunk : chunks) {
    // append, not " " + string: GCC 12 warns falsely (-Wrestrict) on the latter.
    if (!passages.empty()) passages.append(" ");
    passages.append(fill_prompt(prompts.concat_passage, {{}, chunk.title, chunk.text, {}}));
  }
  const std::vector<int32_t> ids =
      prompt_ids(*demo_model(), fill_prompt(prompts.concat, {kQuestion, {}, {}, passages}));
  ASSERT_EQ(memory.kv.tokens(), static_cast<int64_t>(ids.size()));
  ASSERT_EQ(memory.spans.size(), chunks.size());
  const Tokenizer& tokenizer = demo_model()->require_tokenizer();
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto [begin, end] = memory.spans[i];
    const std::vector<int32_t> piece(ids.begin() + begin, ids.begin() + end);
    EXPECT_EQ(tokenizer.decode(piece),
              fill_prompt(prompts.concat_passage, {{}, chunks[i].title, chunks[i].text, {}}));
    if (i > 0) {
      EXPECT_EQ(begin, memory.spans[i - 1].second);
    }
  }
  EXPECT_EQ(memory.spans.back().second + 1, memory.kv.tokens());  // then eos
}

// ask() in cached mode encodes the question prompt once for retrieval and
// memory; it must give what retrieve() then answer() give, which encode it
// each for itself.
TEST(AnsweringModes, CachedAskEqualsRetrieveThenAnswer) {
  const RagPipeline& p = f32();
  for (RetrieverKind retriever : {RetrieverKind::kDense, RetrieverKind::kHybrid}) {
    for (const std::string& question : kDtypeQuestions) {
      SCOPED_TRACE(str_cat(retriever_name(retriever), ": ", question));
      AskOptions options = ask_options(Mode::kCached);
      options.retriever = retriever;
      const Answer asked = p.ask(question, options);
      const std::vector<RetrievedChunk> chunks = p.retrieve(question, options.k, retriever);
      const Answer answered = p.answer(question, chunks, options);
      EXPECT_EQ(asked.ids, answered.ids);
      ASSERT_EQ(asked.sources.size(), chunks.size());
      for (size_t i = 0; i < chunks.size(); ++i) {
        EXPECT_EQ(asked.sources[i].chunk.chunk_id, chunks[i].chunk_id);
        EXPECT_EQ(asked.sources[i].chunk.score, chunks[i].score);
        EXPECT_EQ(asked.sources[i].attention, answered.sources[i].attention);
      }
      EXPECT_EQ(asked.question_attention, answered.question_attention);
      EXPECT_EQ(asked.timings.memory_tokens, answered.timings.memory_tokens);
    }
  }
}

TEST(AnsweringModes, BeamSearchAndTimings) {
  AskOptions options = ask_options(Mode::kCached);
  options.generation.num_beams = 4;
  const Answer answer = f32().ask(kQuestion, options);
  EXPECT_EQ(exact_match(answer.text, kGold), 1.0) << answer.text;
  const AskTimings& t = answer.timings;
  EXPECT_GT(t.retrieve_ms, 0.0);
  EXPECT_GT(t.encode_ms, 0.0);
  EXPECT_GT(t.decode_ms, 0.0);
  EXPECT_GE(t.first_token_ms, t.encode_ms);
  EXPECT_GE(t.total_ms, t.retrieve_ms + t.decode_ms);
  EXPECT_EQ(t.generated_tokens, static_cast<int64_t>(answer.ids.size()));
  EXPECT_GT(t.tokens_per_s, 0.0);
}

TEST(AnsweringModes, StreamedPiecesMakeTheAnswer) {
  for (int64_t beams : {1, 3}) {
    AskOptions options = ask_options(Mode::kCached);
    options.generation.num_beams = beams;
    std::string streamed;
    int pieces = 0;
    const Answer answer = f32().ask(kQuestion, options, [&](const std::string& piece) {
      streamed += piece;
      ++pieces;
    });
    EXPECT_EQ(streamed, answer.text) << beams << " beams";
    EXPECT_GT(pieces, 1);
  }
}

// ---------------------------------------------------------------- RAM cache

TEST(AnsweringCache, SecondAskIsServedFromRam) {
  TempDir dir("kvrag-answering-cache");
  {
    IndexSettings settings;
    RagPipeline::create(dir.file("index"), kDemoModel, settings)->add_documents(test_documents());
  }
  const auto p = RagPipeline::open(dir.file("index"));
  const Answer first = p->ask(kQuestion, ask_options(Mode::kCached));
  EXPECT_EQ(first.timings.kv_cache_misses, 3);
  EXPECT_EQ(first.timings.kv_cache_hits, 0);
  EXPECT_GT(first.timings.store_bytes_read, 0);
  const Answer second = p->ask(kQuestion, ask_options(Mode::kCached));
  EXPECT_EQ(second.timings.kv_cache_hits, 3);
  EXPECT_EQ(second.timings.kv_cache_misses, 0);
  EXPECT_EQ(second.timings.store_bytes_read, 0);
  EXPECT_EQ(second.ids, first.ids);
  const IndexStats stats = p->stats();
  EXPECT_EQ(stats.kv_cache_hits, 3);
  EXPECT_EQ(stats.kv_cache_misses, 3);
  EXPECT_GT(stats.kv_cache_bytes_used, 0);

  OpenOptions no_cache;
  no_cache.kv_cache_bytes = 0;
  const auto uncached = RagPipeline::open(dir.file("index"), no_cache);
  uncached->ask(kQuestion, ask_options(Mode::kCached));
  const Answer again = uncached->ask(kQuestion, ask_options(Mode::kCached));
  EXPECT_EQ(again.timings.kv_cache_misses, 3);
  EXPECT_EQ(again.ids, first.ids);
}

// Some chunks in the RAM cache, the others read from the store beside the
// question's encoding: the answer is the one read wholly from the store.
TEST(AnsweringCache, AskWithSomeChunksCachedAnswersAsFromTheStore) {
  TempDir dir("kvrag-answering-cache-some");
  {
    IndexSettings settings;
    RagPipeline::create(dir.file("index"), kDemoModel, settings)->add_documents(test_documents());
  }
  OpenOptions no_cache;
  no_cache.kv_cache_bytes = 0;
  const Answer from_store =
      RagPipeline::open(dir.file("index"), no_cache)->ask(kQuestion, ask_options(Mode::kCached));

  const auto p = RagPipeline::open(dir.file("index"));
  p->ask(kQuestion, ask_options(Mode::kCached, 1));
  const Answer mixed = p->ask(kQuestion, ask_options(Mode::kCached));
  EXPECT_EQ(mixed.timings.kv_cache_hits, 1);
  EXPECT_EQ(mixed.timings.kv_cache_misses, 2);
  EXPECT_GT(mixed.timings.store_bytes_read, 0);
  EXPECT_EQ(mixed.ids, from_store.ids);
  ASSERT_EQ(mixed.sources.size(), from_store.sources.size());
  for (size_t i = 0; i < mixed.sources.size(); ++i) {
    EXPECT_EQ(mixed.sources[i].chunk.chunk_id, from_store.sources[i].chunk.chunk_id);
    EXPECT_DOUBLE_EQ(mixed.sources[i].attention, from_store.sources[i].attention);
  }
}

// ---------------------------------------------------------------- retrieval

TEST(AnsweringRetrieval, EachRetrieverFindsAChunkByItsOwnWords) {
  const RagPipeline& p = f32();
  const std::optional<DocumentRecord> doc = p.find_document(kRetrievalDocumentId);
  ASSERT_TRUE(doc.has_value());
  for (const ChunkRecord& chunk : p.document_chunks(doc->id)) {
    // The chunk's first twelve words.
    std::istringstream words(chunk.text);
    std::string query;
    std::string word;
    for (int i = 0; i < 12 && words >> word; ++i) query.append(i ? " " : "").append(word);
    for (RetrieverKind kind :
         {RetrieverKind::kDense, RetrieverKind::kBm25, RetrieverKind::kHybrid}) {
      const std::vector<RetrievedChunk> found = p.retrieve(query, 3, kind);
      ASSERT_FALSE(found.empty()) << retriever_name(kind);
      EXPECT_TRUE(std::any_of(found.begin(), found.end(),
                              [&](const RetrievedChunk& c) { return c.chunk_id == chunk.id; }))
          << retriever_name(kind) << ": " << query;
      EXPECT_EQ(found.front().external_id, kRetrievalDocumentId)
          << retriever_name(kind) << ": " << query;
      EXPECT_EQ(found.front().title, "Florian Nyv");
      for (size_t i = 1; i < found.size(); ++i) EXPECT_GE(found[i - 1].score, found[i].score);
    }
  }
}

TEST(AnsweringRetrieval, KAboveTheCorpusReturnsTheCorpus) {
  const RagPipeline& p = f32();
  const int64_t chunks = p.stats().store.chunks;
  ASSERT_LT(chunks, kMaxK);
  for (RetrieverKind kind : {RetrieverKind::kDense, RetrieverKind::kHybrid}) {
    const std::vector<RetrievedChunk> all = p.retrieve(kQuestion, kMaxK, kind);
    EXPECT_EQ(static_cast<int64_t>(all.size()), chunks) << retriever_name(kind);
    std::vector<int64_t> ids;
    for (const RetrievedChunk& c : all) ids.push_back(c.chunk_id);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << retriever_name(kind);
  }
  // BM25 returns only chunks that share a word with the query: every chunk
  // here has "the", "in" or "its".
  EXPECT_EQ(static_cast<int64_t>(p.retrieve("the in its", kMaxK, RetrieverKind::kBm25).size()),
            chunks);
}

// ---------------------------------------------------------------- bad input

TEST(AnsweringErrors, BadInputIsAClearError) {
  const RagPipeline& p = f32();
  EXPECT_TRUE(throws_error([&] { p.ask("", ask_options(Mode::kCached)); },
                           ErrorKind::kInvalidArgument, {"question is empty"}));
  EXPECT_TRUE(throws_error([&] { p.ask(" \n\t", ask_options(Mode::kCached)); },
                           ErrorKind::kInvalidArgument, {"question is empty"}));
  EXPECT_TRUE(throws_error([&] { p.retrieve("", 3, RetrieverKind::kBm25); },
                           ErrorKind::kInvalidArgument, {"query is empty"}));
  EXPECT_TRUE(throws_error([&] { p.answer("", {}, ask_options(Mode::kConcat)); },
                           ErrorKind::kInvalidArgument, {"question is empty"}));
  for (int64_t k : {int64_t{0}, int64_t{-1}, kMaxK + 1}) {
    EXPECT_TRUE(throws_error([&] { p.ask(kQuestion, ask_options(Mode::kCached, k)); },
                             ErrorKind::kInvalidArgument,
                             {"k must be in 1..100", str_cat("got ", k)}));
  }
  EXPECT_TRUE(throws_error([] { parse_mode("fusion"); }, ErrorKind::kInvalidArgument,
                           {"unknown mode 'fusion'", "cached, concat, fid"}));
  EXPECT_TRUE(throws_error([] { parse_retriever("sparse"); }, ErrorKind::kInvalidArgument,
                           {"unknown retriever 'sparse'"}));
  TempDir dir("kvrag-answering-missing");
  EXPECT_TRUE(throws_error([&] { RagPipeline::open(dir.file("no-such-index")); },
                           ErrorKind::kNotFound, {"no-such-index"}));
}

// `words` copies of a short word: about one token each.
std::string repeated_words(int64_t words) {
  std::string out;
  for (int64_t i = 0; i < words; ++i) out += i ? " the" : "the";
  return out;
}

TEST(AnsweringLimits, LongQuestionIsRejectedNotTruncated) {
  const RagPipeline& p = f32();
  const std::string question = repeated_words(kMaxQuestionTokens + 10) + "?";
  for (const Mode mode : {Mode::kCached, Mode::kConcat, Mode::kFid}) {
    EXPECT_TRUE(
        throws_error([&] { p.ask(question, ask_options(mode)); }, ErrorKind::kInvalidArgument,
                     {"field 'question' has ", " tokens, more than the limit of 256 tokens"}));
  }
  EXPECT_TRUE(throws_error([&] { p.retrieve(question, 3, RetrieverKind::kBm25); },
                           ErrorKind::kInvalidArgument,
                           {"field 'query' has ", "more than the limit of 256 tokens"}));
  // At the cap it is answered.
  const std::string at_cap = repeated_words(kMaxQuestionTokens);
  ASSERT_EQ(static_cast<int64_t>(p.model().require_tokenizer().encode(at_cap).size()),
            kMaxQuestionTokens);
  EXPECT_NO_THROW(p.retrieve(at_cap, 3, RetrieverKind::kBm25));
}

// Retrieved chunks given long texts (as a caller of answer() could): the
// joint prompts go over the caps and fail before any encoding.
TEST(AnsweringLimits, ConcatAndFidPromptTotalsAreCapped) {
  const RagPipeline& p = f32();
  std::vector<RetrievedChunk> chunks = p.retrieve(kQuestion, 3, RetrieverKind::kDense);
  ASSERT_EQ(chunks.size(), 3u);
  for (RetrievedChunk& chunk : chunks) chunk.text = repeated_words(kMaxConcatTokens / 2);
  EXPECT_TRUE(throws_error([&] { p.answer(kQuestion, chunks, ask_options(Mode::kConcat)); },
                           ErrorKind::kInvalidArgument, {"concat prompt of", "kMaxConcatTokens"}));
  for (RetrievedChunk& chunk : chunks) chunk.text = repeated_words(kMaxFidTokens / 2);
  EXPECT_TRUE(throws_error([&] { p.answer(kQuestion, chunks, ask_options(Mode::kFid)); },
                           ErrorKind::kInvalidArgument, {"fid prompts total", "kMaxFidTokens"}));
  // The largest ordinary request stays within both caps.
  for (const Mode mode : {Mode::kConcat, Mode::kFid}) {
    AskOptions options = ask_options(mode, kMaxK);
    options.generation.max_new_tokens = 1;
    EXPECT_NO_THROW(p.ask(kQuestion, options)) << mode_name(mode);
  }
}

// An empty index (never filled, or emptied) is a conflict in every mode and
// with every retriever: before, cached and concat invented an answer with
// no sources and fid failed with "needs at least one chunk".
TEST(AnsweringErrors, AnEmptyIndexIsAConflictInEveryMode) {
  TempDir dir("kvrag-answering-empty");
  const auto p = RagPipeline::create(dir.file("index"), kDemoModel, IndexSettings{});
  const auto expect_conflict = [&] {
    for (const Mode mode : {Mode::kCached, Mode::kConcat, Mode::kFid}) {
      for (const RetrieverKind retriever :
           {RetrieverKind::kDense, RetrieverKind::kBm25, RetrieverKind::kHybrid}) {
        AskOptions options = ask_options(mode);
        options.retriever = retriever;
        EXPECT_TRUE(throws_error([&] { p->ask(kQuestion, options); }, ErrorKind::kConflict,
                                 {"the index ",
                                  " holds no documents: add some (kvrag index, or "
                                  "POST /v1/documents) before asking"}))
            << mode_name(mode) << " " << retriever_name(retriever);
      }
    }
  };
  expect_conflict();
  const std::vector<Document> docs = test_documents();
  p->add_documents({docs[0]});
  EXPECT_NO_THROW(p->ask(kQuestion, ask_options(Mode::kFid)));
  ASSERT_TRUE(p->remove_document(docs[0].external_id));
  expect_conflict();
}

// In every mode: fid used to refuse, so that BM25 matching no word of a
// question failed a fid ask with a 400 (and a whole `kvrag eval`).
TEST(AnsweringErrors, NoChunksStillAnswersFromTheQuestion) {
  for (const Mode mode : {Mode::kCached, Mode::kConcat, Mode::kFid}) {
    const Answer answer = f32().answer(kQuestion, {}, ask_options(mode));
    EXPECT_TRUE(answer.sources.empty()) << mode_name(mode);
    EXPECT_NEAR(answer.question_attention, 1.0, 1e-4) << mode_name(mode);
    EXPECT_EQ(answer.timings.kv_cache_misses, 0) << mode_name(mode);
  }
  AskOptions options = ask_options(Mode::kFid);
  options.retriever = RetrieverKind::kBm25;
  const Answer unmatched = f32().ask("???", options);
  EXPECT_TRUE(unmatched.sources.empty());
}

}  // namespace
}  // namespace kvrag

// The bundled demo model, sample corpus and embedder fixture as the tests name them, and the
// small pinned corpus that the answering and `kvrag ask` tests share.
#pragma once

#include <string>
#include <vector>

namespace kvrag::testing {

inline const std::string kDemoModel = KVRAG_SOURCE_DIR "/models/kvrag-demo";
inline const std::string kSampleCorpus = KVRAG_SOURCE_DIR "/data/sample/corpus.jsonl";
// A tiny random T5-encoder retriever in the sentence-transformers layout
// with reference embeddings (training/make_embedder_fixture.py).
inline const std::string kTinySentenceT5 = KVRAG_SOURCE_DIR "/tests/data/tiny-sentence-t5";

// The pinned question, about a dev document the demo reader never saw in
// training: every mode answers it from the answer-bearing chunk, and the
// answer is gone when that document is left out of the memory (the value
// is invented and unique to its document, so it cannot be guessed).
inline constexpr const char* kPinnedQuestion = "On which mountain does the Biathy begin?";
inline constexpr const char* kPinnedAnswer = "Mount Yystanast";
inline constexpr const char* kPinnedDocumentId = "doc-0118";
inline constexpr const char* kPinnedTitle = "Biathy (river)";
// The pinned question's document, three other rivers (the same sentence
// patterns, other values) and one document of each of three other topics,
// all from the dev split.
inline const std::vector<std::string> kPinnedDocumentIds = {
    "doc-0118", "doc-0121", "doc-0140", "doc-0156", "doc-0002", "doc-0037", "doc-0021"};

}  // namespace kvrag::testing

// The bundled demo model and sample corpus as the tests name them, and the
// small pinned corpus that the answering and `kvrag ask` tests share.
#pragma once

#include <string>
#include <vector>

namespace kvrag::testing {

inline const std::string kDemoModel = KVRAG_SOURCE_DIR "/models/kvrag-demo";
inline const std::string kSampleCorpus = KVRAG_SOURCE_DIR "/data/sample/corpus.jsonl";

// The pinned question. The demo reader is weak: the few dev questions it
// gets right ("6 days", "May") are answers it also gives without the
// passage. This train question it answers in all three modes only when the
// answer-bearing chunk is in its memory ("Fenna Fozad" otherwise), so it
// shows the decoder reading the chunk. Its answer is "Fenna Troum", in doc-0009.
inline constexpr const char* kPinnedQuestion = "Which explorer charted the Meim?";
// The pinned question's document, three other rivers (the same sentence
// patterns) and one document of each of three other topics: 7 documents,
// 26 chunks of the default settings.
inline const std::vector<std::string> kPinnedDocumentIds = {
    "doc-0001", "doc-0005", "doc-0009", "doc-0016", "doc-0002", "doc-0014", "doc-0021"};

}  // namespace kvrag::testing

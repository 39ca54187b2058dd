// Request bodies of the HTTP API parsed into typed requests. Every field is
// checked for type and range and a wrong one is an error naming it — never a
// silently substituted default. A JSON null counts as an absent field (as in
// the corpus reader); any field the endpoint does not know is an error.
//
// Every function throws Error(kInvalidArgument) with a message that names
// the field ("field 'k' must be an integer in 1..100, got 0") or, for a body
// that is not a JSON object or nests deeper than kMaxJsonDepth
// (data/json_input.h), says so with the parser's message.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/document.h"
#include "pipeline/rag_pipeline.h"

namespace kvrag::server {

constexpr int64_t kMaxQuestionBytes = 4096;  // question and search query, UTF-8 bytes
constexpr int64_t kMaxTitleBytes = 1024;     // document title: prefixed to every chunk's prompt
constexpr int64_t kMaxIdBytes = 256;         // document id: appears in URLs and every response
constexpr int64_t kMaxNewTokens = 512;
constexpr int64_t kMaxBeams = 16;
constexpr int64_t kDefaultK = 5;

// POST /v1/ask {question, k?, mode?, retriever?, max_new_tokens?, num_beams?, stream?}
struct AskRequest {
  std::string question;
  AskOptions options;  // k, mode, retriever, generation filled from the body
  bool stream = false;
};

// POST /v1/search {query, k?, retriever?}
struct SearchRequest {
  std::string query;
  int64_t k = kDefaultK;
  RetrieverKind retriever = RetrieverKind::kDense;
};

AskRequest parse_ask_request(const std::string& body);
SearchRequest parse_search_request(const std::string& body);

// POST /v1/documents {documents: [{id?, title?, text, metadata?}, ...]}.
// "id" is a non-empty string or an integer (written in decimal, as the
// JSONL reader does); absent, it is "doc-" + a hash of title and text, so
// posting the same document twice names the same document. Text is
// normalised like the corpus reader's (normalize_text) and must not be
// empty afterwards nor hold a NUL. Ids must be unique within one request.
// The title is at most kMaxTitleBytes, the id at most kMaxIdBytes.
// Source is "http".
std::vector<Document> parse_documents_request(const std::string& body);

}  // namespace kvrag::server

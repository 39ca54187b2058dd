// Request bodies of the HTTP API parsed into typed requests. Every field is
// checked for type and range and a wrong one is an error naming it — never a
// silently substituted default. A JSON null counts as an absent field (as in
// the corpus reader); any field the endpoint does not know is an error.
//
// Every function throws Error(kInvalidArgument) with a message that names
// the field ("field 'k' must be an integer in 1..100, got 0") or, for a body
// that is not a JSON object or nests deeper than kMaxJsonDepth
// (core/json_input.h), says so with the parser's message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/document.h"
#include "pipeline/ask_options.h"

namespace kvrag::server {

// Defaults and limits (kDefaultK, kMaxK, kMaxNewTokens, kMaxBeams,
// kMaxQuestionBytes, kMaxTitleBytes, kMaxIdBytes) are the pipeline's:
// pipeline/ask_options.h.

// POST /v1/ask {question, k?, mode?, retriever?, max_new_tokens?, num_beams?, stream?,
// timeout_ms?}
struct AskRequest {
  std::string question;
  AskOptions options;  // k, mode, retriever, generation filled from the body
  bool stream = false;
  // 1..kMaxTimeoutMs when given; absent: the server's --request-timeout-s.
  std::optional<int64_t> timeout_ms;
};

// POST /v1/search {query, k?, retriever?}
struct SearchRequest {
  std::string query;
  int64_t k = kDefaultK;
  RetrieverKind retriever = kDefaultRetriever;
};

AskRequest parse_ask_request(const std::string& body);
SearchRequest parse_search_request(const std::string& body);

// POST /v1/documents {documents: [{id?, title?, text, metadata?}, ...]}.
// "id" is a non-empty string or an integer (written in decimal, as the
// JSONL reader does); absent, it is "doc-" + a hash of title and text, so
// posting the same document twice names the same document
// (default_document_id). Text must not be blank nor hold a NUL; the pipeline
// normalises it when it is added. Ids must be unique within one request.
// The title is at most kMaxTitleBytes, the id at most kMaxIdBytes.
// Source is "http". More than kMaxDocumentsPerRequest documents throw
// HttpFailure 413 "too_many_documents" before any is parsed.
std::vector<Document> parse_documents_request(const std::string& body);

}  // namespace kvrag::server

#include "server/request_validation.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/json_input.h"
#include "data/text_normalization.h"
#include "pipeline/document_encoder.h"
#include "server/responses.h"

namespace kvrag::server {
namespace {

using nlohmann::json;

// The JSON type of `value` as a client would name it, for error messages.
const char* json_type_name(const json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

// A value as an error message shows it: a number by itself, anything else
// by its type name. Never dump() a client's value into a message: a string
// may be the whole body, and dump() recurses once per nesting level.
std::string describe(const json& value) {
  return value.is_number() ? value.dump() : json_type_name(value);
}

// The body parsed with nesting bounded (core/json_input.h), so that no later
// copy, dump or destruction of it can recurse deeper than kMaxJsonDepth.
json parse_object(const std::string& body) {
  json value;
  try {
    value = parse_json_bounded(body);
  } catch (const Error& e) {
    KVRAG_THROW(kInvalidArgument, "malformed JSON body: ", e.what());
  }
  KVRAG_CHECK(value.is_object(), kInvalidArgument, "the body must be a JSON object, got ",
              json_type_name(value));
  return value;
}

// Reads the fields of one JSON object, each checked for type and range;
// `prefix` names the object in messages ("documents[2].").
class FieldReader {
 public:
  FieldReader(const json& object, std::string prefix)
      : object_(object), prefix_(std::move(prefix)) {}

  // Rejects any field not in `known`, naming it and the known ones.
  void reject_unknown(const std::set<std::string>& known) const {
    for (const auto& [name, value] : object_.items()) {
      if (known.count(name)) continue;
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      KVRAG_THROW(kInvalidArgument, "unknown field '", prefix_, name, "' (known fields: ", list,
                  ")");
    }
  }

  // The field, or nullptr when absent or null.
  const json* find(const std::string& name) const {
    const auto it = object_.find(name);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<std::string> string(const std::string& name) const {
    const json* value = find(name);
    if (!value) return std::nullopt;
    KVRAG_CHECK(value->is_string(), kInvalidArgument, "field '", prefix_, name,
                "' must be a string, got ", json_type_name(*value));
    return value->get<std::string>();
  }

  std::string required_string(const std::string& name) const {
    std::optional<std::string> value = string(name);
    KVRAG_CHECK(value.has_value(), kInvalidArgument, "missing field '", prefix_, name, "'");
    return *value;
  }

  int64_t integer(const std::string& name, int64_t fallback, int64_t min, int64_t max) const {
    const json* value = find(name);
    if (!value) return fallback;
    // An unsigned above INT64_MAX or a fractional number is out of range by
    // type; both are reported with the range so the client sees what fits.
    const bool in_range = value->is_number_integer() &&
                          !(value->is_number_unsigned() &&
                            value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) &&
                          value->get<int64_t>() >= min && value->get<int64_t>() <= max;
    KVRAG_CHECK(in_range, kInvalidArgument, "field '", prefix_, name, "' must be an integer in ",
                min, "..", max, ", got ", describe(*value));
    return value->get<int64_t>();
  }

  bool boolean(const std::string& name, bool fallback) const {
    const json* value = find(name);
    if (!value) return fallback;
    KVRAG_CHECK(value->is_boolean(), kInvalidArgument, "field '", prefix_, name,
                "' must be a boolean, got ", json_type_name(*value));
    return value->get<bool>();
  }

  // A field parsed by one of the pipeline's name parsers (parse_mode, …),
  // whose message lists the accepted names.
  template <typename Parse>
  auto named(const std::string& name, const std::string& fallback, Parse parse) const {
    const std::string text = string(name).value_or(fallback);
    try {
      return parse(text);
    } catch (const Error& e) {
      KVRAG_THROW(kInvalidArgument, "field '", prefix_, name, "': ", e.what());
    }
  }

 private:
  const json& object_;
  std::string prefix_;
};

}  // namespace

namespace {

// Refuses a string field longer than `max_bytes`; `field` is its full name.
void check_length(const std::string& field, const std::string& text, int64_t max_bytes) {
  KVRAG_CHECK(static_cast<int64_t>(text.size()) <= max_bytes, kInvalidArgument, "field '", field,
              "' is ", text.size(), " bytes, more than the limit of ", max_bytes);
}

// The question or query: non-blank and at most kMaxQuestionBytes.
std::string checked_query(const FieldReader& fields, const std::string& name) {
  std::string text = fields.required_string(name);
  KVRAG_CHECK(text.find_first_not_of(" \t\r\n") != std::string::npos, kInvalidArgument, "field '",
              name, "' is empty");
  check_length(name, text, kMaxQuestionBytes);
  check_text_field(name, text);
  return text;
}

Document parse_document(const json& value, size_t index) {
  const std::string prefix = "documents[" + std::to_string(index) + "].";
  KVRAG_CHECK(value.is_object(), kInvalidArgument, "field 'documents[", index,
              "]' must be an object, got ", json_type_name(value));
  const FieldReader fields(value, prefix);
  fields.reject_unknown({"id", "title", "text", "metadata"});
  Document doc;
  doc.title = fields.string("title").value_or("");
  check_length(prefix + "title", doc.title, kMaxTitleBytes);
  check_text_field(prefix + "title", doc.title);
  // Stored normalised: RagPipeline::add_documents normalises every document.
  doc.text = fields.required_string("text");
  check_text_field(prefix + "text", doc.text);
  KVRAG_CHECK(doc.text.find_first_not_of(" \t\n\r\f\v") != std::string::npos, kInvalidArgument,
              "field '", prefix, "text' is empty");
  if (const json* id = fields.find("id")) {
    KVRAG_CHECK(id->is_string() || id->is_number_integer(), kInvalidArgument, "field '", prefix,
                "id' must be a string or an integer, got ", json_type_name(*id));
    doc.external_id = id->is_string() ? id->get<std::string>() : id->dump();
    KVRAG_CHECK(!doc.external_id.empty(), kInvalidArgument, "field '", prefix, "id' is empty");
    check_length(prefix + "id", doc.external_id, kMaxIdBytes);
    check_text_field(prefix + "id", doc.external_id);
  } else {
    doc.external_id = default_document_id(doc.title, doc.text);
  }
  if (const json* metadata = fields.find("metadata")) {
    KVRAG_CHECK(metadata->is_object(), kInvalidArgument, "field '", prefix,
                "metadata' must be an object, got ", json_type_name(*metadata));
    // Safe to dump: parse_object bounded the whole body's nesting.
    doc.metadata_json = metadata->dump();
  }
  doc.source = "http";
  return doc;
}

}  // namespace

AskRequest parse_ask_request(const std::string& body) {
  const json object = parse_object(body);
  const FieldReader fields(object, "");
  fields.reject_unknown({"question", "k", "mode", "retriever", "passage_prior", "max_new_tokens",
                         "num_beams", "stream", "timeout_ms"});
  AskRequest request;
  request.question = checked_query(fields, "question");
  AskOptions& options = request.options;
  options.k = fields.integer("k", options.k, 1, kMaxK);
  options.mode = fields.named("mode", mode_name(options.mode), parse_mode);
  options.retriever = fields.named("retriever", retriever_name(options.retriever), parse_retriever);
  options.passage_prior = fields.boolean("passage_prior", options.passage_prior);
  options.generation.max_new_tokens =
      fields.integer("max_new_tokens", options.generation.max_new_tokens, 1, kMaxNewTokens);
  options.generation.num_beams =
      fields.integer("num_beams", options.generation.num_beams, 1, kMaxBeams);
  request.stream = fields.boolean("stream", false);
  if (fields.find("timeout_ms"))
    request.timeout_ms = fields.integer("timeout_ms", 0, 1, kMaxTimeoutMs);
  return request;
}

SearchRequest parse_search_request(const std::string& body) {
  const json object = parse_object(body);
  const FieldReader fields(object, "");
  fields.reject_unknown({"query", "k", "retriever"});
  SearchRequest request;
  request.query = checked_query(fields, "query");
  request.k = fields.integer("k", request.k, 1, kMaxK);
  request.retriever = fields.named("retriever", retriever_name(request.retriever), parse_retriever);
  return request;
}

std::vector<Document> parse_documents_request(const std::string& body) {
  const json object = parse_object(body);
  const FieldReader fields(object, "");
  fields.reject_unknown({"documents"});
  const json* list = fields.find("documents");
  KVRAG_CHECK(list != nullptr, kInvalidArgument, "missing field 'documents'");
  KVRAG_CHECK(list->is_array(), kInvalidArgument, "field 'documents' must be an array, got ",
              json_type_name(*list));
  KVRAG_CHECK(!list->empty(), kInvalidArgument, "field 'documents' is empty");
  if (static_cast<int64_t>(list->size()) > kMaxDocumentsPerRequest) {
    throw HttpFailure(
        413, "too_many_documents",
        str_cat("field 'documents' has ", list->size(), " documents, more than the limit of ",
                kMaxDocumentsPerRequest, " per request: send them in several requests"));
  }
  std::vector<Document> docs;
  std::set<std::string> ids;
  for (size_t i = 0; i < list->size(); ++i) {
    docs.push_back(parse_document((*list)[i], i));
    KVRAG_CHECK(ids.insert(docs.back().external_id).second, kInvalidArgument, "field 'documents[",
                i, "].id': '", docs.back().external_id,
                "' is given twice in this request (an absent id is a hash of title and text)");
  }
  return docs;
}

}  // namespace kvrag::server

#include "pipeline/questions.h"

#include <algorithm>

#include "core/error.h"
#include "data/text_normalization.h"
#include "pipeline/ask_options.h"
#include "pipeline/prompts.h"
#include "retriever/embedder.h"

namespace kvrag {
namespace {

bool is_blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); });
}

}  // namespace

Query make_query(const T5Encoder& encoder, const PromptTemplates& prompts, const std::string& text,
                 const char* field) {
  const T5EncoderModel& model = encoder.model();
  check_text_field(field, text);
  KVRAG_CHECK(!is_blank(text), kInvalidArgument, field, " is empty");
  const int64_t tokens = static_cast<int64_t>(model.require_tokenizer().encode(text).size());
  KVRAG_CHECK(tokens <= kMaxQuestionTokens, kInvalidArgument, "field '", field, "' has ", tokens,
              " tokens, more than the limit of ", kMaxQuestionTokens, " tokens");
  Query query;
  query.text = text;
  query.prompt_ids =
      prompt_ids(model, fill_prompt(prompts.question, PromptFields{text, {}, {}, {}}));
  return query;
}

void encode_query(const T5Encoder& encoder, Query& query, const Deadline& deadline) {
  if (!query.encoded()) {
    query.hidden = encoder.encode(query.prompt_ids, deadline.checker("encoding the question"));
  }
}

void embed_query(const T5Encoder& encoder, const SentenceEmbedder* embedder, Query& query,
                 const Deadline& deadline) {
  if (!query.embedding.empty()) return;
  if (embedder != nullptr) {
    query.embedding = embedder->embed(embedder->input_ids(query.text),
                                      deadline.checker("embedding the question"));
    return;
  }
  encode_query(encoder, query, deadline);
  query.embedding = embed(query.hidden.view());
}

}  // namespace kvrag

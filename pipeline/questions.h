// The typed query (retriever/query.h) made from a question where a request
// enters the pipeline: checked once, its prompt tokenized once, encoded at
// most once, then passed down to retrieval and the memory builder.
#pragma once

#include <string>

#include "encoder/t5_encoder.h"
#include "pipeline/deadline.h"
#include "pipeline/index_settings.h"
#include "retriever/query.h"
#include "retriever/sentence_embedder.h"

namespace kvrag {

// `text` checked and its question prompt (PromptTemplates::question)
// tokenized, not yet encoded. Error(kInvalidArgument) "FIELD is empty" for
// blank text and "field 'FIELD' has N tokens, more than the limit of M
// tokens" over the cap (kMaxQuestionTokens) (the question enters every encoder
// input of a request; fid: k of them). Error(kNotFound) without spiece.model.
Query make_query(const T5Encoder& encoder, const PromptTemplates& prompts, const std::string& text,
                 const char* field);

// Fills query.hidden with the encoder output of its prompt, unless it is
// already encoded. Error(kDeadlineExceeded) once `deadline` passes (checked
// before every encoder layer).
void encode_query(const T5Encoder& encoder, Query& query, const Deadline& deadline = {});

// Fills query.embedding for dense retrieval, unless it is already set: with
// `embedder` (the index's separate one), its embedding of query.text, no
// prompt; without (null), embed() of the encoder output of the question
// prompt, encoding it first (encode_query), so that cached mode reuses it.
// Error(kDeadlineExceeded) once `deadline` passes (before every encoder layer).
void embed_query(const T5Encoder& encoder, const SentenceEmbedder* embedder, Query& query,
                 const Deadline& deadline = {});

}  // namespace kvrag

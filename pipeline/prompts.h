// Filling the prompt templates of PromptTemplates (pipeline/index_settings.h)
// and turning a filled prompt into encoder input ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "encoder/t5_encoder_model.h"

namespace kvrag {

// The values that replace the placeholders {question}, {title}, {text} and
// {passages} of a template.
struct PromptFields {
  std::string question;
  std::string title;
  std::string text;
  std::string passages;
};

// `tmpl` with every {question}, {title}, {text} and {passages} replaced by
// the field's value, in one left-to-right pass: a value that itself contains
// "{text}" is copied as it is, never expanded again. Other braces are kept.
std::string fill_prompt(const std::string& tmpl, const PromptFields& fields);

// The encoder input of a filled prompt: the model's SentencePiece ids of
// `prompt` followed by eos. Error(kNotFound) when the model has no
// spiece.model.
std::vector<int32_t> prompt_ids(const T5EncoderModel& model, const std::string& prompt);

// `title` as it enters a prompt: whole when it tokenizes to at most
// kMaxTitleTokens (pipeline/ask_options.h) tokens, else the decoded text of
// its first kMaxTitleTokens tokens, so that a long title cannot grow every
// chunk prompt of its document. Error(kNotFound) without spiece.model.
std::string prompt_title(const T5EncoderModel& model, const std::string& title);

}  // namespace kvrag

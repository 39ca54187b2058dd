#include "pipeline/prompts.h"

#include <array>
#include <string_view>
#include <utility>

#include "pipeline/ask_options.h"

namespace kvrag {

std::string fill_prompt(const std::string& tmpl, const PromptFields& fields) {
  const std::array<std::pair<std::string_view, const std::string*>, 4> placeholders{{
      {"{question}", &fields.question},
      {"{title}", &fields.title},
      {"{text}", &fields.text},
      {"{passages}", &fields.passages},
  }};
  std::string out;
  out.reserve(tmpl.size() + fields.text.size() + fields.passages.size());
  size_t i = 0;
  while (i < tmpl.size()) {
    bool replaced = false;
    if (tmpl[i] == '{') {
      const std::string_view rest = std::string_view(tmpl).substr(i);
      for (const auto& [name, value] : placeholders) {
        if (rest.starts_with(name)) {
          out += *value;
          i += name.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += tmpl[i++];
  }
  return out;
}

std::vector<int32_t> prompt_ids(const T5EncoderModel& model, const std::string& prompt) {
  std::vector<int32_t> ids = model.require_tokenizer().encode(prompt);
  ids.push_back(model.config.eos_token_id);
  return ids;
}

std::string prompt_title(const T5EncoderModel& model, const std::string& title) {
  const Tokenizer& tokenizer = model.require_tokenizer();
  std::vector<int32_t> ids = tokenizer.encode(title);
  if (static_cast<int64_t>(ids.size()) <= kMaxTitleTokens) return title;
  ids.resize(static_cast<size_t>(kMaxTitleTokens));
  return tokenizer.decode(ids);
}

}  // namespace kvrag

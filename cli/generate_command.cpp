// kvrag generate: sequence-to-sequence generation with a model folder.
#include <cstdint>
#include <iostream>
#include <sstream>

#include "cli/args.h"
#include "cli/ask_args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "decoder/t5_model.h"
#include "pipeline/text_generation.h"

namespace kvrag::cli {
namespace {

// "3,4,1" or "3 4 1" -> ids.
std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string normalized = text;
  for (char& ch : normalized) {
    if (ch == ',') ch = ' ';
  }
  std::istringstream in(normalized);
  std::string token;
  while (in >> token) {
    try {
      size_t used = 0;
      const long value = std::stol(token, &used);
      // The range check keeps 4294967301 from wrapping to id 5 in the cast.
      KVRAG_CHECK(used == token.size() && value >= 0 && value <= INT32_MAX, kInvalidArgument,
                  "--ids: '", token, "' is not a token id");
      ids.push_back(static_cast<int32_t>(value));
    } catch (const std::logic_error&) {
      KVRAG_THROW(kInvalidArgument, "--ids: '", token, "' is not a token id");
    }
  }
  KVRAG_CHECK(!ids.empty(), kInvalidArgument, "--ids is empty");
  return ids;
}

constexpr const char* kGenerateUsage =
    "usage: kvrag generate --model DIR [--max-new-tokens N] [--beams N]\n"
    "                      [--length-penalty X] (\"text\" | --ids \"3,4,1\")\n"
    "  Encodes the text (or token ids, for models without spiece.model) and\n"
    "  prints the generated text, then tokens/s on stderr.\n";

int run_generate(const std::vector<std::string>& argv) {
  const Args args(argv, {"model", "max-new-tokens", "beams", "length-penalty", "ids"}, {});
  GenerationOptions options = read_generation(args);
  options.length_penalty =
      static_cast<float>(args.get_double("length-penalty", options.length_penalty));
  std::vector<int32_t> ids;
  if (args.has("ids")) ids = parse_ids(args.get("ids", ""));
  std::string prompt;
  for (const std::string& word : args.positional()) prompt += (prompt.empty() ? "" : " ") + word;
  KVRAG_CHECK(!ids.empty() || !prompt.empty(), kInvalidArgument,
              "give the text to generate from, or --ids");
  KVRAG_CHECK(ids.empty() || prompt.empty(), kInvalidArgument,
              "give either text or --ids, not both");

  const auto model = load_t5_model(args.require("model"));
  const TextGeneration result = generate_text(model, prompt, ids, options);
  if (model->tokenizer) {
    std::cout << result.text << "\n";
  } else {
    for (size_t i = 0; i < result.output_ids.size(); ++i) {
      std::cout << (i ? " " : "") << result.output_ids[i];
    }
    std::cout << "\n";
  }
  const double tokens = static_cast<double>(result.output_ids.size());
  std::cerr << result.output_ids.size() << " tokens, encode " << result.encode_ms << " ms, decode "
            << result.decode_ms << " ms, "
            << (result.decode_ms > 0 ? tokens * 1000.0 / result.decode_ms : 0.0) << " tokens/s\n";
  return 0;
}

const RegisterCommand kRegisterGenerate("generate",
                                        {run_generate, kGenerateUsage,
                                         "generate text from a prompt with a T5 model folder"});

}  // namespace
}  // namespace kvrag::cli

// kvrag generate: sequence-to-sequence generation with a model folder.
#include <chrono>
#include <cstdint>
#include <iostream>
#include <sstream>

#include "bench/rag_bench.h"
#include "cli/args.h"
#include "cli/ask_args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/parallel.h"
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

const std::string kGenerateUsage =
    "usage: kvrag generate --model DIR [--max-new-tokens N] [--min-new-tokens N]\n"
    "                      [--beams N] [--length-penalty X] [--threads N] [--repeat N]\n"
    "                      " +
    std::string(kWeightsSynopsis) +
    "\n"
    "                      (\"text\" | --ids \"3,4,1\")\n"
    "  Encodes the text (or token ids, for models without spiece.model) and\n"
    "  prints the generated text; on stderr the load time, then per run the time\n"
    "  to first token and decode tokens/s; the load line gives the process's\n"
    "  resident memory with the model loaded. --threads: BLAS threads (default: all\n"
    "  cores). --repeat N generates N times in this process: run 1 is a fresh\n"
    "  process's first answer, the others are warm.\n" +
    std::string(kWeightsUsage);

constexpr int64_t kMaxRepeat = 1000;

// The timing line of one run, on stderr.
void print_timings(int64_t run, const TextGeneration& result) {
  const double tokens = static_cast<double>(result.output_ids.size());
  std::cerr << "run " << run << ": " << result.output_ids.size() << " tokens, first token "
            << result.first_token_ms << " ms (encode " << result.encode_ms << " ms), decode "
            << result.decode_ms << " ms, "
            << (result.decode_ms > 0 ? tokens * 1000.0 / result.decode_ms : 0.0) << " tokens/s\n";
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

int run_generate(const std::vector<std::string>& argv) {
  const Args args(argv,
                  {"model", "max-new-tokens", "min-new-tokens", "beams", "length-penalty", "ids",
                   "threads", "repeat", "weights"},
                  {});
  GenerationOptions options = read_generation(args);
  options.min_new_tokens = args.get_int("min-new-tokens", 0, 0, options.max_new_tokens);
  options.length_penalty =
      static_cast<float>(args.get_double("length-penalty", options.length_penalty));
  const int64_t repeat = args.get_int("repeat", 1, 1, kMaxRepeat);
  if (args.has("threads")) set_compute_threads(args.get_int("threads", 1, 1, 1024));
  std::vector<int32_t> ids;
  if (args.has("ids")) ids = parse_ids(args.get("ids", ""));
  std::string prompt;
  for (const std::string& word : args.positional()) prompt += (prompt.empty() ? "" : " ") + word;
  KVRAG_CHECK(!ids.empty() || !prompt.empty(), kInvalidArgument,
              "give the text to generate from, or --ids");
  KVRAG_CHECK(ids.empty() || prompt.empty(), kInvalidArgument,
              "give either text or --ids, not both");

  const auto load_start = std::chrono::steady_clock::now();
  const WeightDtype model_weights = read_weights(args);
  const auto model = load_t5_model(args.require("model"), model_weights);
  std::cerr << "load " << ms_since(load_start) << " ms, resident "
            << bench::resident_bytes() / (1 << 20) << " MiB (" << weight_dtype_name(model_weights)
            << " weights)\n";
  TextGeneration result;
  for (int64_t run = 1; run <= repeat; ++run) {
    result = generate_text(model, prompt, ids, options);
    print_timings(run, result);
  }
  if (model->tokenizer) {
    std::cout << result.text << "\n";
  } else {
    for (size_t i = 0; i < result.output_ids.size(); ++i) {
      std::cout << (i ? " " : "") << result.output_ids[i];
    }
    std::cout << "\n";
  }
  return 0;
}

const RegisterCommand kRegisterGenerate("generate",
                                        {run_generate, kGenerateUsage.c_str(),
                                         "generate text from a prompt with a T5 model folder"});

}  // namespace
}  // namespace kvrag::cli

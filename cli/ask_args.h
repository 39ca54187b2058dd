// The options of the commands that ask questions (ask, search, eval, bench,
// generate, and the weights of every command that loads a model), read with the pipeline's defaults
// and caps (pipeline/ask_options.h), so that no command holds its own copy.
#pragma once

#include <cstdint>

#include "cli/args.h"
#include "decoder/generation.h"
#include "pipeline/ask_options.h"
#include "pipeline/index_settings.h"

namespace kvrag::cli {

// --k in 1..kMaxK, default kDefaultK.
int64_t read_k(const Args& args);
// --retriever, default kDefaultRetriever.
RetrieverKind read_retriever(const Args& args);
// --max-new-tokens in 1..kMaxNewTokens and --beams in 1..kMaxBeams, with the
// defaults of AskOptions.
GenerationOptions read_generation(const Args& args);
// --k, --mode, --retriever and the generation options.
AskOptions read_ask_options(const Args& args);
// --weights f32|int8, default OpenOptions{}.weights.
WeightDtype read_weights(const Args& args);
// The usage line of --weights, the same for every command.
constexpr const char* kWeightsUsage =
    "  --weights int8: the model's weight matrices quantised to int8 at load time\n"
    "  (per output row; a quarter of the memory, faster decoding; default f32).\n";

}  // namespace kvrag::cli

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
// --passage-prior on|off, default kDefaultPassagePrior.
bool read_passage_prior(const Args& args);
// --k, --mode, --retriever, --passage-prior and the generation options.
AskOptions read_ask_options(const Args& args);
// --weights f32|f16|bf16|int8, default OpenOptions{}.weights.
WeightDtype read_weights(const Args& args);
// The usage lines of --passage-prior, the same for every command that answers.
constexpr const char* kPassagePriorUsage =
    "  --passage-prior off: the reader weighs every retrieved chunk alike (default on:\n"
    "  each weighed by the retriever's probability that it holds the answer, for a\n"
    "  reader that declares its retrieval temperature, as the demo model does).\n";
// --weights in a command's synopsis, and its usage lines, the same for
// every command that loads a model.
constexpr const char* kWeightsSynopsis = "[--weights f32|f16|bf16|int8]";
constexpr const char* kWeightsUsage =
    "  --weights f16: the model's weight matrices kept in binary16, computed in\n"
    "  float32 (half the memory, faster decoding; the f32 results for a checkpoint\n"
    "  stored in F16, each weight rounded once otherwise). --weights bf16: kept in\n"
    "  bfloat16, each product's input rounded to bfloat16 too (as many bytes as f16;\n"
    "  twice the multiply-adds a cycle where the CPU has AVX512-BF16). --weights int8:\n"
    "  quantised to int8 at load time (per output row; a quarter of the memory).\n"
    "  Default f32.\n";

}  // namespace kvrag::cli

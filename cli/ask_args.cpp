#include "cli/ask_args.h"

namespace kvrag::cli {

int64_t read_k(const Args& args) { return args.get_int("k", kDefaultK, 1, kMaxK); }

RetrieverKind read_retriever(const Args& args) {
  return parse_retriever(args.get("retriever", retriever_name(kDefaultRetriever)));
}

GenerationOptions read_generation(const Args& args) {
  GenerationOptions generation = AskOptions{}.generation;
  generation.max_new_tokens =
      args.get_int("max-new-tokens", generation.max_new_tokens, 1, kMaxNewTokens);
  generation.num_beams = args.get_int("beams", generation.num_beams, 1, kMaxBeams);
  return generation;
}

WeightDtype read_weights(const Args& args) {
  return parse_weight_dtype(args.get("weights", weight_dtype_name(OpenOptions{}.weights)));
}

bool read_passage_prior(const Args& args) {
  const std::string value = args.get("passage-prior", kDefaultPassagePrior ? "on" : "off");
  KVRAG_USAGE_CHECK(value == "on" || value == "off", "--passage-prior must be on or off, got '",
                    value, "'");
  return value == "on";
}

AskOptions read_ask_options(const Args& args) {
  AskOptions options;
  options.passage_prior = read_passage_prior(args);
  options.mode = parse_mode(args.get("mode", mode_name(kDefaultMode)));
  options.retriever = read_retriever(args);
  options.k = read_k(args);
  options.generation = read_generation(args);
  return options;
}

}  // namespace kvrag::cli

#include "cli/open_args.h"

#include "cli/ask_args.h"

namespace kvrag::cli {

OpenOptions read_open_options(const Args& args) {
  OpenOptions options;
  options.model_dir = args.get("model", "");
  options.embedder_dir = args.get("embedder", "");
  options.weights = read_weights(args);
  for (const char* name : {"model", "embedder"}) {
    KVRAG_USAGE_CHECK(!args.has(name) || !args.get(name, "").empty(), "--", name, " is empty");
  }
  return options;
}

}  // namespace kvrag::cli

// kvrag rm: removes documents (with their chunks, cached K/V, FTS rows and
// FAISS ids) from an index folder.
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/open_args.h"
#include "core/error.h"
#include "pipeline/rag_pipeline.h"

namespace kvrag::cli {
namespace {

constexpr const char* kRmUsage =
    "usage: kvrag rm --index PATH|URI [--model DIR] [--embedder DIR] ID...\n"
    "  Removes the documents with these ids. Exits 3 when an id is not in the\n"
    "  index (the others are still removed).\n";

int run_rm(const std::vector<std::string>& argv) {
  const Args args(argv, {"index", "model", "embedder"}, {});
  const std::string dir = args.require("index");
  KVRAG_CHECK(!args.positional().empty(), kInvalidArgument,
              "give the ids of the documents to remove");
  const OpenOptions options = read_open_options(args);
  const auto pipeline = RagPipeline::open(dir, options);
  int missing = 0;
  for (const std::string& id : args.positional()) {
    if (pipeline->remove_document(id)) {
      std::cout << "removed " << id << "\n";
    } else {
      std::cerr << "kvrag rm: no document with id '" << id << "' in " << dir << "\n";
      ++missing;
    }
  }
  return missing > 0 ? 3 : 0;
}

const RegisterCommand kRegisterRm("rm", {run_rm, kRmUsage, "remove documents from an index"});

}  // namespace
}  // namespace kvrag::cli

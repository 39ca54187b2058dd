// kvrag copy: moves an index between a folder and a postgresql:// URI (or
// between two of either), rows and chunk memories as stored.
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "pipeline/index_folder.h"

namespace kvrag::cli {
namespace {

constexpr int64_t kDefaultCopyBatch = 64;

constexpr const char* kCopyUsage =
    "usage: kvrag copy --from PATH|URI --to PATH|URI [--batch 64]\n"
    "  Copies an index (its model and settings, every document, chunk, embedding and\n"
    "  cached memory, nothing encoded again) into a folder or postgresql:// URI that\n"
    "  holds no index yet, --batch documents per write transaction. Writers of --from\n"
    "  wait until it is done. FAISS is built from the embeddings when --to is opened.\n";

int run_copy(const std::vector<std::string>& argv) {
  const Args args(argv, {"from", "to", "batch"}, {});
  KVRAG_USAGE_CHECK(args.positional().empty(), "unexpected argument '", args.positional().front(),
                    "'");
  const int64_t batch = args.get_int("batch", kDefaultCopyBatch, 1, 1 << 20);
  const CopyReport report =
      IndexFolder::copy(args.require("from"), args.require("to"), batch, [](const CopyReport& r) {
        std::cerr << "\r" << r.documents << " documents, " << r.chunks << " chunks copied"
                  << std::flush;
      });
  std::cerr << "\n";
  std::cout << "copied " << report.documents << " documents, " << report.chunks << " chunks, "
            << human_bytes(static_cast<double>(report.memory_bytes)) << " of chunk memories in "
            << human_seconds(report.seconds) << "\n";
  return 0;
}

const RegisterCommand kRegisterCopy("copy", {run_copy, kCopyUsage,
                                             "copy an index between folders and URIs"});

}  // namespace
}  // namespace kvrag::cli

// --model and --embedder of the commands that open an index (ask, search,
// eval, info, rm, serve): the folders to load instead of the ones the index
// records, for a model or embedder that has moved. Each must have the
// fingerprint the index records (RagPipeline::open refuses another).
#pragma once

#include "cli/args.h"
#include "pipeline/index_settings.h"

namespace kvrag::cli {

// OpenOptions with model_dir and embedder_dir from --model and --embedder
// (empty when absent); UsageError for one given empty.
OpenOptions read_open_options(const Args& args);

}  // namespace kvrag::cli

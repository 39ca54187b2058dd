// --model and --embedder of the commands that open an index (ask, search,
// eval, info, rm, serve, index): the folders to load instead of the ones the
// index records, for a model or embedder that has moved. Each must have the
// fingerprint the index records (RagPipeline::open refuses another). And
// --weights, the dtype the model's matrices are held in once loaded.
#pragma once

#include "cli/args.h"
#include "pipeline/index_settings.h"

namespace kvrag::cli {

// OpenOptions with model_dir and embedder_dir from --model and --embedder
// (empty when absent) and weights from --weights; UsageError for one given
// empty or an unknown dtype.
OpenOptions read_open_options(const Args& args);

}  // namespace kvrag::cli

#include "pipeline/ask_options.h"

#include "core/enum_names.h"
#include "core/error.h"

namespace kvrag {
namespace {

constexpr const char* kModeNames[] = {"cached", "concat", "fid"};

}  // namespace

const char* mode_name(Mode mode) { return kModeNames[static_cast<int>(mode)]; }
Mode parse_mode(const std::string& name) { return parse_enum<Mode>(name, kModeNames, "mode"); }

void check_k(int64_t k) {
  KVRAG_CHECK(k >= 1 && k <= kMaxK, kInvalidArgument, "k must be in 1..", kMaxK, ", got ", k);
}

void check_generation(const GenerationOptions& generation) {
  KVRAG_CHECK(generation.max_new_tokens >= 1 && generation.max_new_tokens <= kMaxNewTokens,
              kInvalidArgument, "max_new_tokens must be in 1..", kMaxNewTokens, ", got ",
              generation.max_new_tokens);
  KVRAG_CHECK(generation.num_beams >= 1 && generation.num_beams <= kMaxBeams, kInvalidArgument,
              "num_beams must be in 1..", kMaxBeams, ", got ", generation.num_beams);
}

int64_t default_decode_batch(int64_t step_weight_bytes) {
  return step_weight_bytes >= kBatchDecodingMinStepBytes ? kDefaultDecodeBatch : 1;
}

}  // namespace kvrag

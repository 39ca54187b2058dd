#include "pipeline/index_settings.h"

#include "core/enum_names.h"
#include "core/error.h"

namespace kvrag {
namespace {

constexpr const char* kGranularityNames[] = {"kv", "hidden"};

}  // namespace

const char* cache_granularity_name(CacheGranularity g) {
  return kGranularityNames[static_cast<int>(g)];
}
CacheGranularity parse_cache_granularity(const std::string& name) {
  return parse_enum<CacheGranularity>(name, kGranularityNames, "cache granularity");
}

void check_settings(const IndexSettings& s) {
  KVRAG_CHECK(s.chunking.max_tokens > 0 && s.chunking.max_tokens <= kMaxChunkTokens,
              kInvalidArgument, "chunk tokens must be in 1..", kMaxChunkTokens, ", got ",
              s.chunking.max_tokens);
  KVRAG_CHECK(s.chunking.overlap >= 0 && s.chunking.overlap < s.chunking.max_tokens,
              kInvalidArgument, "overlap must be in [0, chunk tokens ", s.chunking.max_tokens,
              "), got ", s.chunking.overlap);
  KVRAG_CHECK(!s.faiss_factory.empty(), kInvalidArgument, "the FAISS factory string is empty");
  KVRAG_CHECK(s.prompts.chunk.find("{text}") != std::string::npos, kInvalidArgument,
              "the chunk prompt template '", s.prompts.chunk, "' has no {text}");
}

}  // namespace kvrag

#include "data/metadata_store.h"

#include <charconv>

#include "core/error.h"

namespace kvrag {

int64_t MetadataStore::generation() const {
  const auto value = meta(kGenerationMetaKey);
  if (!value) return 0;
  int64_t generation = 0;
  const char* end = value->data() + value->size();
  const auto parsed = std::from_chars(value->data(), end, generation);
  KVRAG_CHECK(parsed.ec == std::errc() && parsed.ptr == end, kFormat, location(), ": meta '",
              kGenerationMetaKey, "' = '", *value, "' is not an integer");
  return generation;
}

}  // namespace kvrag

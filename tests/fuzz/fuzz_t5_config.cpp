// libFuzzer target: config.json text as parse_t5_config reads it. Only
// kvrag::Error may come out.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "encoder/t5_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kvrag::parse_t5_config(std::string(reinterpret_cast<const char*>(data), size), "config.json");
  } catch (const kvrag::Error&) {
  }
  return 0;
}

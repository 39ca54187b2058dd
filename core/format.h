// Number formatting shared by every human-readable output (the CLI's text,
// the benchmark's report): one place for it below both, since bench/ must not
// depend on cli/.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace kvrag {

// `value` with `digits` decimals ("%.*f"): scores, milliseconds, rates.
inline std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

// "0x" and 8 lowercase hex digits: checksums in error messages.
inline std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", static_cast<unsigned>(value));
  return text;
}

}  // namespace kvrag

// Names of small enums, for options and messages: one table of names per
// enum, indexed by the enum's value, read both ways.
#pragma once

#include <cstddef>
#include <string>

#include "core/error.h"

namespace kvrag {

// The enum whose name in `names` (indexed by the enum's value) is `name`.
// Error(kInvalidArgument) "unknown WHAT 'name' (expected a, b, c)" otherwise.
template <typename Enum, size_t N>
Enum parse_enum(const std::string& name, const char* const (&names)[N], const char* what) {
  for (size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<Enum>(i);
  }
  std::string expected;
  for (size_t i = 0; i < N; ++i) expected += std::string(i ? ", " : "") + names[i];
  KVRAG_THROW(kInvalidArgument, "unknown ", what, " '", name, "' (expected ", expected, ")");
}

}  // namespace kvrag

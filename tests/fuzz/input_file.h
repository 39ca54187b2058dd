// The fuzz input as a file, for the readers that take a path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kvrag::fuzz {

// Writes `size` bytes to one file per process and per `name`
// (/tmp/kvrag_fuzz_<pid>_<name>), rewritten for every input so the fuzzer's
// millions of runs leave one file behind, not millions. Returns its path.
std::string write_input_file(const std::string& name, const uint8_t* data, size_t size);

}  // namespace kvrag::fuzz

#include "tests/fuzz/input_file.h"

#include <unistd.h>

#include <cstdio>
#include <stdexcept>

namespace kvrag::fuzz {

std::string write_input_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = "/tmp/kvrag_fuzz_" + std::to_string(::getpid()) + "_" + name;
  std::FILE* file = std::fopen(path.c_str(), "wb");
  // A harness that cannot write its input tests nothing: stop loudly.
  if (file == nullptr) throw std::runtime_error("cannot write " + path);
  const size_t written = size == 0 ? 0 : std::fwrite(data, 1, size, file);
  const bool closed = std::fclose(file) == 0;
  if (written != size || !closed) throw std::runtime_error("cannot write " + path);
  return path;
}

}  // namespace kvrag::fuzz

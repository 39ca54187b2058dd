// libFuzzer target: vectors.faiss as an index folder opens it (dimension 4,
// the "Flat" factory). Only kvrag::Error may come out: the folder then
// rebuilds the file from the store.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "retriever/faiss_index.h"
#include "tests/fuzz/input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = kvrag::fuzz::write_input_file("vectors.faiss", data, size);
  try {
    kvrag::FaissIndex::load(path, 4, "Flat");
  } catch (const kvrag::Error&) {
  }
  return 0;
}

// libFuzzer target: a .safetensors file, header and data, read tensor by
// tensor as the checkpoint loader reads them. Only kvrag::Error may come
// out; anything else (an escaping parser exception, a crash, a huge
// allocation) is a finding.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/safetensors.h"
#include "tests/fuzz/input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = kvrag::fuzz::write_input_file("model.safetensors", data, size);
  try {
    const kvrag::SafeTensorsFile file(path);
    for (const std::string& name : file.names()) {
      try {
        const kvrag::TensorInfo& info = file.info(name);
        if (info.dtype == kvrag::DType::kI64 || info.dtype == kvrag::DType::kI32) {
          file.read_i64(name);
        } else {
          file.read_f32(name);
        }
      } catch (const kvrag::Error&) {
        // one unreadable tensor: the others are still read
      }
    }
  } catch (const kvrag::Error&) {
  }
  return 0;
}

// libFuzzer target: HTTP request bodies as the server validates them. The
// first byte picks the route (ask, search, documents); the rest is the
// body. Only kvrag::Error and HttpFailure (the server's 413) may come out:
// anything else would be a 500.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "server/request_validation.h"
#include "server/responses.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0:
        kvrag::server::parse_ask_request(body);
        break;
      case 1:
        kvrag::server::parse_search_request(body);
        break;
      default:
        kvrag::server::parse_documents_request(body);
        break;
    }
  } catch (const kvrag::Error&) {
  } catch (const kvrag::server::HttpFailure&) {
  }
  return 0;
}

// The error body {"error": {"code", "message"}}, the one mapping of
// kvrag::ErrorKind to an HTTP status, and server-sent event framing. The
// bodies built from the pipeline's results are api/result_json.h's.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace kvrag::server {

// The status and error code a failure of `kind` is answered with:
// invalid argument 400, not found 404, conflict 409, unavailable 503,
// deadline exceeded 504, the rest 500 (a
// format error here is a damaged index file, not the client's input).
struct HttpError {
  int status;
  const char* code;
};
HttpError http_error(ErrorKind kind);

// A failure the server answers with a status no ErrorKind names (413 for
// too many documents, 503 with Retry-After for a full queue).
class HttpFailure : public std::runtime_error {
 public:
  HttpFailure(int status, std::string code, const std::string& message, int retry_after_s = 0)
      : std::runtime_error(message),
        status_(status),
        code_(std::move(code)),
        retry_after_s_(retry_after_s) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }
  int retry_after_s() const { return retry_after_s_; }  // 0: no Retry-After header

 private:
  int status_;
  std::string code_;
  int retry_after_s_;
};

// {"error": {"code": code, "message": message}}, as JSON and as text.
nlohmann::json error_json(const std::string& code, const std::string& message);
std::string error_body(const std::string& code, const std::string& message);

// One server-sent event: "event: NAME\ndata: JSON\n\n" (JSON on one line).
std::string sse_event(const std::string& name, const nlohmann::json& data);

}  // namespace kvrag::server

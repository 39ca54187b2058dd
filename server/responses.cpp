#include "server/responses.h"

#include "api/result_json.h"
#include "core/error.h"

namespace kvrag::server {

using nlohmann::json;

HttpError http_error(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return {400, error_kind_name(kind)};
    case ErrorKind::kNotFound:
      return {404, error_kind_name(kind)};
    case ErrorKind::kUnavailable:
      return {503, error_kind_name(kind)};
    case ErrorKind::kConflict:
      return {409, error_kind_name(kind)};
    case ErrorKind::kDeadlineExceeded:
      return {504, error_kind_name(kind)};
    case ErrorKind::kFormat:
    case ErrorKind::kIo:
    case ErrorKind::kInternal:
      return {500, error_kind_name(kind)};
  }
  return {500, error_kind_name(ErrorKind::kInternal)};
}

json error_json(const std::string& code, const std::string& message) {
  return {{"error", {{"code", code}, {"message", message}}}};
}

std::string error_body(const std::string& code, const std::string& message) {
  return api::dump(error_json(code, message));
}

std::string sse_event(const std::string& name, const json& data) {
  return "event: " + name + "\ndata: " + api::dump(data) + "\n\n";
}

}  // namespace kvrag::server

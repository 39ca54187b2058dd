#include "core/error.h"

namespace kvrag {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "invalid_argument";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kFormat:
      return "format_error";
    case ErrorKind::kIo:
      return "io_error";
    case ErrorKind::kUnavailable:
      return "unavailable";
    case ErrorKind::kConflict:
      return "conflict";
    case ErrorKind::kDeadlineExceeded:
      return "deadline_exceeded";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace kvrag

// Errors raised by kvrag libraries: one exception type with a few kinds, so
// callers (the CLI, the HTTP server) can map a failure to an exit code or an
// HTTP status without parsing messages.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace kvrag {

enum class ErrorKind {
  kInvalidArgument,   // the caller passed something wrong (400)
  kNotFound,          // a file, tensor, document or route does not exist (404)
  kFormat,            // a file exists but its content is malformed (400/500)
  kIo,                // the operating system or SQLite failed (500)
  kUnavailable,       // the service cannot take the request now (503)
  kConflict,          // the request cannot apply to the index as it is, e.g. empty (409)
  kDeadlineExceeded,  // the request's time ran out before it was answered (504)
  kInternal,          // a broken invariant: a bug in kvrag (500)
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Concatenates any streamable values into one string: the message builder of
// KVRAG_CHECK (GCC 12 has no std::format).
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

[[noreturn]] inline void throw_error(ErrorKind kind, const std::string& message) {
  throw Error(kind, message);
}

}  // namespace kvrag

// Throws kvrag::Error of the given kind (a bare ErrorKind enumerator name)
// when `cond` is false; the message is the remaining arguments concatenated.
#define KVRAG_CHECK(cond, kind, ...)                                                 \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      ::kvrag::throw_error(::kvrag::ErrorKind::kind, ::kvrag::str_cat(__VA_ARGS__)); \
    }                                                                                \
  } while (0)

#define KVRAG_THROW(kind, ...) \
  ::kvrag::throw_error(::kvrag::ErrorKind::kind, ::kvrag::str_cat(__VA_ARGS__))

#include "server/http_server.h"

#include <httplib.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "server/responses.h"
#include "server/routes.h"

namespace kvrag::server {
namespace {

using httplib::Request;
using httplib::Response;

// The compiled patterns of routes(), index for index.
const std::vector<std::regex>& route_patterns() {
  static const std::vector<std::regex> patterns = [] {
    std::vector<std::regex> out;
    for (const Route& route : routes()) out.emplace_back(route.pattern);
    return out;
  }();
  return patterns;
}

std::string route_label(const std::string& path) {
  for (size_t i = 0; i < routes().size(); ++i) {
    if (std::regex_match(path, route_patterns()[i])) return routes()[i].label;
  }
  return "unmatched";
}

// A request no route took: 405 with Allow when the path exists under other
// methods, 404 otherwise.
void unmatched(const Request& req, Response& res) {
  std::string allow;
  for (size_t i = 0; i < routes().size(); ++i) {
    if (!std::regex_match(req.path, route_patterns()[i])) continue;
    const std::string method = routes()[i].method;
    allow += (allow.empty() ? "" : ", ") + method + (method == "GET" ? ", HEAD" : "");
  }
  if (allow.empty()) {
    set_error(res, 404, "not_found", "no route for " + req.method + " " + req.path);
    return;
  }
  res.set_header("Allow", allow);
  set_error(res, 405, "method_not_allowed",
            req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")");
}

// The methods some route or the fallback answers; any other method cpp-httplib
// parses (TRACE, CONNECT) is a 405 rather than its own bare 400.
bool known_method(const std::string& method) {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == m) return true;
  }
  return false;
}

// Whether a Content-Type header names JSON: "application/json" or a
// "+json" type, parameters (charset) aside, in any case.
bool is_json_content_type(std::string type) {
  type = type.substr(0, type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type == "application/json" || (type.rfind("application/", 0) == 0 && type.size() > 5 &&
                                        type.compare(type.size() - 5, 5, "+json") == 0);
}

// Refuses, before any body is read, what no route should wait for: a
// Content-Length that is not a decimal number (cpp-httplib would read
// "-5" as 2^64 - 5 and answer 413 only after its read timeout), a method
// no route has, and a body that is not JSON on a route that reads one.
// Each answer closes the connection, since the body stays unread.
bool refused_before_routing(const Request& req, Response& res) {
  const auto refuse = [&res](int status, const char* code, const std::string& message) {
    set_error(res, status, code, message);
    res.set_header("Connection", "close");
    return true;
  };
  if (req.has_header("Content-Length")) {
    const std::string length = req.get_header_value("Content-Length");
    const bool digits = !length.empty() && length.size() <= 19 &&
                        length.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || req.get_header_value_count("Content-Length") > 1) {
      return refuse(400, error_kind_name(ErrorKind::kInvalidArgument),
                    "invalid Content-Length header: it must be one decimal number of bytes");
    }
  }
  if (!known_method(req.method)) {
    res.set_header("Allow", "GET, HEAD, POST, DELETE");
    return refuse(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
  }
  const bool has_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  // Without either nothing says where the body ends: cpp-httplib read to the end of the
  // connection, which a client waiting for its answer never closes, and
  // answered a vague 400 after the read timeout (curl -X POST without -d).
  if (has_body && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
    return refuse(411, "length_required",
                  req.method + " " + req.path +
                      " needs a body with a Content-Length header (or chunked transfer encoding)");
  }
  if (has_body && req.has_header("Content-Type") &&
      !is_json_content_type(req.get_header_value("Content-Type"))) {
    return refuse(415, "unsupported_media_type",
                  "the request body must be JSON (Content-Type: application/json), got "
                  "Content-Type '" +
                      req.get_header_value("Content-Type").substr(0, 100) + "'");
  }
  return false;
}

// Errors cpp-httplib answers itself before any route runs.
std::string library_error_message(int status, int64_t max_body_bytes) {
  if (status == 413) {
    return "the request body is larger than the limit of " + std::to_string(max_body_bytes) +
           " bytes (--max-body-bytes)";
  }
  if (status == 414) return "the request URI is too long";
  return "malformed or unsupported HTTP request";
}

std::string library_error_code(int status) {
  switch (status) {
    case 413:
      return "payload_too_large";
    case 414:
      return "uri_too_long";
    case 404:
      return "not_found";
    case 400:
      return error_kind_name(ErrorKind::kInvalidArgument);
    default:
      return error_kind_name(ErrorKind::kInternal);
  }
}

}  // namespace

HttpServer::HttpServer(RagPipeline& pipeline, const ServerOptions& options)
    : pipeline_(pipeline), options_(options) {
  KVRAG_CHECK(options_.threads >= 0, kInvalidArgument, "threads must be >= 0, got ",
              options_.threads);
  KVRAG_CHECK(options_.queue_size >= -1, kInvalidArgument, "queue size must be >= 0, got ",
              options_.queue_size);
  KVRAG_CHECK(options_.ingest_queue_size >= 0, kInvalidArgument,
              "ingest queue size must be >= 0, got ", options_.ingest_queue_size);
  KVRAG_CHECK(options_.connection_threads >= 0, kInvalidArgument,
              "connection threads must be >= 0, got ", options_.connection_threads);
  KVRAG_CHECK(options_.max_body_bytes >= 1, kInvalidArgument, "max body bytes must be >= 1, got ",
              options_.max_body_bytes);
  KVRAG_CHECK(options_.request_timeout_ms >= 1 && options_.request_timeout_ms <= kMaxTimeoutMs,
              kInvalidArgument, "request timeout must be in 1..", kMaxTimeoutMs, " ms, got ",
              options_.request_timeout_ms);
  if (options_.threads == 0) {
    options_.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  if (options_.queue_size == -1) options_.queue_size = 4 * options_.threads;
  if (options_.connection_threads == 0) {
    options_.connection_threads =
        options_.threads + options_.queue_size + 1 + options_.ingest_queue_size + 32;
  }
  answers_ = std::make_unique<WorkQueue>("answer", options_.threads, options_.queue_size);
  // Ingestion encodes for as long as a request has documents: at nice 10 its
  // worker leaves the cores to the answer workers whenever they have work.
  ingest_ = std::make_unique<WorkQueue>("ingest", 1, options_.ingest_queue_size, /*nice=*/10);
  const size_t threads = static_cast<size_t>(options_.connection_threads);
  http_ = std::make_unique<GuardedServer>(options_.connection, threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  // cpp-httplib's default sets SO_REUSEPORT, which lets a second server bind
  // a port already served and silently share its connections; SO_REUSEADDR
  // alone still allows a restart while old connections are in TIME_WAIT.
  http_->set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  add_routes();
}

// The library's server first (its connection threads wait on the queues'
// jobs), then the queues, whose destructors run the jobs still queued: a
// streamed ask's job uses the routes' context, which context_ keeps alive
// until after them (the handlers that shared it went with http_).
HttpServer::~HttpServer() {
  http_.reset();
  ingest_.reset();
  answers_.reset();
}

void HttpServer::add_routes() {
  // Handlers run with the context by reference; it lives as long as the
  // server's routes and queued jobs do (context_, ~HttpServer).
  context_ = std::make_shared<Context>(Context{pipeline_, metrics_, *answers_, *ingest_, options_});
  const std::shared_ptr<Context> context = context_;
  const int64_t max_body_bytes = options_.max_body_bytes;
  const auto run = [context](Handler handler, const Request& req, const std::string& body,
                             Response& res) {
    try {
      handler(*context, req, body, res);
    } catch (const HttpFailure& e) {
      set_error(res, e.status(), e.code(), e.what());
      if (e.retry_after_s() > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s()));
    } catch (const Error& e) {
      const HttpError error = http_error(e.kind());
      set_error(res, error.status, error.code, e.what());
      if (e.kind() == ErrorKind::kDeadlineExceeded) {
        context->metrics.count_deadline_exceeded(route_label(req.path));
      }
    } catch (const std::exception& e) {
      set_error(res, 500, error_kind_name(ErrorKind::kInternal), e.what());
    }
  };
  // Routes with a body read it themselves: cpp-httplib 0.11.4 bounds only
  // bodies sent with a Content-Length and would hold a chunked one whole,
  // however large. Beyond the limit the rest is read and dropped, so the
  // client still gets its 413 on a connection in a known state.
  const auto with_body = [max_body_bytes, run](Handler handler) {
    return [max_body_bytes, run, handler](const Request& req, Response& res,
                                          const httplib::ContentReader& reader) {
      std::string body;
      bool too_large = false;
      const bool read = reader([&](const char* data, size_t size) {
        too_large = too_large || static_cast<int64_t>(body.size() + size) > max_body_bytes;
        if (!too_large) body.append(data, size);
        return true;
      });
      if (too_large || res.status == 413) {
        set_error(res, 413, library_error_code(413), library_error_message(413, max_body_bytes));
      } else if (!read) {
        set_error(res, 400, library_error_code(400), "the request body could not be read");
      } else {
        run(handler, req, body, res);
      }
    };
  };
  for (const Route& route : routes()) {
    const Handler handler = route.handler;
    const std::string method = route.method;
    const auto without_body = [run, handler](const Request& req, Response& res) {
      run(handler, req, req.body, res);
    };
    if (method == "GET") http_->Get(route.pattern, without_body);
    if (method == "POST") http_->Post(route.pattern, with_body(handler));
    if (method == "DELETE") http_->Delete(route.pattern, without_body);
  }
  // Registered last, so they only see what no route above matched. "." of
  // std::regex matches no '\n' or '\r', which a percent-encoded path may hold.
  constexpr const char* kAnyPath = R"([\s\S]*)";
  const Handler fallback = [](Context&, const Request& req, const std::string&, Response& res) {
    unmatched(req, res);
  };
  const auto fallback_without_body = [run, fallback](const Request& req, Response& res) {
    run(fallback, req, req.body, res);
  };
  http_->Get(kAnyPath, fallback_without_body);
  http_->Post(kAnyPath, with_body(fallback));
  http_->Put(kAnyPath, with_body(fallback));
  http_->Patch(kAnyPath, with_body(fallback));
  http_->Delete(kAnyPath, fallback_without_body);
  http_->Options(kAnyPath, fallback_without_body);

  http_->set_pre_routing_handler([](const Request& req, Response& res) {
    return refused_before_routing(req, res) ? httplib::Server::HandlerResponse::Handled
                                            : httplib::Server::HandlerResponse::Unhandled;
  });

  // Called for every response of status >= 400; routes write their own
  // error bodies, so only cpp-httplib's empty ones are filled in.
  http_->set_error_handler(
      httplib::Server::HandlerWithResponse([max_body_bytes](const Request&, Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        set_error(res, res.status, library_error_code(res.status),
                  library_error_message(res.status, max_body_bytes));
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_->set_logger([this](const Request& req, const Response& res) {
    metrics_.count_request(route_label(req.path), req.method, res.status);
  });
}

int HttpServer::bind() {
  errno = 0;
  const int port = options_.port == 0
                       ? http_->bind_to_any_port(options_.host)
                       : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  const int bind_errno = errno;
  KVRAG_CHECK(port > 0, kUnavailable, "cannot listen on ", options_.host, ":", options_.port, ": ",
              bind_errno ? std::strerror(bind_errno) : "the address cannot be bound");
  options_.port = port;
  return port;
}

void HttpServer::serve() {
  {
    const std::lock_guard<std::mutex> lock(lifecycle_mutex_);
    if (stop_requested_) return;
    serving_ = true;
  }
  http_->listen_after_bind();
  serving_ = false;
}

void HttpServer::stop() {
  {
    const std::lock_guard<std::mutex> lock(lifecycle_mutex_);
    stop_requested_ = true;
    if (!serving_) return;
  }
  // serve() may not have reached httplib's accept loop yet, and
  // httplib::Server::stop() does nothing before it has.
  while (serving_ && !http_->is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  http_->stop();
}

}  // namespace kvrag::server

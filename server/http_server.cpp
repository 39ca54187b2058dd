#include "server/http_server.h"

#include <httplib.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

#include "api/result_json.h"
#include "core/error.h"
#include "server/request_validation.h"
#include "server/responses.h"
#include "server/web_page.h"

namespace kvrag::server {
namespace {

using httplib::Request;
using httplib::Response;
using nlohmann::json;

constexpr const char* kJson = "application/json";

// Seconds a client refused for a full queue is told to wait (Retry-After):
// an ask on the demo model takes a fraction of this.
constexpr int kRetryAfterS = 1;

// What every route handler reaches: the pipeline (all model work), the
// metrics it reports to, and the queues work is admitted through.
struct Context {
  RagPipeline& pipeline;
  Metrics& metrics;
  WorkQueue& answers;
  WorkQueue& ingest;
  const ServerOptions& options;
};

// `body` is the request body, read within the size limit.
using Handler = void (*)(Context& context, const Request& req, const std::string& body,
                         Response& res);

// One route: `label` names it in metrics and messages, `pattern` is the
// regular expression cpp-httplib matches the decoded path against.
struct Route {
  const char* label;
  const char* pattern;
  const char* method;
  Handler handler;
};

void set_error(Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(error_body(code, message), kJson);
}

void set_json(Response& res, const json& body) { res.set_content(api::dump(body), kJson); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---------------------------------------------------------------- handlers

void get_page(Context&, const Request&, const std::string&, Response& res) {
  res.set_content(web_page_html(), "text/html; charset=utf-8");
}

json queue_json(const QueueDepth& q) {
  return {{"queued", q.queued},
          {"running", q.running},
          {"workers", q.workers},
          {"capacity", q.capacity}};
}

// Answered on the connection thread from the queues' counters alone: it
// takes no pipeline lock and never waits behind work. "busy" while the
// answer queue is full (asks get 503); still 200, since the server is alive.
void get_health(Context& context, const Request&, const std::string&, Response& res) {
  set_json(res, {{"status", context.answers.full() ? "busy" : "ready"},
                 {"queues",
                  {{"answer", queue_json(context.answers.depth())},
                   {"ingest", queue_json(context.ingest.depth())}}}});
}

void get_stats(Context& context, const Request&, const std::string&, Response& res) {
  set_json(res, api::stats_json(context.pipeline.stats()));
}

void get_metrics(Context& context, const Request&, const std::string&, Response& res) {
  res.set_content(context.metrics.render(context.pipeline.stats(),
                                         {context.answers.depth(), context.ingest.depth()}),
                  "text/plain; version=0.0.4; charset=utf-8");
}

// Runs `work` on a worker of `queue` and waits for it, rethrowing what it
// throws. A full queue is HttpFailure 503 with Retry-After, at once.
template <typename Work>
void run_admitted(Context& context, WorkQueue& queue, Work work) {
  auto task = std::make_shared<std::packaged_task<void()>>([&context, &queue, &work] {
    if (context.options.on_job_start) context.options.on_job_start(queue.name());
    work();
  });
  std::future<void> done = task->get_future();
  if (!queue.try_submit([task] { (*task)(); })) {
    context.metrics.count_rejection(queue.name());
    const QueueDepth depth = queue.depth();
    throw HttpFailure(
        503, "overloaded",
        str_cat("the server is busy: the ", queue.name(), " queue is full (", depth.running,
                " running, ", depth.queued, " waiting); retry after ", kRetryAfterS, " s"),
        kRetryAfterS);
  }
  done.get();
}

// The deadline of a request that arrived at `arrival`: its own timeout_ms,
// else the server's.
Deadline request_deadline(const Context& context, std::optional<int64_t> timeout_ms,
                          std::chrono::steady_clock::time_point arrival) {
  return Deadline::after(
      std::chrono::milliseconds(timeout_ms.value_or(context.options.request_timeout_ms)), arrival);
}

// Thrown from the piece callback when the client of a stream has gone, to
// stop generating for nobody.
struct ClientGone {};

// The events of one streamed answer, from the worker that generates them to
// the connection thread that writes them.
class EventChannel {
 public:
  void push(std::string event) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(std::move(event));
    }
    ready_.notify_one();
  }
  void finish() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
    }
    ready_.notify_one();
  }
  // The next event; false once finished and every event was taken.
  bool pop(std::string& event) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return finished_ || !events_.empty(); });
    if (events_.empty()) return false;
    event = std::move(events_.front());
    events_.pop_front();
    return true;
  }
  std::atomic<bool> client_gone{false};

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::string> events_;
  bool finished_ = false;
};

// Generates one streamed answer into `channel` (on an answer worker):
// "piece" {text} per generated piece, then "done" with the same body a
// non-streamed ask returns, or "error" {error: {code, message}} when
// answering fails (a passed deadline included) after the headers were sent.
void stream_answer(Context& context, const AskRequest& request, EventChannel& channel) {
  try {
    if (context.options.on_job_start) context.options.on_job_start(context.answers.name());
    const auto start = std::chrono::steady_clock::now();
    const Answer answer = context.pipeline.ask(
        request.question, request.options, [&channel](const std::string& piece) {
          if (channel.client_gone) throw ClientGone{};
          channel.push(sse_event("piece", {{"text", piece}}));
        });
    context.metrics.observe_answer(answer.mode, seconds_since(start),
                                   answer.timings.generated_tokens);
    channel.push(sse_event("done", api::answer_json(answer)));
  } catch (const ClientGone&) {
    // nobody to tell
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kDeadlineExceeded)
      context.metrics.count_deadline_exceeded("/v1/ask");
    channel.push(sse_event("error", error_json(http_error(e.kind()).code, e.what())));
  } catch (const std::exception& e) {
    channel.push(sse_event("error", error_json(error_kind_name(ErrorKind::kInternal), e.what())));
  }
  channel.finish();
}

void post_ask(Context& context, const Request&, const std::string& body, Response& res) {
  const auto arrival = std::chrono::steady_clock::now();
  AskRequest request = parse_ask_request(body);
  request.options.deadline = request_deadline(context, request.timeout_ms, arrival);
  if (request.stream) {
    // Admitted (or refused with 503) before any header is sent; the worker
    // then generates while this connection's thread writes the events.
    auto channel = std::make_shared<EventChannel>();
    if (!context.answers.try_submit(
            [&context, request, channel] { stream_answer(context, request, *channel); })) {
      context.metrics.count_rejection(context.answers.name());
      throw HttpFailure(503, "overloaded",
                        str_cat("the server is busy: the ", context.answers.name(),
                                " queue is full; retry after ", kRetryAfterS, " s"),
                        kRetryAfterS);
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream",
                                     [channel](size_t, httplib::DataSink& sink) {
                                       std::string event;
                                       while (channel->pop(event)) {
                                         if (!sink.write(event.data(), event.size())) {
                                           channel->client_gone = true;
                                           return false;
                                         }
                                       }
                                       sink.done();
                                       return true;
                                     });
    return;
  }
  run_admitted(context, context.answers, [&] {
    const auto start = std::chrono::steady_clock::now();
    const Answer answer = context.pipeline.ask(request.question, request.options);
    context.metrics.observe_answer(answer.mode, seconds_since(start),
                                   answer.timings.generated_tokens);
    set_json(res, api::answer_json(answer));
  });
}

void post_search(Context& context, const Request&, const std::string& body, Response& res) {
  const auto arrival = std::chrono::steady_clock::now();
  const SearchRequest request = parse_search_request(body);
  const Deadline deadline = request_deadline(context, std::nullopt, arrival);
  run_admitted(context, context.answers, [&] {
    deadline.check("waiting for a worker");
    const auto start = std::chrono::steady_clock::now();
    const std::vector<RetrievedChunk> chunks =
        context.pipeline.retrieve(request.query, request.k, request.retriever);
    set_json(res, api::search_json(chunks, seconds_since(start) * 1000.0));
  });
}

// Written in batches of kDocumentsPerCommit with the index's write lock
// released between them, so asks interleave; at most kMaxDocumentsPerRequest
// documents (413 beyond). The deadline is checked before writing starts,
// never during: a request is written whole or, on an error, up to the
// batch that failed (as `kvrag index`), never cut off at an arbitrary time.
void post_documents(Context& context, const Request&, const std::string& body, Response& res) {
  const auto arrival = std::chrono::steady_clock::now();
  const std::vector<Document> docs = parse_documents_request(body);
  const Deadline deadline = request_deadline(context, std::nullopt, arrival);
  run_admitted(context, context.ingest, [&] {
    deadline.check("waiting for the ingestion worker");
    set_json(res, api::index_report_json(context.pipeline.add_documents(docs)));
  });
}

void get_document(Context& context, const Request& req, const std::string&, Response& res) {
  const std::string id = req.matches[1];
  check_text_field("id", id);
  const std::optional<DocumentRecord> doc = context.pipeline.find_document(id);
  KVRAG_CHECK(doc.has_value(), kNotFound, "no document with id '", id, "'");
  set_json(res, api::document_json(*doc, context.pipeline.document_chunks(doc->id)));
}

void delete_document(Context& context, const Request& req, const std::string&, Response& res) {
  const std::string id = req.matches[1];
  check_text_field("id", id);
  // A write: behind any ingestion, on its worker, not on a connection thread.
  run_admitted(context, context.ingest, [&] {
    KVRAG_CHECK(context.pipeline.remove_document(id), kNotFound, "no document with id '", id, "'");
    set_json(res, {{"deleted", id}});
  });
}

// Every route the server answers; unmatched() and metrics labels read the
// same table, so a path and its allowed methods are written down once.
const std::vector<Route>& routes() {
  static const std::vector<Route> table = {
      {"/", "/", "GET", get_page},
      {"/healthz", "/healthz", "GET", get_health},
      {"/metrics", "/metrics", "GET", get_metrics},
      {"/v1/stats", "/v1/stats", "GET", get_stats},
      {"/v1/ask", "/v1/ask", "POST", post_ask},
      {"/v1/search", "/v1/search", "POST", post_search},
      {"/v1/documents", "/v1/documents", "POST", post_documents},
      // Ids may hold '/' (a file's relative path), hence ".+".
      {"/v1/documents/{id}", "/v1/documents/(.+)", "GET", get_document},
      {"/v1/documents/{id}", "/v1/documents/(.+)", "DELETE", delete_document},
  };
  return table;
}

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
  http_ = std::make_unique<GuardedServer>(options_.connection);
  const size_t threads = static_cast<size_t>(options_.connection_threads);
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

HttpServer::~HttpServer() = default;

void HttpServer::add_routes() {
  // Handlers run with the context by reference; it lives as long as the
  // server's routes do.
  auto context =
      std::make_shared<Context>(Context{pipeline_, metrics_, *answers_, *ingest_, options_});
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
  // Registered last, so they only see what no route above matched.
  const Handler fallback = [](Context&, const Request& req, const std::string&, Response& res) {
    unmatched(req, res);
  };
  const auto fallback_without_body = [run, fallback](const Request& req, Response& res) {
    run(fallback, req, req.body, res);
  };
  http_->Get(".*", fallback_without_body);
  http_->Post(".*", with_body(fallback));
  http_->Put(".*", with_body(fallback));
  http_->Patch(".*", with_body(fallback));
  http_->Delete(".*", fallback_without_body);
  http_->Options(".*", fallback_without_body);

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

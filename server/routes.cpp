#include "server/routes.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <optional>
#include <vector>

#include "api/result_json.h"
#include "core/error.h"
#include "data/text_normalization.h"
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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

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
    // Once the headers are sent an error can only be an "error" event of a
    // 200 stream: a question over the token cap is refused with its 400
    // before, and an empty index with its 409, as a non-streamed ask is.
    context.pipeline.check_question(request.question);
    context.pipeline.require_documents();
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
  const auto doc = context.pipeline.document_with_chunks(id);
  KVRAG_CHECK(doc.has_value(), kNotFound, "no document with id '", id, "'");
  set_json(res, api::document_json(doc->first, doc->second));
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

}  // namespace

void set_error(Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(error_body(code, message), kJson);
}

void set_json(Response& res, const json& body) { res.set_content(api::dump(body), kJson); }

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
      {"/v1/documents/{id}", R"(/v1/documents/([\s\S]+))", "GET", get_document},
      {"/v1/documents/{id}", R"(/v1/documents/([\s\S]+))", "DELETE", delete_document},
  };
  return table;
}

}  // namespace kvrag::server

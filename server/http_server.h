// The HTTP API over one RagPipeline (DESIGN.md, "HTTP API"): cpp-httplib
// with a worker pool, JSON in and out, server-sent events for streamed
// answers, Prometheus metrics and the page at "/". It holds no model logic.
//
// Under load (README, "Serving under load"): connection threads read
// requests and write responses, and slow clients hold one only for the
// header and body timeouts (server/guarded_server.h). Answering (ask,
// search) runs on `threads` workers behind a queue of `queue_size`, document
// writes on one lower-priority worker behind `ingest_queue_size`; a request
// that finds its queue full is answered 503 with Retry-After at once.
// /healthz and /metrics never enter a queue. Every ask has a deadline
// (timeout_ms, else request_timeout_ms, counted from its arrival) and is
// answered 504 (a stream: an "error" event) when it passes.
//
// Lifecycle: construct, bind() (a free port with port 0), serve() on some
// thread until stop() is called from another; serve() returns once the
// requests in flight have been answered.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "pipeline/rag_pipeline.h"
#include "server/guarded_server.h"
#include "server/metrics.h"
#include "server/work_queue.h"

namespace kvrag::server {

struct Context;  // server/routes.h

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see bind())
  // Answering workers (ask, search); 0: one per hardware thread.
  int threads = 0;
  // Asks and searches that may wait for a worker; -1: 4 per worker.
  int queue_size = -1;
  // Document writes (POST, DELETE) that may wait for the one ingestion worker.
  int ingest_queue_size = 2;
  // Threads that read requests and write responses; 0: every request the
  // queues admit, plus 32 for slow clients, /healthz and /metrics.
  int connection_threads = 0;
  int64_t max_body_bytes = 1 << 20;  // larger request bodies are answered 413
  // An ask's deadline when it sets no timeout_ms (--request-timeout-s).
  int64_t request_timeout_ms = kDefaultRequestTimeoutS * 1000;
  ConnectionLimits connection;  // header, body and per-read/write timeouts
  // For tests: called on a worker as each admitted request starts, with its
  // queue's name ("answer" or "ingest"); it may block to keep a worker busy.
  std::function<void(const std::string& queue)> on_job_start;
};

class HttpServer {
 public:
  // `pipeline` must outlive the server. Error(kInvalidArgument) for threads,
  // ingest_queue_size or connection_threads < 0, queue_size < -1,
  // max_body_bytes < 1 or request_timeout_ms outside 1..kMaxTimeoutMs.
  HttpServer(RagPipeline& pipeline, const ServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on host:port and returns the port (the one chosen
  // when options.port is 0). Error(kUnavailable) naming the address and the
  // system's reason when it cannot (a port in use, a bad host).
  int bind();
  // Accepts and answers requests until stop(); call after bind().
  void serve();
  // Makes serve() return after the requests in flight; safe from any thread
  // and before serve() has started (serve() then returns at once).
  void stop();

  const ServerOptions& options() const { return options_; }

 private:
  void add_routes();

  RagPipeline& pipeline_;
  ServerOptions options_;
  Metrics metrics_;
  // Declared before http_: the connection threads wait on jobs in these
  // queues, so the queues must outlive the library's server.
  std::unique_ptr<WorkQueue> answers_;
  std::unique_ptr<WorkQueue> ingest_;
  std::unique_ptr<GuardedServer> http_;
  // The routes' context, shared with their handlers: held here too, so that
  // it outlives the jobs the queues still run as they are destroyed.
  std::shared_ptr<Context> context_;
  std::mutex lifecycle_mutex_;
  bool stop_requested_ = false;
  std::atomic<bool> serving_{false};
};

}  // namespace kvrag::server

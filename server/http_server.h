// The HTTP API over one RagPipeline (DESIGN.md, "HTTP API"): cpp-httplib
// with a worker pool, JSON in and out, server-sent events for streamed
// answers, Prometheus metrics and the page at "/". It holds no model logic.
//
// Lifecycle: construct, bind() (a free port with port 0), serve() on some
// thread until stop() is called from another; serve() returns once the
// requests in flight have been answered.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "pipeline/rag_pipeline.h"
#include "server/metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace kvrag::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port (see bind())
  int threads = 0;                   // worker threads; 0: one per hardware thread
  int64_t max_body_bytes = 1 << 20;  // larger request bodies are answered 413
};

class HttpServer {
 public:
  // `pipeline` must outlive the server. Error(kInvalidArgument) for threads
  // < 0 or max_body_bytes < 1.
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
  std::unique_ptr<httplib::Server> http_;
  std::mutex lifecycle_mutex_;
  bool stop_requested_ = false;
  std::atomic<bool> serving_{false};
};

}  // namespace kvrag::server

// An httplib::Server whose connections slow clients cannot hold. cpp-httplib
// 0.11.4 bounds each read and write by a timeout (set_read_timeout), not a
// request as a whole: a client that sends one header line every 2 s keeps a
// thread forever. GuardedServer replaces the library's per-connection loop
// (its process_and_close_socket, which the library calls for every accepted
// socket) with one over a stream whose reads share one deadline per phase:
//   - the request line and headers, waiting for them included, must arrive
//     within header_timeout of the connection opening (or of the previous
//     response on a kept-alive connection), or the connection is closed;
//   - the body must arrive within body_timeout of the headers;
//   - every single read and write also gives up after io_timeout;
//   - while every connection thread holds a connection, a kept-alive one
//     idle between requests is closed, so that new connections need not
//     wait out idle ones' header_timeout.
// Routing, parsing and responses are the library's own (process_request).
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstddef>

namespace kvrag::server {

struct ConnectionLimits {
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds body_timeout{10000};
  std::chrono::milliseconds io_timeout{5000};
  size_t keep_alive_max_count = 100;  // requests per connection
};

class GuardedServer : public httplib::Server {
 public:
  // `threads`: the connection threads of its task queue. While that many
  // connections are open, a kept-alive one idle between requests is closed.
  GuardedServer(const ConnectionLimits& limits, size_t threads);

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnectionLimits limits_;
  size_t threads_;
  std::atomic<size_t> open_connections_{0};
};

}  // namespace kvrag::server

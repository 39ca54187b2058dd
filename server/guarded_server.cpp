#include "server/guarded_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>

namespace kvrag::server {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A socket stream whose reads stop at a deadline (the phase's) as well as
// after io_timeout each; buffered, since the library reads request lines a
// byte at a time.
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(socket_t sock, const ConnectionLimits& limits,
                 const std::atomic<socket_t>& listener)
      : sock_(sock), limits_(limits), listener_(listener) {}

  // The next request's head (waiting for its first byte included) must
  // arrive within header_timeout from now.
  void start_request() {
    read_deadline_ = Clock::now() + limits_.header_timeout;
    head_read_ = false;
  }

  // Waits until a byte can be read, within the read deadline, returning
  // early (false) once the server stops listening, or once `give_up` says
  // so (checked every slice).
  bool wait_readable(const std::function<bool()>& give_up = {}) const {
    if (begin_ < end_) return true;
    const Clock::time_point until = std::min(read_deadline_, Clock::now() + limits_.io_timeout);
    while (true) {
      if (listener_ == INVALID_SOCKET || (give_up && give_up())) return false;
      const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
      if (left <= 0) {
        timed_out_ = true;
        return false;
      }
      // Slices, so that stop() is not held by an idle connection.
      if (poll_for(POLLIN, std::min<int64_t>(left, 100))) return true;
      if (failed_) return false;
    }
  }

  bool is_readable() const override { return wait_readable(); }

  bool is_writable() const override {
    return poll_for(POLLOUT, static_cast<int64_t>(limits_.io_timeout.count()));
  }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {
      if (!wait_readable()) return -1;
      ssize_t n;
      do {
        n = recv(sock_, buffer_.data(), buffer_.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t count = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_.data() + begin_, count);
    begin_ += count;
    return static_cast<ssize_t>(count);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    // The library asks for this right after it has parsed the request head
    // (process_request): from then on the body has body_timeout.
    if (!head_read_) {
      head_read_ = true;
      read_deadline_ = Clock::now() + limits_.body_timeout;
    }
    address(getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address(getsockname, ip, port);
  }
  socket_t socket() const override { return sock_; }

  // Whether a read gave up on a deadline or a timeout: the connection is
  // then closed rather than kept for another request.
  bool timed_out() const { return timed_out_; }

 private:
  bool poll_for(short events, int64_t timeout_ms) const {
    pollfd fd{sock_, events, 0};
    int n;
    do {
      n = poll(&fd, 1, static_cast<int>(timeout_ms));
    } while (n < 0 && errno == EINTR);
    if (n < 0 || (n > 0 && (fd.revents & (POLLERR | POLLNVAL)))) failed_ = true;
    return n > 0 && !failed_;
  }

  template <typename Getter>
  void address(Getter getter, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ip.clear();
    port = -1;
    if (getter(sock_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (addr.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &in->sin_addr, text.data(), text.size());
      port = ntohs(in->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &in6->sin6_addr, text.data(), text.size());
      port = ntohs(in6->sin6_port);
    }
    ip = text.data();
  }

  socket_t sock_;
  ConnectionLimits limits_;
  const std::atomic<socket_t>& listener_;
  mutable Clock::time_point read_deadline_ = Clock::time_point::max();
  mutable bool head_read_ = false;
  mutable bool failed_ = false;
  mutable bool timed_out_ = false;
  std::array<char, 4096> buffer_{};
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace

GuardedServer::GuardedServer(const ConnectionLimits& limits, size_t threads)
    : limits_(limits), threads_(threads) {
  // The library's own timeouts still bound what it does outside our stream.
  const auto seconds = [](milliseconds ms) {
    return std::max<time_t>(1, static_cast<time_t>((ms.count() + 999) / 1000));
  };
  set_read_timeout(seconds(limits.io_timeout));
  set_write_timeout(seconds(limits.io_timeout));
  set_keep_alive_timeout(seconds(limits.header_timeout));
  set_keep_alive_max_count(limits.keep_alive_max_count);
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  ++open_connections_;
  struct Closed {
    std::atomic<size_t>& open;
    ~Closed() { --open; }
  } closed{open_connections_};
  // A kept-alive connection waiting for its next request holds a thread
  // for up to header_timeout: while every thread holds a connection, new
  // ones (a /healthz probe) queue behind idle ones, so those are closed, as
  // HTTP lets a server close an idle connection at any time.
  const auto crowded = [this] { return open_connections_.load() >= threads_; };
  DeadlineStream stream(sock, limits_, svr_sock_);
  bool ok = false;
  for (size_t left = limits_.keep_alive_max_count; left > 0; --left) {
    stream.start_request();
    const bool kept_alive = left < limits_.keep_alive_max_count;
    // Silent or idle for header_timeout, or idle while the threads are crowded.
    if (!stream.wait_readable(kept_alive ? std::function<bool()>(crowded) : nullptr)) break;
    bool connection_closed = false;
    ok = process_request(stream, /*close_connection=*/left == 1, connection_closed, nullptr);
    if (!ok || connection_closed || stream.timed_out()) break;
  }
  shutdown(sock, SHUT_RDWR);
  close(sock);
  return ok;
}

}  // namespace kvrag::server

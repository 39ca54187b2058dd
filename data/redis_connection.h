// One blocking connection to one Redis node over hiredis, the piece
// data/redis_cluster.h routes commands over. hiredis stays inside data/:
// its types are only declared here.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;
struct redisReply;

namespace kvrag::redis {

struct NodeAddress {
  std::string host;
  int port = 0;

  std::string name() const;  // "host:port"
  auto operator<=>(const NodeAddress&) const = default;
};

// "host:port" as a NodeAddress; anything else is Error(kInvalidArgument).
NodeAddress parse_node_address(std::string_view text);

struct ReplyDeleter {
  void operator()(redisReply* reply) const;
};
struct ContextDeleter {
  void operator()(redisContext* context) const;
};
// A reply as hiredis parses it (hiredis/read.h), owned.
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// The error text of `reply` when it is an error reply, else nullopt.
std::optional<std::string_view> error_text(const redisReply& reply);

struct ConnectionOptions {
  std::chrono::milliseconds connect_timeout{1000};
  // A read or write that stalls this long fails the connection.
  std::chrono::milliseconds io_timeout{5000};
  // Sends READONLY after connecting, so that a replica serves reads of its
  // master's slots (a master ignores it). Cluster sets it from
  // ClusterOptions::read_from_replicas.
  bool readonly = false;
};

// One blocking connection to one node. Not thread-safe (Cluster keeps one
// per node behind a mutex). Every failure to connect, write or read is
// Error(kUnavailable) naming the node, and leaves the connection unusable.
class Connection {
 public:
  Connection(const NodeAddress& address, const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const NodeAddress& address() const { return address_; }
  // Queues a command (`args` name first; binary-safe) without sending it.
  void append(std::span<const std::string_view> args);
  // Sends everything queued.
  void flush();
  // The next reply: flushes first when something is still queued.
  Reply read();
  // append, then read.
  Reply command(std::span<const std::string_view> args);

 private:
  [[noreturn]] void fail(const char* what);
  // Reads what the socket holds into hiredis's reader.
  void receive();

  // hiredis reads 16 KiB at a time: a system call per 16 KiB of a
  // megabyte-sized blob. Replies are read here in larger pieces.
  static constexpr size_t kReceiveBytes = 256 * 1024;

  NodeAddress address_;
  std::vector<char> receive_buffer_;
  std::unique_ptr<redisContext, ContextDeleter> context_;
};

}  // namespace kvrag::redis

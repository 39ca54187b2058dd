#include "data/redis_connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/error.h"

namespace kvrag::redis {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  return {.tv_sec = static_cast<time_t>(ms.count() / 1000),
          .tv_usec = static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

constexpr std::string_view kReadonly[] = {"READONLY"};

}  // namespace

std::string NodeAddress::name() const { return host + ":" + std::to_string(port); }

NodeAddress parse_node_address(std::string_view text) {
  const size_t colon = text.rfind(':');
  int port = 0;
  bool ok = colon != std::string_view::npos && colon > 0;
  if (ok) {
    const auto [end, ec] =
        std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
    ok = ec == std::errc() && end == text.data() + text.size() && port > 0 && port < 65536;
  }
  KVRAG_CHECK(ok, kInvalidArgument, "a redis node address is host:port, got '", text, "'");
  return {std::string(text.substr(0, colon)), port};
}

void ReplyDeleter::operator()(redisReply* reply) const { freeReplyObject(reply); }

std::optional<std::string_view> error_text(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ERROR) return std::nullopt;
  return std::string_view(reply.str, reply.len);
}

void ContextDeleter::operator()(redisContext* context) const { redisFree(context); }

Connection::Connection(const NodeAddress& address, const ConnectionOptions& options)
    : address_(address),
      receive_buffer_(kReceiveBytes),
      context_(redisConnectWithTimeout(address.host.c_str(), address.port,
                                       to_timeval(options.connect_timeout))) {
  KVRAG_CHECK(context_ != nullptr, kUnavailable, "redis ", address_.name(),
              ": cannot allocate a connection");
  if (context_->err) fail("cannot connect");
  if (redisSetTimeout(context_.get(), to_timeval(options.io_timeout)) != REDIS_OK) {
    fail("cannot set its timeout");
  }
  // hiredis frees its read buffer whenever it empties past 16 KiB, to grow
  // it again, page fault by page fault, for the next large reply: kept, it
  // is as large as the largest reply read.
  context_->reader->maxbuf = 0;
  if (options.readonly) {
    const Reply reply = command(kReadonly);
    const auto error = error_text(*reply);
    KVRAG_CHECK(!error, kUnavailable, "redis ", address_.name(), ": READONLY failed: ", *error);
  }
}

Connection::~Connection() = default;

void Connection::fail(const char* what) {
  KVRAG_THROW(kUnavailable, "redis ", address_.name(), ": ", what, ": ", context_->errstr);
}

void Connection::append(std::span<const std::string_view> args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  if (redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(),
                             lengths.data()) != REDIS_OK) {
    fail("cannot queue a command");
  }
}

void Connection::flush() {
  int done = 0;
  while (!done) {
    if (redisBufferWrite(context_.get(), &done) != REDIS_OK) fail("write failed");
  }
}

Reply Connection::read() {
  void* reply = nullptr;
  if (redisGetReplyFromReader(context_.get(), &reply) != REDIS_OK) fail("malformed reply");
  if (reply == nullptr) flush();
  while (reply == nullptr) {
    receive();
    if (redisGetReplyFromReader(context_.get(), &reply) != REDIS_OK) fail("malformed reply");
  }
  return Reply(static_cast<redisReply*>(reply));
}

void Connection::receive() {
  const ssize_t received = ::read(context_->fd, receive_buffer_.data(), receive_buffer_.size());
  if (received > 0) {
    if (redisReaderFeed(context_->reader, receive_buffer_.data(), static_cast<size_t>(received)) !=
        REDIS_OK) {
      fail("cannot buffer a reply");
    }
    return;
  }
  if (received < 0 && errno == EINTR) return;
  const char* why = received == 0                               ? "the server closed it"
                    : (errno == EAGAIN || errno == EWOULDBLOCK) ? "timed out"
                                                                : std::strerror(errno);
  KVRAG_THROW(kUnavailable, "redis ", address_.name(), ": read failed: ", why);
}

Reply Connection::command(std::span<const std::string_view> args) {
  append(args);
  return read();
}

}  // namespace kvrag::redis

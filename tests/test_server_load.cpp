// The server under load, as hostile or unlucky clients see it: slow clients
// that never finish their request head, deadlines, full queues, the cap on
// documents per request and ingestion interleaved with asks. A real server
// on a free loopback port in this process, over a small demo-model index.
// Time bounds are generous (a noisy 2-core machine); speed figures belong to
// scripts/load_test.py, not here.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "data/corpus_reader.h"
#include "pipeline/rag_pipeline.h"
#include "server/http_server.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using testing::kDemoModel;
using testing::kSampleCorpus;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<Document> sample_documents(size_t count) {
  CorpusReadResult read = read_corpus({kSampleCorpus});
  if (read.documents.size() > count) read.documents.resize(count);
  return read.documents;
}

// A TCP connection to the server that sends what it is told, when told.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() { close(fd_); }
  bool connected() const { return connected_; }
  bool send_text(const std::string& text) const {
    return send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  }
  // Whether the server closed the connection within `seconds` (reading and
  // dropping whatever it sent before closing).
  bool closed_within(double seconds) const {
    const auto start = Clock::now();
    char buffer[512];
    while (seconds_since(start) < seconds) {
      pollfd fd{fd_, POLLIN, 0};
      if (poll(&fd, 1, 100) <= 0) continue;
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// Holds the answer workers at their next job until released: a full queue
// made deterministic.
class WorkerGate {
 public:
  void hold(const std::string& queue) {
    std::unique_lock<std::mutex> lock(mutex_);
    ++started_[queue == "answer" ? 0 : 1];
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void wait_started(int answer_jobs) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(60), [&] { return started_[0] >= answer_jobs; });
  }
  void open() {
    const std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int started_[2] = {0, 0};
  bool open_ = false;
};

class ServerLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline_ = RagPipeline::create(dir_.file("index"), kDemoModel, IndexSettings{});
    pipeline_->add_documents(sample_documents(6));
  }

  void start(server::ServerOptions options) {
    options.port = 0;
    server_ = std::make_unique<server::HttpServer>(*pipeline_, options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
  }

  void TearDown() override {
    if (!server_) return;
    server_->stop();
    thread_.join();
  }

  std::unique_ptr<httplib::Client> client(int read_timeout_s = 60) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(read_timeout_s, 0);
    c->set_connection_timeout(5, 0);
    return c;
  }

  httplib::Result post(const std::string& path, const json& body) const {
    return client()->Post(path.c_str(), body.dump(), "application/json");
  }

  testing::TempDir dir_{"kvrag_test_server_load"};
  std::unique_ptr<RagPipeline> pipeline_;
  std::unique_ptr<server::HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(ServerLoadTest, SlowHeaderClientsDoNotBlockHealthzAndAreDropped) {
  server::ServerOptions options;
  options.threads = 1;
  options.connection_threads = 12;  // fewer than slow clients + probes would need without a bound
  options.connection.header_timeout = std::chrono::milliseconds(1500);
  start(options);

  // More slow clients than connection threads, each sending one header line
  // now and then and never the blank line that ends the head.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 16; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(slow.back()->connected());
    ASSERT_TRUE(slow.back()->send_text("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  }
  std::atomic<bool> dripping{true};
  std::thread drip([&] {
    while (dripping) {
      for (auto& c : slow) c->send_text("X-Slow: 1\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  // /healthz keeps answering: each slow client holds a thread for at most
  // the header timeout. Bound: 10 s (the timeout is 1.5 s).
  for (int probe = 0; probe < 5; ++probe) {
    const auto start_probe = Clock::now();
    const auto res = client(10)->Get("/healthz");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_LT(seconds_since(start_probe), 10.0);
  }
  // Every slow client was dropped, though it kept sending.
  for (auto& c : slow) EXPECT_TRUE(c->closed_within(20.0));
  dripping = false;
  drip.join();
  // A client that never sends a byte is dropped too.
  RawConnection silent(port_);
  ASSERT_TRUE(silent.connected());
  EXPECT_TRUE(silent.closed_within(20.0));
}

// Kept-alive clients idle between requests (a pooled HTTP client, a load
// balancer) on every connection thread: a new connection is served at once,
// the idle ones closed, where it waited for their timeouts (10 s here).
TEST_F(ServerLoadTest, IdleKeptAliveConnectionsMakeRoomForNewOnes) {
  server::ServerOptions options;
  options.threads = 1;
  options.connection_threads = 3;
  options.connection.header_timeout = std::chrono::seconds(10);
  options.connection.io_timeout = std::chrono::seconds(10);
  start(options);
  std::vector<std::unique_ptr<httplib::Client>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(client());
    idle.back()->set_keep_alive(true);
    const auto res = idle.back()->Get("/healthz");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
  }
  const auto start_probe = Clock::now();
  const auto res = client(20)->Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(seconds_since(start_probe), 3.0);
  // A pooled client whose connection was closed connects again.
  const auto again = idle.front()->Get("/healthz");
  ASSERT_TRUE(again) << httplib::to_string(again.error());
  EXPECT_EQ(again->status, 200);
}

TEST_F(ServerLoadTest, PassedDeadlineIs504WithAJsonErrorAndAStreamErrorEvent) {
  server::ServerOptions options;
  options.threads = 1;
  start(options);
  // timeout_ms 1: it passes before or during the work, whichever stage the
  // worker reaches; the answer is 504 either way.
  const json expensive = {{"question", "Which river flows through the capital?"},
                          {"k", 100},
                          {"mode", "concat"},
                          {"max_new_tokens", 512},
                          {"timeout_ms", 1}};
  const auto start_ask = Clock::now();
  const auto res = post("/v1/ask", expensive);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_LT(seconds_since(start_ask), 30.0);
  EXPECT_EQ(res->status, 504) << res->body;
  const json error = json::parse(res->body)["error"];
  EXPECT_EQ(error["code"], "deadline_exceeded");
  EXPECT_NE(error["message"].get<std::string>().find("deadline of 1 ms passed"), std::string::npos)
      << error;

  json streamed = expensive;
  streamed["stream"] = true;
  const auto events = post("/v1/ask", streamed);
  ASSERT_TRUE(events) << httplib::to_string(events.error());
  EXPECT_EQ(events->status, 200);  // the headers went out before the deadline passed
  EXPECT_NE(events->body.find("event: error\ndata: {\"error\":{\"code\":\"deadline_exceeded\""),
            std::string::npos)
      << events->body;
  EXPECT_EQ(events->body.find("event: done"), std::string::npos) << events->body;

  // timeout_ms is validated like every field.
  json bad = expensive;
  bad["timeout_ms"] = 0;
  const auto refused = post("/v1/ask", bad);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("field 'timeout_ms' must be an integer in 1..600000, got 0"),
            std::string::npos)
      << refused->body;

  // A generous deadline does not get in the way.
  const auto answered = post(
      "/v1/ask", {{"question", "Which river flows through the capital?"}, {"timeout_ms", 60000}});
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 200) << answered->body;

  const auto metrics = client()->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("kvrag_deadline_exceeded_total{route=\"/v1/ask\"} 2"),
            std::string::npos)
      << metrics->body;
}

TEST_F(ServerLoadTest, FullQueueIs503WithRetryAfterAtOnceAndHealthzSaysBusy) {
  WorkerGate gate;
  server::ServerOptions options;
  options.threads = 1;
  options.queue_size = 1;
  options.on_job_start = [&gate](const std::string& queue) { gate.hold(queue); };
  start(options);
  const json ask = {{"question", "Which river flows through the capital?"}};

  // One ask on the worker (held), one waiting: the queue is full.
  std::vector<std::thread> admitted;
  std::vector<int> statuses(2, 0);
  for (int i = 0; i < 2; ++i) {
    admitted.emplace_back([&, i] {
      const auto res = post("/v1/ask", ask);
      statuses[static_cast<size_t>(i)] = res ? res->status : -1;
    });
    if (i == 0) gate.wait_started(1);
  }
  json health;
  for (int attempt = 0; attempt < 600; ++attempt) {
    const auto res = client()->Get("/healthz");
    ASSERT_TRUE(res);
    health = json::parse(res->body);
    if (health["queues"]["answer"]["queued"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(health["status"], "busy") << health;
  EXPECT_EQ(health["queues"]["answer"]["running"], 1) << health;

  const auto start_refused = Clock::now();
  const auto refused = post("/v1/ask", ask);
  ASSERT_TRUE(refused) << httplib::to_string(refused.error());
  EXPECT_LT(seconds_since(start_refused), 10.0);  // at once, not after the work
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(refused->body)["error"]["code"], "overloaded") << refused->body;
  // Streams and searches share the answer queue.
  const auto refused_stream = post("/v1/ask", {{"question", "x"}, {"stream", true}});
  ASSERT_TRUE(refused_stream);
  EXPECT_EQ(refused_stream->status, 503) << refused_stream->body;
  EXPECT_EQ(post("/v1/search", {{"query", "river"}})->status, 503);

  const auto metrics = client()->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("kvrag_rejected_requests_total{queue=\"answer\"} 3"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("kvrag_queue_depth{queue=\"answer\"} 1"), std::string::npos);

  gate.open();
  for (std::thread& t : admitted) t.join();
  EXPECT_EQ(statuses, std::vector<int>({200, 200}));
}

TEST_F(ServerLoadTest, TooManyDocumentsIs413) {
  start(server::ServerOptions{});
  json docs = json::array();
  for (int64_t i = 0; i <= kMaxDocumentsPerRequest; ++i) {
    docs.push_back({{"id", str_cat("d", i)}, {"text", "t"}});
  }
  const auto res = post("/v1/documents", {{"documents", docs}});
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413);
  const json error = json::parse(res->body)["error"];
  EXPECT_EQ(error["code"], "too_many_documents");
  EXPECT_EQ(error["message"],
            "field 'documents' has 1001 documents, more than the limit of 1000 per request: send "
            "them in several requests");
  EXPECT_FALSE(pipeline_->find_document("d0").has_value());
}

TEST_F(ServerLoadTest, AsksAreAnsweredWhileABigPostIsWritten) {
  server::ServerOptions options;
  options.threads = 1;
  start(options);
  // The whole sample corpus under fresh ids: hundreds of documents, written
  // in many batches.
  json docs = json::array();
  for (const Document& doc : sample_documents(100)) {
    docs.push_back(
        {{"id", str_cat("big-", doc.external_id)}, {"title", doc.title}, {"text", doc.text}});
  }
  const int64_t before = pipeline_->stats().store.documents;
  std::atomic<bool> posted{false};
  int post_status = 0;
  std::thread writer([&] {
    const auto res = post("/v1/documents", {{"documents", docs}});
    post_status = res ? res->status : -1;
    posted = true;
  });
  // Once the first batch is committed, ask: the answer comes while the POST
  // is still being written (the write lock is released between batches).
  while (!posted && pipeline_->stats().store.documents == before) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int answered_during_post = 0;
  while (!posted) {
    const auto res = post("/v1/ask", {{"question", "Which river flows through the capital?"}});
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200) << res->body;
    if (!posted) ++answered_during_post;
  }
  writer.join();
  EXPECT_EQ(post_status, 200);
  EXPECT_GE(answered_during_post, 1);
  EXPECT_EQ(pipeline_->stats().store.documents, before + static_cast<int64_t>(docs.size()));
}

}  // namespace
}  // namespace kvrag

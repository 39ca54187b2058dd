// The server's Prometheus metrics: requests by route, method and status,
// answer latency histograms and generated tokens per mode, admission
// (queue depths, requests refused with 503 per queue) and requests stopped
// by their deadline per route. Index-wide
// numbers (documents, chunks, K/V bytes, RAM-cache hits and misses) are read
// from the pipeline's stats when /metrics is scraped, so they include work
// done outside the HTTP routes. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "pipeline/rag_pipeline.h"
#include "server/work_queue.h"

namespace kvrag::server {

class Metrics {
 public:
  // Upper bounds (seconds) of the answer latency histogram buckets; +Inf is implicit.
  static constexpr std::array<double, 12> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                                             0.5,   1.0,  2.5,   5.0,  10.0, 30.0};

  // `route` is the route pattern ("/v1/documents/{id}"), or "unmatched", so
  // label values stay few whatever paths clients send.
  void count_request(const std::string& route, const std::string& method, int status);
  // One answered question: its wall time and generated tokens.
  void observe_answer(Mode mode, double seconds, int64_t generated_tokens);
  // A request refused because `queue` was full (503).
  void count_rejection(const std::string& queue);
  // A request on `route` stopped by its deadline (504, or a stream's error event).
  void count_deadline_exceeded(const std::string& route);

  // Text exposition format 0.0.4 (Content-Type text/plain; version=0.0.4);
  // `queues` are the admission queues as they are now.
  std::string render(const IndexStats& stats, const std::vector<QueueDepth>& queues = {}) const;

 private:
  struct Histogram {
    std::array<int64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative counts
    int64_t count = 0;
    double sum = 0.0;
  };
  struct ModeCounters {
    Histogram latency;
    int64_t generated_tokens = 0;
  };

  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, int64_t>
      requests_;                       // (route, method, status)
  std::array<ModeCounters, 3> modes_;  // indexed by Mode
  std::map<std::string, int64_t> rejections_;          // by queue
  std::map<std::string, int64_t> deadlines_exceeded_;  // by route
};

}  // namespace kvrag::server

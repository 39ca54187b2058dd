#include "server/metrics.h"

#include <sstream>

namespace kvrag::server {
namespace {

constexpr std::array<Mode, 3> kModes = {Mode::kCached, Mode::kConcat, Mode::kFid};

// A label value escaped as the exposition format requires.
std::string label(const std::string& value) {
  std::string out;
  for (const char ch : value) {
    if (ch == '\\' || ch == '"') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out;
}

void header(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

}  // namespace

void Metrics::count_request(const std::string& route, const std::string& method, int status) {
  const std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, method, status}];
}

void Metrics::observe_answer(Mode mode, double seconds, int64_t generated_tokens) {
  const std::lock_guard<std::mutex> lock(mutex_);
  ModeCounters& counters = modes_[static_cast<size_t>(mode)];
  Histogram& h = counters.latency;
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
  counters.generated_tokens += generated_tokens;
}

void Metrics::count_rejection(const std::string& queue) {
  const std::lock_guard<std::mutex> lock(mutex_);
  ++rejections_[queue];
}

void Metrics::count_deadline_exceeded(const std::string& route) {
  const std::lock_guard<std::mutex> lock(mutex_);
  ++deadlines_exceeded_[route];
}

std::string Metrics::render(const IndexStats& stats, const std::vector<QueueDepth>& queues) const {
  std::ostringstream out;
  out.precision(9);  // bucket bounds print as written (0.005, not 0.0050000000000000001)
  const std::lock_guard<std::mutex> lock(mutex_);

  header(out, "kvrag_http_requests_total", "counter", "HTTP requests by route, method and status.");
  for (const auto& [key, count] : requests_) {
    const auto& [route, method, status] = key;
    out << "kvrag_http_requests_total{route=\"" << label(route) << "\",method=\"" << label(method)
        << "\",status=\"" << status << "\"} " << count << "\n";
  }

  header(out, "kvrag_answer_duration_seconds", "histogram",
         "Wall time of answered questions (retrieval, memory loading and decoding) by mode.");
  for (const Mode mode : kModes) {
    const Histogram& h = modes_[static_cast<size_t>(mode)].latency;
    const std::string name = mode_name(mode);
    int64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out << "kvrag_answer_duration_seconds_bucket{mode=\"" << name << "\",le=\""
          << kLatencyBuckets[i] << "\"} " << cumulative << "\n";
    }
    out << "kvrag_answer_duration_seconds_bucket{mode=\"" << name << "\",le=\"+Inf\"} " << h.count
        << "\n";
    out << "kvrag_answer_duration_seconds_sum{mode=\"" << name << "\"} " << h.sum << "\n";
    out << "kvrag_answer_duration_seconds_count{mode=\"" << name << "\"} " << h.count << "\n";
  }

  header(out, "kvrag_generated_tokens_total", "counter", "Tokens generated in answers, by mode.");
  for (const Mode mode : kModes) {
    out << "kvrag_generated_tokens_total{mode=\"" << mode_name(mode) << "\"} "
        << modes_[static_cast<size_t>(mode)].generated_tokens << "\n";
  }

  // One gauge per QueueDepth field, a line per queue.
  const auto queue_gauge = [&](const char* name, const char* help, int64_t QueueDepth::*field) {
    header(out, name, "gauge", help);
    for (const QueueDepth& q : queues) {
      out << name << "{queue=\"" << label(q.name) << "\"} " << q.*field << "\n";
    }
  };
  queue_gauge("kvrag_queue_depth", "Requests waiting for a worker, by queue.", &QueueDepth::queued);
  queue_gauge("kvrag_queue_running", "Requests on a worker now, by queue.", &QueueDepth::running);
  queue_gauge("kvrag_queue_capacity",
              "Most requests that may wait for a worker, by queue; beyond it requests get 503.",
              &QueueDepth::capacity);
  queue_gauge("kvrag_queue_workers", "Worker threads, by queue.", &QueueDepth::workers);
  header(out, "kvrag_rejected_requests_total", "counter",
         "Requests refused with 503 because their queue was full, by queue.");
  for (const QueueDepth& q : queues) {
    const auto it = rejections_.find(q.name);
    out << "kvrag_rejected_requests_total{queue=\"" << label(q.name) << "\"} "
        << (it == rejections_.end() ? 0 : it->second) << "\n";
  }
  header(out, "kvrag_deadline_exceeded_total", "counter",
         "Requests stopped because their deadline passed (504 or a stream's error event), by "
         "route.");
  for (const auto& [route, count] : deadlines_exceeded_) {
    out << "kvrag_deadline_exceeded_total{route=\"" << label(route) << "\"} " << count << "\n";
  }

  header(out, "kvrag_kv_cache_hits_total", "counter",
         "Chunk memories served from the RAM cache since the index was opened.");
  out << "kvrag_kv_cache_hits_total " << stats.kv_cache_hits << "\n";
  header(out, "kvrag_kv_cache_misses_total", "counter",
         "Chunk memories read from the blob store since the index was opened.");
  out << "kvrag_kv_cache_misses_total " << stats.kv_cache_misses << "\n";
  header(out, "kvrag_memories_reencoded_total", "counter",
         "Chunk memories missing from the blob store and encoded again from their text.");
  out << "kvrag_memories_reencoded_total " << stats.memories_reencoded << "\n";
  header(out, "kvrag_kv_cache_bytes", "gauge", "Bytes held by the RAM cache of chunk memories.");
  out << "kvrag_kv_cache_bytes " << stats.kv_cache_bytes_used << "\n";
  header(out, "kvrag_decode_steps_total", "counter",
         "Decoder passes of batched decoding (0 when each ask decodes alone).");
  out << "kvrag_decode_steps_total " << stats.decode_steps << "\n";
  header(out, "kvrag_decode_sequences_total", "counter",
         "Sequences advanced by those passes: over kvrag_decode_steps_total, the mean batch.");
  out << "kvrag_decode_sequences_total " << stats.decode_sequences << "\n";
  header(out, "kvrag_documents", "gauge", "Documents in the index.");
  out << "kvrag_documents " << stats.store.documents << "\n";
  header(out, "kvrag_chunks", "gauge", "Chunks in the index.");
  out << "kvrag_chunks " << stats.store.chunks << "\n";
  header(out, "kvrag_kv_bytes", "gauge",
         "Bytes of cached chunk memory (K/V or hidden) in the store.");
  out << "kvrag_kv_bytes " << stats.store.memory_bytes << "\n";
  return out.str();
}

}  // namespace kvrag::server

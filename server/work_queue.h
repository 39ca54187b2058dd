// Admission control for the server's expensive routes: a fixed pool of
// workers behind a bounded queue. Submitting never blocks: when `capacity`
// jobs wait already the job is refused at once, and the server answers 503
// with Retry-After instead of letting requests pile up behind the work.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kvrag::server {

struct QueueDepth {
  std::string name;
  int64_t queued = 0;   // waiting for a worker
  int64_t running = 0;  // on a worker now
  int64_t workers = 0;
  int64_t capacity = 0;  // most jobs that may wait
};

class WorkQueue {
 public:
  // `workers` threads (>= 1) run the jobs in arrival order; at most
  // `capacity` (>= 0) wait. `nice` > 0 lowers the workers' CPU priority
  // (Linux thread niceness), so that their work yields the cores to other
  // pools' (ingestion to answering). Error(kInvalidArgument) for workers < 1
  // or capacity < 0.
  WorkQueue(std::string name, int workers, int capacity, int nice = 0);
  // Runs the jobs already queued, then joins the workers.
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job` unless `capacity` jobs wait already (then false, and the
  // job is dropped unrun). A job must not throw: wrap it (std::packaged_task).
  bool try_submit(std::function<void()> job);

  QueueDepth depth() const;
  bool full() const;
  const std::string& name() const { return name_; }

 private:
  void work(int nice);

  const std::string name_;
  const int capacity_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  int64_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace kvrag::server

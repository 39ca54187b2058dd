#include "server/work_queue.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"

namespace kvrag::server {

WorkQueue::WorkQueue(std::string name, int workers, int capacity, int nice)
    : name_(std::move(name)), capacity_(capacity) {
  KVRAG_CHECK(workers >= 1, kInvalidArgument, name_, " workers must be >= 1, got ", workers);
  KVRAG_CHECK(capacity >= 0, kInvalidArgument, name_, " queue capacity must be >= 0, got ",
              capacity);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, nice] { work(nice); });
}

WorkQueue::~WorkQueue() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

bool WorkQueue::try_submit(std::function<void()> job) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    // Room means a free worker or a free place in the queue.
    const int64_t busy = running_ + static_cast<int64_t>(jobs_.size());
    if (stopping_ || busy >= static_cast<int64_t>(workers_.size()) + capacity_) return false;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

QueueDepth WorkQueue::depth() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return {name_, static_cast<int64_t>(jobs_.size()), running_,
          static_cast<int64_t>(workers_.size()), capacity_};
}

bool WorkQueue::full() const {
  const QueueDepth d = depth();
  return d.running + d.queued >= d.workers + d.capacity;
}

void WorkQueue::work(int nice) {
  // Linux gives each thread its own nice value (setpriority on its tid).
  if (nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    job();
    lock.lock();
    --running_;
  }
}

}  // namespace kvrag::server

#include "core/parallel.h"

#include <cblas.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace kvrag {
namespace {

// Threads that sleep between runs. Not OpenMP: libgomp's threads spin after
// a parallel region (and OpenBLAS's after its calls), and on a loaded
// two-core machine a spinning thread keeps the one a barrier waits for off
// its core — a T5-base int8 decoder step measured 4× slower with two
// spinning OpenMP threads than with one thread. A wake-up through a
// condition variable costs microseconds against the milliseconds of a step.
class WorkerPool {
 public:
  static WorkerPool& instance() {
    static WorkerPool pool;
    return pool;
  }

  ~WorkerPool() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // Runs part(p) for every p in [0, parts) on the caller and parts − 1
  // workers; returns when all are done. One run at a time: a caller that
  // finds the pool busy (another thread's run) does its parts alone.
  void run(int64_t parts, const std::function<void(int64_t)>& part) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) {
      for (int64_t p = 0; p < parts; ++p) part(p);
      return;
    }
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int64_t>(threads_.size()) < parts - 1) {
        threads_.emplace_back([this] { work(); });
      }
      part_ = &part;
      parts_ = parts;
      next_ = 0;
      finished_ = 0;
      ++generation_;
    }
    wake_.notify_all();
    take_parts();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return finished_ == parts_; });
    part_ = nullptr;
  }

 private:
  WorkerPool() = default;

  // Runs parts until none is left.
  void take_parts() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (next_ < parts_) {
      const int64_t p = next_++;
      lock.unlock();
      (*part_)(p);
      lock.lock();
      if (++finished_ == parts_) done_.notify_one();
    }
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      take_parts();
    }
  }

  std::mutex run_mutex_;  // held by the caller of a run
  std::mutex mutex_;      // guards everything below
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> threads_;
  const std::function<void(int64_t)>* part_ = nullptr;
  int64_t parts_ = 0;
  int64_t next_ = 0;
  int64_t finished_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace

void set_compute_threads(int64_t n) {
  KVRAG_CHECK(n >= 1, kInvalidArgument, "--threads must be at least 1, got ", n);
  openblas_set_num_threads(static_cast<int>(n));
}

int64_t compute_threads() { return openblas_get_num_threads(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t parts = std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 1, compute_threads());
  if (parts == 1) {
    if (n > 0) body(0, n);
    return;
  }
  // An exception must not escape a worker thread: keep the first, rethrow it here.
  std::exception_ptr failure;
  std::mutex failure_mutex;
  WorkerPool::instance().run(parts, [&](int64_t p) {
    try {
      body(n * p / parts, n * (p + 1) / parts);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  });
  if (failure) std::rethrow_exception(failure);
}

}  // namespace kvrag

#include "core/parallel.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace kvrag {
namespace {

// How long a thread that waits on the pool (a worker for the next run, the
// caller for its run's end) spins before it sleeps. A decoder step calls
// parallel_for about a hundred times a few microseconds apart, and waking
// a sleeping thread costs tens of microseconds in a VM: without the spin,
// T5-base decoding took about 15 % longer per token than with OpenBLAS's
// spinning threads (kvrag bench, decode ms/token), with it as long. Short,
// so that a spinning thread does not hold a core that other work needs.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(50);

// A spin-wait's hint to the CPU (x86's PAUSE: lets the sibling hyperthread
// run, and saves power).
inline void pause_briefly() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

// Spins until done() or kSpinBeforeSleep has passed.
template <typename Done>
void spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpinBeforeSleep;
  while (!done()) {
    for (int i = 0; i < 32; ++i) pause_briefly();
    if (std::chrono::steady_clock::now() >= until) return;
  }
}

// Threads that sleep between runs. Not OpenMP: libgomp's threads spin after
// a parallel region (and OpenBLAS's after its calls), and on a loaded
// two-core machine a spinning thread keeps the one a barrier waits for off
// its core — a T5-base int8 decoder step measured 4× slower with two
// spinning OpenMP threads than with one thread. They spin only briefly
// (kSpinBeforeSleep), then wait on a condition variable.
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
    spin_until([this] { return finished_ == parts_; });
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
      spin_until([&] { return stop_ || generation_ != seen; });
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
  std::atomic<int64_t> finished_ = 0;  // atomic: also read by spin_until
  std::atomic<uint64_t> generation_ = 0;
  std::atomic<bool> stop_ = false;
};

// kvrag's own count, not OpenBLAS's: OpenBLAS runs on one thread, and gemm
// (core/ops.cpp) splits a large product over parallel_for. OpenBLAS's
// threads spin and sched_yield for a while after each call, and on a
// two-core machine they took the cores from the kernels between the calls
// (perf of cached answers with T5-base: 15-25 % of the time in OpenBLAS's
// spin loop, sched_yield and the VM's interrupt enabling).
std::atomic<int64_t>& global_threads() {
  static std::atomic<int64_t> threads = [] {
    const int64_t start = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return start;
  }();
  return threads;
}

// Live CoreReservations.
std::atomic<int64_t> g_reserved{0};

// This thread's own count, 0 where it follows the process's.
thread_local int64_t t_thread_threads = 0;

}  // namespace

void set_compute_threads(int64_t n) {
  KVRAG_CHECK(n >= 1, kInvalidArgument, "--threads must be at least 1, got ", n);
  global_threads() = n;
}

void set_thread_compute_threads(int64_t n) {
  KVRAG_CHECK(n >= 0, kInvalidArgument, "a thread's compute threads must be at least 0, got ", n);
  t_thread_threads = n;
}

int64_t compute_threads() {
  if (t_thread_threads > 0) return t_thread_threads;
  return std::max<int64_t>(1, global_threads().load() - g_reserved.load());
}

CoreReservation::CoreReservation() { ++g_reserved; }

CoreReservation::~CoreReservation() { --g_reserved; }

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

SerialScope::SerialScope() : saved_(t_thread_threads) { t_thread_threads = 1; }

SerialScope::~SerialScope() { t_thread_threads = saved_; }

void parallel_for_each(int64_t n, const std::function<void(int64_t)>& item) {
  if (n == 1) {
    item(0);
    return;
  }
  parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    const SerialScope serial;
    for (int64_t i = begin; i < end; ++i) item(i);
  });
}

}  // namespace kvrag

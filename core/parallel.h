// How many threads one computation may use, and a parallel loop over them.
// compute_threads() is the one knob: `--threads`, and the server's one
// thread per request, set it; kvrag's kernels and gemm's OpenBLAS calls
// (OpenBLAS itself runs on one thread) split their work over that many.
#pragma once

#include <cstdint>
#include <functional>

namespace kvrag {

// Below this many multiply-adds a product runs on the caller's thread
// alone: an attention head's scores over a question, where waking a second
// thread costs more than it saves.
constexpr int64_t kParallelMinMultiplyAdds = int64_t{1} << 18;

// Sets the threads of parallel_for. Error(kInvalidArgument)
// for n < 1 ("--threads must be at least 1").
void set_compute_threads(int64_t n);
// Sets compute_threads() for the calling thread alone; 0 returns it to the
// process's count. The server's decode thread runs every request's steps
// in one pass and takes all cores for it, while each request's own work
// (set_compute_threads(1)) stays on its worker's one.
// Error(kInvalidArgument) for n < 0.
void set_thread_compute_threads(int64_t n);
int64_t compute_threads();

// While one lives, the process's count (not a thread's own) is one less,
// at least 1: for a thread that works beside the compute threads — a
// store read overlapping the question's encoding — so that the two cores
// of a two-core machine run two threads, not three. With three, each of
// the encoder's ~100 parallel loops waited for whichever of its threads
// had been put off its core (T5-base cached answer from SQLite, k = 50:
// encoding 15.5 ms beside the read, 12.2 alone).
class CoreReservation {
 public:
  CoreReservation();
  ~CoreReservation();
  CoreReservation(const CoreReservation&) = delete;
  CoreReservation& operator=(const CoreReservation&) = delete;
};

// Calls body(begin, end) on disjoint ranges that cover [0, n), each at least
// `grain` long (but the last), on up to compute_threads() threads (the
// caller and pool threads that sleep between calls); returns when all are
// done. Calls from several threads at once are safe (one of them gets the
// pool, the others run all their ranges themselves). With one thread or
// n <= grain it runs body(0, n) on the caller's thread. The first exception
// a body throws is rethrown.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

// While it lives, the calling thread's parallel_for calls run on that thread
// alone; its count is restored after. For kernels called from a
// parallel_for body, whose work is already split one level up.
class SerialScope {
 public:
  SerialScope();
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int64_t saved_;
};

// Calls item(i) for every i in [0, n), the items spread over
// compute_threads(). With two or more items each one's kernels run on its
// thread alone (SerialScope); a single item's kernels may split. For many
// small independent pieces of work (a batched decoder step's sequences,
// each attending over its own short memory), which one at a time would
// leave all but one core waiting.
void parallel_for_each(int64_t n, const std::function<void(int64_t)>& item);

}  // namespace kvrag

// How many threads one computation may use, and a parallel loop over them.
// OpenBLAS's thread count is the one knob: `--threads`, and the server's one
// thread per request, set it, and kvrag's own kernels (the int8 products of
// core/int8_matrix.h) split their work over the same number of threads.
#pragma once

#include <cstdint>
#include <functional>

namespace kvrag {

// Sets the threads of OpenBLAS and of parallel_for. Error(kInvalidArgument)
// for n < 1 ("--threads must be at least 1").
void set_compute_threads(int64_t n);
int64_t compute_threads();

// Calls body(begin, end) on disjoint ranges that cover [0, n), each at least
// `grain` long (but the last), on up to compute_threads() threads (the
// caller and pool threads that sleep between calls); returns when all are
// done. Calls from several threads at once are safe (one of them gets the
// pool, the others run all their ranges themselves). With one thread or
// n <= grain it runs body(0, n) on the caller's thread. The first exception
// a body throws is rethrown.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

}  // namespace kvrag

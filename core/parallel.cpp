#include "core/parallel.h"

#include <cblas.h>

#include <algorithm>
#include <exception>
#include <mutex>

#include "core/error.h"

namespace kvrag {

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
  // An exception must not leave an OpenMP region: keep the first, rethrow it after.
  std::exception_ptr failure;
  std::mutex failure_mutex;
#pragma omp parallel for num_threads(parts) schedule(static, 1)
  for (int64_t p = 0; p < parts; ++p) {
    try {
      body(n * p / parts, n * (p + 1) / parts);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace kvrag

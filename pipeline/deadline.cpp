#include "pipeline/deadline.h"

#include "core/error.h"

namespace kvrag {

Deadline Deadline::after(std::chrono::milliseconds budget, Clock::time_point start) {
  KVRAG_CHECK(budget.count() >= 1, kInvalidArgument, "a deadline must be at least 1 ms, got ",
              budget.count(), " ms");
  Deadline deadline;
  deadline.start_ = start;
  deadline.at_ = start + budget;
  deadline.budget_ = budget;
  return deadline;
}

Deadline::Clock::duration Deadline::remaining() const {
  if (!is_set()) return Clock::duration::max();
  const Clock::time_point now = Clock::now();
  return now >= at_ ? Clock::duration::zero() : at_ - now;
}

void Deadline::check(const char* stage) const {
  if (!expired()) return;
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
  KVRAG_THROW(kDeadlineExceeded, "the request's deadline of ", budget_.count(),
              " ms passed during ", stage, " (after ", elapsed, " ms)");
}

std::function<void()> Deadline::checker(const char* stage) const {
  if (!is_set()) return {};
  return [deadline = *this, stage] { deadline.check(stage); };
}

}  // namespace kvrag

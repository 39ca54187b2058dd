// The time by which a request must be answered. The pipeline checks it
// between stages (retrieval, memory building, decoding), before every
// encoder layer and before every decoder step, and stops with
// Error(kDeadlineExceeded) when it has passed: an answer is read-only work,
// so stopping leaves nothing half-done behind (the server answers 504).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace kvrag {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  // No deadline: never expires.
  Deadline() = default;
  // `budget` from `start` (a request's arrival, so time spent queued counts).
  // Error(kInvalidArgument) for a budget < 1 ms.
  static Deadline after(std::chrono::milliseconds budget, Clock::time_point start = Clock::now());

  bool is_set() const { return budget_.count() > 0; }
  bool expired() const { return is_set() && Clock::now() >= at_; }
  // Time left, zero once expired; Clock::duration::max() when not set.
  Clock::duration remaining() const;
  std::chrono::milliseconds budget() const { return budget_; }

  // Error(kDeadlineExceeded) "the request's deadline of N ms passed during
  // STAGE (after M ms)" once expired; nothing otherwise.
  void check(const char* stage) const;
  // check(stage) as a callable for the encoder's and decoder's hooks; empty
  // when no deadline is set, so unbounded requests pay nothing per layer.
  std::function<void()> checker(const char* stage) const;

 private:
  Clock::time_point start_{};
  Clock::time_point at_{};
  std::chrono::milliseconds budget_{0};  // 0: not set
};

}  // namespace kvrag

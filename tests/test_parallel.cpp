#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/parallel.h"

namespace kvrag {
namespace {

// Restores the process's count after each test.
class Parallel : public ::testing::Test {
 protected:
  ~Parallel() override { set_compute_threads(saved_); }

 private:
  int64_t saved_ = compute_threads();
};

TEST_F(Parallel, ACoreReservationLeavesOneThreadLessWhileItLives) {
  set_compute_threads(3);
  {
    const CoreReservation reserved;
    EXPECT_EQ(compute_threads(), 2);
    {
      const CoreReservation again;
      EXPECT_EQ(compute_threads(), 1);
      const CoreReservation never_below_one;
      EXPECT_EQ(compute_threads(), 1);
    }
    EXPECT_EQ(compute_threads(), 2);
  }
  EXPECT_EQ(compute_threads(), 3);
}

// It is the process's count that drops, on every thread; a thread with a
// count of its own (the server's request threads, SerialScope) keeps it.
TEST_F(Parallel, ACoreReservationOnOneThreadIsSeenOnOthersButNotByOwnCounts) {
  set_compute_threads(2);
  const CoreReservation reserved;
  int64_t seen = 0;
  std::thread([&] { seen = compute_threads(); }).join();
  EXPECT_EQ(seen, 1);
  std::thread([&] {
    set_thread_compute_threads(2);
    seen = compute_threads();
  }).join();
  EXPECT_EQ(seen, 2);
  std::atomic<int64_t> covered = 0;
  parallel_for(100, 1, [&](int64_t begin, int64_t end) { covered += end - begin; });
  EXPECT_EQ(covered, 100);
}

}  // namespace
}  // namespace kvrag

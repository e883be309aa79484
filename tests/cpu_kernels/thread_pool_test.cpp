// ThreadPool: every index covered exactly once, chunk boundaries on the grain, repeated runs.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "cpu_kernels/thread_pool.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

TEST(ThreadPool, ParallelForCoversEachIndexOnceOnGrain) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 64, 1000, 1001})
      for (int64_t grain : {1, 3, 16, 2000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex mu;
        std::vector<std::pair<int64_t, int64_t>> ranges;
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
          std::lock_guard lk(mu);
          ranges.emplace_back(b, e);
        });
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)].load(), 1) << "threads=" << threads << " n=" << n << " grain=" << grain << " i=" << i;
        EXPECT_LE(ranges.size(), size_t(threads));
        for (auto [b, e] : ranges) {
          EXPECT_EQ(b % grain, 0) << "range start off the grain";
          if (e != n) {
            EXPECT_EQ((e - b) % grain, 0) << "non-final range not a multiple of grain";
          }
        }
      }
  }
}

TEST(ThreadPool, RunCallsEveryThreadOnceRepeatedly) {
  ThreadPool pool(3);
  ASSERT_EQ(pool.size(), 3);
  std::vector<std::atomic<int>> calls(3);
  for (int rep = 0; rep < 500; ++rep) {
    pool.run([&](int ith, int nth) {
      ASSERT_EQ(nth, 3);
      calls[size_t(ith)]++;
    });
  }
  for (auto& c : calls) EXPECT_EQ(c.load(), 500);
}

TEST(ThreadPool, PinnedPoolRuns) {
  ThreadPool pool(2, {0});
  EXPECT_EQ(pool.cores().size(), 1u);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(ThreadPool, IdlePoolWakesAfterSleeping) {
  ThreadPool pool(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // workers fall asleep
  std::atomic<int> n{0};
  pool.run([&](int, int) { n++; });
  EXPECT_EQ(n.load(), 2);
}

}  // namespace
}  // namespace hexe::cpu

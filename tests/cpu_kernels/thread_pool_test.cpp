// ThreadPool, both backends (Spin, Tbb): every index covered exactly once, chunk boundaries on the
// grain, repeated runs, index 0 on the caller, pinned pools, waking after sleep.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <set>

#include "cpu_kernels/thread_pool.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

class PoolKinds : public ::testing::TestWithParam<PoolKind> {};

TEST_P(PoolKinds, ParallelForCoversEachIndexOnceOnGrain) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads, {}, GetParam());
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

// Balanced: one grain per call, every index once; a thread that runs its own range alone takes it
// in order; a stalled thread's grains are taken by the others.
TEST_P(PoolKinds, BalancedParallelForCoversEachIndexOnceAndStealsFromASlowThread) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads, {}, GetParam());
    for (int64_t n : {0, 1, 2, 7, 64, 1000, 1001})
      for (int64_t grain : {1, 3, 16, 2000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> bad_grain{0};
        pool.parallel_for_balanced(n, grain, [&](int64_t b, int64_t e) {
          if (b % grain != 0 || (e != n && e - b != grain) || e - b > grain) ++bad_grain;
          for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
        });
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)].load(), 1) << "threads=" << threads << " n=" << n << " grain=" << grain << " i=" << i;
        EXPECT_EQ(bad_grain.load(), 0) << "threads=" << threads << " n=" << n << " grain=" << grain;
      }
  }
  // Two threads: whichever takes grain 32 (the first of the second range) sleeps on it, so the
  // other must take the rest of that range; a static split would leave all 31 to the sleeper.
  ThreadPool pool(2, {}, GetParam());
  std::vector<std::thread::id> who(64);
  pool.parallel_for_balanced(64, 1, [&](int64_t b, int64_t) {
    who[size_t(b)] = std::this_thread::get_id();
    if (b == 32) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  });
  if (std::set<std::thread::id>(who.begin(), who.end()).size() == 2) {  // both indices ran at once
    int by_sleeper = 0;
    for (int64_t b = 33; b < 64; ++b) by_sleeper += who[size_t(b)] == who[32];
    EXPECT_LE(by_sleeper, 8) << "the sleeping thread's range was not taken over";
  }
}

TEST_P(PoolKinds, RunCallsEveryThreadOnceRepeatedly) {
  ThreadPool pool(3, {}, GetParam());
  ASSERT_EQ(pool.kind(), GetParam());
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

TEST_P(PoolKinds, IndexZeroRunsOnTheCaller) {
  ThreadPool pool(4, {}, GetParam());
  const auto caller = std::this_thread::get_id();
  for (int rep = 0; rep < 50; ++rep) {
    std::atomic<int> zero_on_caller{0}, others_on_caller{0};
    pool.run([&](int ith, int) {
      const bool on_caller = std::this_thread::get_id() == caller;
      if (ith == 0) zero_on_caller += on_caller;
      else others_on_caller += on_caller;
    });
    ASSERT_EQ(zero_on_caller.load(), 1);
    ASSERT_EQ(others_on_caller.load(), 0) << "a worker index ran on the caller";
  }
}

TEST_P(PoolKinds, PinnedPoolRuns) {
  ThreadPool pool(2, {0}, GetParam());
  EXPECT_EQ(pool.cores().size(), 1u);
  cpu_set_t before, after;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof before, &before), 0);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 4950);
  // Workers run on their core; the caller's own affinity is what it was (threads it starts
  // later must not inherit the pool's pin).
  std::atomic<int> off_core{0};
  for (int rep = 0; rep < 20; ++rep)
    pool.run([&](int ith, int) {
      if (ith != 0 && sched_getcpu() != 0) ++off_core;
    });
  EXPECT_EQ(off_core.load(), 0) << "a worker ran off the pool's only core";
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof after, &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after)) << "run() left the caller's affinity changed";
}

TEST_P(PoolKinds, IdlePoolWakesAfterSleeping) {
  ThreadPool pool(2, {}, GetParam());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // workers fall asleep
  std::atomic<int> n{0};
  pool.run([&](int, int) { n++; });
  EXPECT_EQ(n.load(), 2);
}

TEST(ThreadPool, KindNamesRoundTrip) {
  for (PoolKind k : {PoolKind::Spin, PoolKind::Tbb}) EXPECT_EQ(pool_kind_from_name(pool_kind_name(k)), k);
  EXPECT_FALSE(pool_kind_from_name("openmp").has_value());
}

INSTANTIATE_TEST_SUITE_P(ThreadPool, PoolKinds, ::testing::Values(PoolKind::Spin, PoolKind::Tbb),
                         [](const ::testing::TestParamInfo<PoolKind>& i) { return std::string(pool_kind_name(i.param)); });

}  // namespace
}  // namespace hexe::cpu

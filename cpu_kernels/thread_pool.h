// A persistent pool of worker threads, optionally pinned one per core; the caller is thread 0.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace hexe::cpu {

class ThreadPool {
 public:
  // n_threads workers in all (the calling thread counts as one). `cores`, when given, pins
  // worker i to cores[i % cores.size()] (the caller is pinned only while inside run()).
  explicit ThreadPool(int n_threads, std::vector<int> cores = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;
  const std::vector<int>& cores() const;
  // Runs fn(thread_index, n_threads) on every thread; returns when all have finished.
  // Not re-entrant: fn must not call run() on the same pool.
  void run(const std::function<void(int ith, int nth)>& fn);
  // Splits [0, n) into contiguous ranges, at most one per thread, each a multiple of `grain`
  // except the last.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);
  // How long idle workers spin before they sleep (default 50 us). Longer spins keep the workers
  // awake across short gaps between jobs (the hybrid engine's GPU segments, ~0.1 ms), at the
  // price of busy cores; a sleeping worker takes tens of microseconds to wake.
  void set_spin_us(int us);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hexe::cpu

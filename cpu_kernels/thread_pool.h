// A persistent pool of worker threads, optionally pinned one per core; the caller is thread 0.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace hexe::cpu {

// How workers wait for and receive jobs. `hexe bench moe-layer --pool` measures both.
enum class PoolKind {
  Spin,  // ours: workers spin on a generation counter, then sleep on a condition variable
  Tbb,   // a oneTBB task_arena with a slot per thread; jobs are enqueued arena tasks
};
const char* pool_kind_name(PoolKind kind);
std::optional<PoolKind> pool_kind_from_name(std::string_view name);  // "spin" | "tbb"

class ThreadPool {
 public:
  // n_threads workers in all (the calling thread counts as one). `cores`, when given, pins
  // worker i to cores[i % cores.size()]; the caller runs index 0 on cores[0] (pinned only while
  // inside run(), and not even then when it already runs there).
  explicit ThreadPool(int n_threads, std::vector<int> cores = {}, PoolKind kind = PoolKind::Spin);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;
  PoolKind kind() const;
  const std::vector<int>& cores() const;
  // Runs fn(thread_index, n_threads) once for every index, index 0 on the calling thread;
  // returns when all have finished. Not re-entrant: fn must not call run() on the same pool.
  // fn must not wait for another index (a Tbb pool with more threads than the machine's
  // worker limit runs some indices one after another).
  void run(const std::function<void(int ith, int nth)>& fn);
  // Splits [0, n) into contiguous ranges, at most one per thread, each a multiple of `grain`
  // except the last.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);
  // The same ranges, balanced at run time: each thread takes the grains of its own range in order
  // (one long stream through contiguous data, as with parallel_for) and, when done, takes the
  // grains still left in the other threads' ranges. fn gets one grain per call. For work whose
  // threads run at different speeds (P and E cores, a VM's vCPUs) the faster threads no longer
  // idle through the slower ones' tails.
  void parallel_for_balanced(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);
  // How long idle Spin workers spin before they sleep (default 50 us). Longer spins keep the
  // workers awake across short gaps between jobs (the hybrid engine's GPU segments, ~0.1 ms), at
  // the price of busy cores; a sleeping worker takes tens of microseconds to wake. Tbb pools
  // keep oneTBB's own policy.
  void set_spin_us(int us);

  struct Backend;  // how the workers are run (thread_pool_backend.h)

 private:
  std::vector<int> cores_;
  std::unique_ptr<Backend> backend_;
  PoolKind kind_;
};

}  // namespace hexe::cpu

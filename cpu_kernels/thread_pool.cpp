// The pool front (caller pinning, parallel_for) and the Spin backend: workers spin briefly on a
// generation counter, then sleep on a condition variable, so back-to-back run() calls cost
// microseconds and idle pools cost no CPU. The Tbb backend is in thread_pool_tbb.cpp.
#include "cpu_kernels/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "cpu_kernels/cpu_relax.h"
#include "cpu_kernels/thread_pool_backend.h"

namespace hexe::cpu {
namespace {

// How long a waiting thread spins before it sleeps (workers) or yields (the caller). Short,
// because `pause` costs ~140 cycles on recent Xeons and pools may be oversubscribed.
constexpr auto kSpinTime = std::chrono::microseconds(50);

// Spins until pred() or the spin time is over; returns pred().
template <class Pred>
bool spin_until(Pred pred, std::chrono::microseconds spin = kSpinTime) {
  const auto end = std::chrono::steady_clock::now() + spin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= end) return pred();
  }
}

class SpinBackend final : public ThreadPool::Backend {
 public:
  SpinBackend(int n_threads, std::vector<int> cores) : n_threads(n_threads), cores(std::move(cores)) {
    for (int i = 1; i < n_threads; ++i) workers.emplace_back([this, i] { worker_main(i); });
  }
  ~SpinBackend() override {
    stop.store(true, std::memory_order_release);
    wake();
    for (auto& t : workers) t.join();
  }
  int size() const override { return n_threads; }
  void set_spin_us(int us) override { spin_us.store(std::max(0, us), std::memory_order_relaxed); }

  void run(const std::function<void(int, int)>& fn) override {
    if (n_threads > 1) {
      job = &fn;
      pending.store(n_threads - 1, std::memory_order_release);
      wake();
    }
    fn(0, n_threads);
    if (n_threads > 1) {
      auto done = [&] { return pending.load(std::memory_order_acquire) == 0; };
      while (!spin_until(done)) std::this_thread::yield();
    }
  }

 private:
  int n_threads = 1;
  std::vector<int> cores;
  std::vector<std::thread> workers;
  const std::function<void(int, int)>* job = nullptr;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> pending{0};
  std::atomic<bool> stop{false};
  std::atomic<int> spin_us{int(kSpinTime.count())};
  std::mutex mu;
  std::condition_variable cv;

  void worker_main(int ith) {
    if (!cores.empty()) pin_this_thread(cores[size_t(ith) % cores.size()]);
    uint64_t seen = 0;
    for (;;) {
      uint64_t g = seen;
      const std::chrono::microseconds spin(spin_us.load(std::memory_order_relaxed));
      if (!spin_until([&] { return (g = generation.load(std::memory_order_acquire)) != seen; }, spin)) {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return generation.load(std::memory_order_acquire) != seen; });
        g = generation.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop.load(std::memory_order_acquire)) return;
      (*job)(ith, n_threads);
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void wake() {
    {
      std::lock_guard lk(mu);
      generation.fetch_add(1, std::memory_order_acq_rel);
    }
    cv.notify_all();
  }
};

}  // namespace

bool pin_this_thread(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

std::unique_ptr<ThreadPool::Backend> make_spin_backend(int n_threads, const std::vector<int>& cores) {
  return std::make_unique<SpinBackend>(n_threads, cores);
}

const char* pool_kind_name(PoolKind kind) { return kind == PoolKind::Tbb ? "tbb" : "spin"; }

std::optional<PoolKind> pool_kind_from_name(std::string_view name) {
  if (name == "spin") return PoolKind::Spin;
  if (name == "tbb") return PoolKind::Tbb;
  return std::nullopt;
}

ThreadPool::ThreadPool(int n_threads, std::vector<int> cores, PoolKind kind) : cores_(std::move(cores)), kind_(kind) {
  n_threads = std::max(1, n_threads);
  backend_ = kind == PoolKind::Tbb ? make_tbb_backend(n_threads, cores_) : make_spin_backend(n_threads, cores_);
}

ThreadPool::~ThreadPool() = default;

int ThreadPool::size() const { return backend_->size(); }
PoolKind ThreadPool::kind() const { return kind_; }
void ThreadPool::set_spin_us(int us) { backend_->set_spin_us(us); }
const std::vector<int>& ThreadPool::cores() const { return cores_; }

void ThreadPool::run(const std::function<void(int ith, int nth)>& fn) {
  // The caller runs index 0 on cores[0]: pinned there for the call (its own affinity restored
  // after, so threads it starts later do not inherit the pin), unless it already runs there.
  // Saving, pinning and restoring are three system calls, ~5 us (moe-layer's dispatch overhead:
  // 3.9 us unpinned, 8-10 us when every run() paid them), and a decode token makes about five
  // dispatches a layer; the scheduler leaves the caller where it ran last, so after a first run
  // it is found on cores[0] and the check (sched_getcpu, a vDSO read) is all a run() costs.
  cpu_set_t saved;
  const bool pin_caller = !cores_.empty() && sched_getcpu() != cores_[0] &&
                          pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0 &&
                          pin_this_thread(cores_[0]);
  backend_->run(fn);
  if (pin_caller) pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t begin, int64_t end)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t grains = (n + grain - 1) / grain;
  const int64_t per = (grains + size() - 1) / size() * grain;  // elements per thread
  if (per >= n) {
    fn(0, n);
    return;
  }
  run([&](int ith, int) {
    const int64_t begin = int64_t(ith) * per;
    const int64_t end = std::min(n, begin + per);
    if (begin < end) fn(begin, end);
  });
}

void ThreadPool::parallel_for_balanced(int64_t n, int64_t grain,
                                       const std::function<void(int64_t begin, int64_t end)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int nth = size();
  const int64_t grains = (n + grain - 1) / grain;
  if (nth == 1 || grains == 1) {
    for (int64_t g = 0; g < grains; ++g) fn(g * grain, std::min(n, (g + 1) * grain));
    return;
  }
  struct alignas(64) Share {  // one cache line each: the owner's cursor is not shared falsely
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };
  // The caller's, grown only: matmul calls this for every decode projection (no allocation per call).
  thread_local std::unique_ptr<Share[]> shares;
  thread_local int n_shares = 0;
  if (n_shares < nth) shares = std::make_unique<Share[]>(size_t(nth)), n_shares = nth;
  Share* share = shares.get();
  for (int t = 0; t < nth; ++t) {
    share[size_t(t)].next.store(grains * t / nth, std::memory_order_relaxed);
    share[size_t(t)].end = grains * (t + 1) / nth;
  }
  run([&](int ith, int) {
    for (int k = 0; k < nth; ++k) {  // own range first, then the next threads' leftovers
      Share& sh = share[size_t((ith + k) % nth)];
      for (int64_t g; (g = sh.next.fetch_add(1, std::memory_order_relaxed)) < sh.end;)
        fn(g * grain, std::min(n, (g + 1) * grain));
    }
  });
}

}  // namespace hexe::cpu

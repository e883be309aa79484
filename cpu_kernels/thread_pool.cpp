// Persistent worker pool: workers spin briefly on a generation counter, then sleep on a condition
// variable, so back-to-back run() calls cost microseconds and idle pools cost no CPU.
#include "cpu_kernels/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace hexe::cpu {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

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

bool pin_to(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

}  // namespace

struct ThreadPool::Impl {
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
    if (!cores.empty()) pin_to(cores[size_t(ith) % cores.size()]);
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

ThreadPool::ThreadPool(int n_threads, std::vector<int> cores) : impl_(std::make_unique<Impl>()) {
  impl_->n_threads = std::max(1, n_threads);
  impl_->cores = std::move(cores);
  for (int i = 1; i < impl_->n_threads; ++i)
    impl_->workers.emplace_back([this, i] { impl_->worker_main(i); });
}

ThreadPool::~ThreadPool() {
  impl_->stop.store(true, std::memory_order_release);
  impl_->wake();
  for (auto& t : impl_->workers) t.join();
}

int ThreadPool::size() const { return impl_->n_threads; }
void ThreadPool::set_spin_us(int us) { impl_->spin_us.store(std::max(0, us), std::memory_order_relaxed); }
const std::vector<int>& ThreadPool::cores() const { return impl_->cores; }

void ThreadPool::run(const std::function<void(int ith, int nth)>& fn) {
  Impl& p = *impl_;
  cpu_set_t saved;
  const bool pin_caller =
      !p.cores.empty() && pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0 &&
      pin_to(p.cores[0]);
  if (p.n_threads > 1) {
    p.job = &fn;
    p.pending.store(p.n_threads - 1, std::memory_order_release);
    p.wake();
  }
  fn(0, p.n_threads);
  if (p.n_threads > 1) {
    auto done = [&] { return p.pending.load(std::memory_order_acquire) == 0; };
    while (!spin_until(done)) std::this_thread::yield();
  }
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

}  // namespace hexe::cpu

// The Tbb backend of ThreadPool: a oneTBB task_arena with one slot per thread (slot 0 reserved for
// the caller). run() enqueues indices 1..n-1 as arena tasks, runs index 0 on the caller and waits
// on a counter, so the caller is thread 0 as with the Spin backend. An observer pins each worker
// to the core of its arena slot when it joins the arena.
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <atomic>
#include <thread>

#include "cpu_kernels/cpu_relax.h"
#include "cpu_kernels/thread_pool_backend.h"

namespace hexe::cpu {
namespace {

class SlotPinner final : public oneapi::tbb::task_scheduler_observer {
 public:
  SlotPinner(oneapi::tbb::task_arena& arena, std::vector<int> cores)
      : oneapi::tbb::task_scheduler_observer(arena), cores_(std::move(cores)) {
    if (!cores_.empty()) observe(true);
  }
  ~SlotPinner() override { observe(false); }
  void on_scheduler_entry(bool worker) override {
    const int slot = oneapi::tbb::this_task_arena::current_thread_index();
    if (worker && slot >= 0) pin_this_thread(cores_[size_t(slot) % cores_.size()]);
  }

 private:
  std::vector<int> cores_;
};

class TbbBackend final : public ThreadPool::Backend {
 public:
  TbbBackend(int n_threads, const std::vector<int>& cores)
      : n_(n_threads), arena_(n_threads, /*reserved_for_masters=*/1), pinner_(arena_, cores) {
    arena_.initialize();
  }
  int size() const override { return n_; }

  void run(const std::function<void(int, int)>& fn) override {
    std::atomic<int> pending{n_ - 1};
    for (int i = 1; i < n_; ++i)
      arena_.enqueue([&fn, &pending, i, n = n_] {
        fn(i, n);
        pending.fetch_sub(1, std::memory_order_release);
      });
    fn(0, n_);
    for (int spins = 0; pending.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < 4096) cpu_relax();
      else std::this_thread::yield();
    }
  }

 private:
  int n_;
  oneapi::tbb::task_arena arena_;
  SlotPinner pinner_;
};

}  // namespace

std::unique_ptr<ThreadPool::Backend> make_tbb_backend(int n_threads, const std::vector<int>& cores) {
  return std::make_unique<TbbBackend>(n_threads, cores);
}

}  // namespace hexe::cpu

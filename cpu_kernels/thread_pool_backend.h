// The two ways a ThreadPool runs its workers (internal to cpu_kernels).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "cpu_kernels/thread_pool.h"

namespace hexe::cpu {

struct ThreadPool::Backend {
  virtual ~Backend() = default;
  virtual int size() const = 0;
  // fn(i, size()) for i in 1..size()-1 on the workers while the caller runs fn(0, size()).
  virtual void run(const std::function<void(int, int)>& fn) = 0;
  virtual void set_spin_us(int) {}
};

// Worker i is pinned to cores[i % cores.size()] when cores is not empty.
std::unique_ptr<ThreadPool::Backend> make_spin_backend(int n_threads, const std::vector<int>& cores);
std::unique_ptr<ThreadPool::Backend> make_tbb_backend(int n_threads, const std::vector<int>& cores);

bool pin_this_thread(int core);

}  // namespace hexe::cpu

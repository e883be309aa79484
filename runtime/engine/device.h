// The scheduler's view of a compute device: an in-order stream of async ops, events, a pool.
// CPU-only mode is the same scheduler with every op on CPU devices; CUDA devices implement it in
// runtime/engine/cuda/ (compiled only when CUDA is built in).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpu_kernels/thread_pool.h"

namespace hexe {

// Completes when the ops enqueued before it on its stream have run. Each device kind records its
// own State (CPU: a flag its stream thread sets; CUDA: a cudaEvent_t), so a device can recognise
// its own kind of event and wait on it natively (cudaStreamWaitEvent) instead of from the host.
class Event {
 public:
  struct State {
    virtual ~State() = default;
    virtual bool ready() = 0;
    virtual void wait() = 0;
  };
  Event() = default;  // an event with no state is already complete
  explicit Event(std::shared_ptr<State> state) : state_(std::move(state)) {}
  bool ready() const { return !state_ || state_->ready(); }
  void wait() const {
    if (state_) state_->wait();
  }
  State* state() const { return state_.get(); }

 private:
  std::shared_ptr<State> state_;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const std::string& name() const = 0;
  // The thread pool kernels run on (CPU devices).
  virtual cpu::ThreadPool* cpu_pool() = 0;
  // Enqueues an op on the device's stream; ops on one stream run in order.
  virtual void enqueue(std::function<void()> op) = 0;
  virtual Event record() = 0;
  virtual void synchronize() = 0;
};

// A CPU device: a pool of threads pinned to its own cores plus a stream thread that runs
// enqueued ops in order (the stream thread is the pool's thread 0 while an op runs).
class CpuDevice final : public Device {
 public:
  // n_threads workers pinned to `cores` (empty: unpinned).
  CpuDevice(std::string name, int n_threads, std::vector<int> cores = {});
  ~CpuDevice() override;

  const std::string& name() const override { return name_; }
  cpu::ThreadPool* cpu_pool() override { return &pool_; }
  void enqueue(std::function<void()> op) override;
  Event record() override;
  void synchronize() override;

 private:
  void stream_loop();

  std::string name_;
  cpu::ThreadPool pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread stream_;
};

}  // namespace hexe

// CpuDevice: an in-order op stream over a pinned thread pool, and the events it records.
#include <exception>

#include "memory/error.h"
#include "runtime/engine/device.h"

namespace hexe {

struct Event::State {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

bool Event::ready() const {
  if (!state_) return true;
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->done;
}

void Event::wait() const {
  if (!state_) return;
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->cv.wait(lock, [&] { return state_->done; });
}

CpuDevice::CpuDevice(std::string name, int n_threads, std::vector<int> cores)
    : name_(std::move(name)), pool_(n_threads, std::move(cores)) {
  stream_ = std::thread([this] { stream_loop(); });
}

CpuDevice::~CpuDevice() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  stream_.join();
}

void CpuDevice::enqueue(std::function<void()> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(op));
  }
  cv_.notify_all();
}

Event CpuDevice::record() {
  Event e;
  e.state_ = std::make_shared<Event::State>();
  auto st = e.state_;
  enqueue([st] {
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->done = true;
    }
    st->cv.notify_all();
  });
  return e;
}

void CpuDevice::synchronize() {
  record().wait();
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::swap(err, error_);
  }
  if (err) std::rethrow_exception(err);
}

void CpuDevice::stream_loop() {
  for (;;) {
    std::function<void()> op;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      op();
    } catch (...) {
      // Kernels do not throw; an op that does is reported at the next synchronize().
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

}  // namespace hexe

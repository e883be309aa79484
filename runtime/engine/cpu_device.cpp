// CpuDevice: an in-order op stream over a pinned thread pool, and the events it records.
#include <exception>

#include "memory/error.h"
#include "runtime/engine/device.h"

namespace hexe {

namespace {
// Set by the stream thread when it reaches the op that record() enqueued.
struct CpuEventState final : Event::State {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;

  bool ready() override {
    std::lock_guard<std::mutex> lock(mu);
    return done;
  }
  void wait() override {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
};
}  // namespace

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
  auto st = std::make_shared<CpuEventState>();
  enqueue([st] {
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->done = true;
    }
    st->cv.notify_all();
  });
  return Event(st);
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

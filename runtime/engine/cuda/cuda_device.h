// A CUDA device behind the scheduler's Device interface: one stream, cudaEvent-backed Events,
// host functions on the stream, a caching allocator, pinned staging for copies, CUDA graphs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpu_kernels/handoff.h"
#include "runtime/engine/cuda/caching_allocator.h"
#include "runtime/engine/device.h"

namespace hexe {

class CudaDevice;

// Page-locked host memory (cudaMallocHost): copies from/to it are DMA and truly asynchronous.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);  // throws hexe::Error when the pinned allocation fails
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer();
  template <class T = void>
  T* data() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// A captured sequence of work on a CudaDevice's stream, instantiated once and launched many times
// (one launch instead of one per kernel). Holds the host functions enqueued during the capture,
// since every replay calls them again. Must not outlive the device that captured it.
class CudaGraph {
 public:
  CudaGraph() = default;
  CudaGraph(CudaGraph&& o) noexcept;
  CudaGraph& operator=(CudaGraph&& o) noexcept;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  ~CudaGraph();
  bool empty() const { return exec_ == nullptr; }
  size_t node_count() const;
  struct HostOp;  // a host function and the device whose errors it reports (cuda_device.cpp)

 private:
  friend class CudaDevice;
  void reset() noexcept;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  std::vector<std::unique_ptr<HostOp>> host_ops_;
};

// Recorded with cudaEventRecord on the device's stream. wait() blocks the host
// (cudaEventSynchronize); CudaDevice::wait() recognises it and waits on the GPU instead.
struct CudaEventState final : Event::State {
  explicit CudaEventState(int device);
  ~CudaEventState() override;
  bool ready() override;
  void wait() override;
  int device;
  cudaEvent_t event = nullptr;
};

// One stream per CudaDevice; use it from one host thread at a time (the scheduler's thread for
// this device). Kernels from gpu_kernels take stream(). Errors become hexe::Error.
class CudaDevice final : public Device {
 public:
  // Throws hexe::Error when `index` is not a usable CUDA device (the message says why).
  explicit CudaDevice(int index);
  ~CudaDevice() override;  // synchronises, then frees the allocator's blocks and the stream

  const std::string& name() const override { return name_; }  // "cuda:0"
  // CUDA devices run their ops on the stream, not on host threads: nullptr.
  cpu::ThreadPool* cpu_pool() override { return nullptr; }
  // Runs `op` on a CUDA runtime thread when the stream reaches it (cudaLaunchHostFunc). `op` must
  // not call the CUDA API (a CUDA rule); an exception it throws comes back at synchronize().
  void enqueue(std::function<void()> op) override;
  Event record() override;
  // Waits for the stream; rethrows the first error of a host function or the stream.
  void synchronize() override;

  int index() const { return index_; }
  cudaStream_t stream() const { return stream_; }
  // Later work on this stream waits for `e`: on the GPU for a CUDA event (cudaStreamWaitEvent),
  // through a blocking host function for any other kind (a CPU device's event).
  void wait(const Event& e);

  CudaCachingAllocator& allocator() { return allocator_; }

  // Host -> device. From pinned memory: one async DMA, `src` must stay valid until it runs. From
  // pageable memory: staged through two pinned buffers, double-buffered; `src` may be reused on return.
  void copy_to_device(void* dst, const void* src, size_t bytes);
  // Device -> host. Into pinned memory: async (valid after an event/synchronize). Into pageable
  // memory: staged, and complete on return.
  void copy_to_host(void* dst, const void* src, size_t bytes);
  static bool is_pinned(const void* p);

  // Captures what `body` enqueues on stream() (kernels, copies, host functions) into a graph.
  // Buffers must be allocated before the capture. Nothing runs during the capture.
  CudaGraph capture(const std::function<void()>& body);
  void launch(const CudaGraph& graph);

  // GPU -> CPU -> GPU hand-off latencies on this device's stream (see gpu_kernels/handoff.h).
  gpu::HandoffTimes measure_handoff(int iters);

 private:
  struct HostOpRunner;
  void activate() const;
  void store_error(std::exception_ptr e);
  void stage_buffers();

  int index_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  CudaCachingAllocator allocator_;
  std::mutex error_mu_;
  std::exception_ptr error_;
  CudaGraph* capturing_ = nullptr;           // the graph whose capture is under way
  static constexpr size_t kStageBytes = size_t(8) << 20;
  PinnedBuffer stage_[2];
  std::shared_ptr<CudaEventState> stage_done_[2];
};

}  // namespace hexe

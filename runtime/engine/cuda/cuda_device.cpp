// CudaDevice: stream, events, host functions, staged copies and graph capture over the CUDA runtime.
#include "runtime/engine/cuda/cuda_device.h"

#include <algorithm>
#include <cstring>

#include "gpu_kernels/device.h"
#include "runtime/engine/cuda/cuda_check.h"

namespace hexe {

struct CudaGraph::HostOp {
  std::function<void()> fn;
  CudaDevice* device;
  bool once;  // enqueued eagerly: freed after its single run; captured: owned by the graph
};

// --- PinnedBuffer ---

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t e = cudaMallocHost(&ptr_, bytes);
  if (e != cudaSuccess) {
    ptr_ = nullptr;
    cuda_check(e, ("cudaMallocHost of " + std::to_string(bytes) + " bytes").c_str());
  }
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = o.ptr_, bytes_ = o.bytes_;
    o.ptr_ = nullptr, o.bytes_ = 0;
  }
  return *this;
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_) cudaFreeHost(ptr_);
}

// --- CudaGraph ---

CudaGraph::CudaGraph(CudaGraph&& o) noexcept
    : graph_(o.graph_), exec_(o.exec_), host_ops_(std::move(o.host_ops_)) {
  o.graph_ = nullptr, o.exec_ = nullptr;
}

CudaGraph& CudaGraph::operator=(CudaGraph&& o) noexcept {
  if (this != &o) {
    reset();
    graph_ = o.graph_, exec_ = o.exec_, host_ops_ = std::move(o.host_ops_);
    o.graph_ = nullptr, o.exec_ = nullptr;
  }
  return *this;
}

CudaGraph::~CudaGraph() { reset(); }

void CudaGraph::reset() noexcept {
  if (exec_) cudaGraphExecDestroy(exec_);
  if (graph_) cudaGraphDestroy(graph_);
  exec_ = nullptr, graph_ = nullptr;
  host_ops_.clear();
}

size_t CudaGraph::node_count() const {
  size_t n = 0;
  if (graph_) cuda_check(cudaGraphGetNodes(graph_, nullptr, &n), "cudaGraphGetNodes");
  return n;
}

// --- CudaEventState ---

CudaEventState::CudaEventState(int dev) : device(dev) {
  // No timing: a timing event costs more to record and the scheduler only orders work with it.
  cuda_check(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
}

CudaEventState::~CudaEventState() {
  if (event) cudaEventDestroy(event);
}

bool CudaEventState::ready() {
  const cudaError_t e = cudaEventQuery(event);
  if (e == cudaErrorNotReady) return false;
  cuda_check(e, "cudaEventQuery");
  return true;
}

void CudaEventState::wait() { cuda_check(cudaEventSynchronize(event), "cudaEventSynchronize"); }

// --- CudaDevice ---

struct CudaDevice::HostOpRunner {
  static void CUDART_CB run(void* user) {
    auto* op = static_cast<CudaGraph::HostOp*>(user);
    try {
      op->fn();
    } catch (...) {
      op->device->store_error(std::current_exception());
    }
    if (op->once) delete op;
  }
};

CudaDevice::CudaDevice(int index) : index_(index), name_("cuda:" + std::to_string(index)), allocator_(index) {
  const gpu::DevicePresence p = gpu::probe_devices();
  if (index < 0 || index >= p.count)
    throw Error("CUDA device " + std::to_string(index) + " is not available: " +
                (p.count == 0 ? p.reason : std::to_string(p.count) + " device(s) present"));
  activate();
  cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
}

CudaDevice::~CudaDevice() {
  cudaSetDevice(index_);
  cudaStreamSynchronize(stream_);  // host functions still queued refer to this device
  cudaStreamDestroy(stream_);
  cudaGetLastError();
}

void CudaDevice::activate() const { cuda_check(cudaSetDevice(index_), "cudaSetDevice"); }

void CudaDevice::store_error(std::exception_ptr e) {
  std::lock_guard<std::mutex> lock(error_mu_);
  if (!error_) error_ = std::move(e);
}

void CudaDevice::enqueue(std::function<void()> op) {
  auto h = std::make_unique<CudaGraph::HostOp>(CudaGraph::HostOp{std::move(op), this, capturing_ == nullptr});
  cuda_check(cudaLaunchHostFunc(stream_, HostOpRunner::run, h.get()), "cudaLaunchHostFunc");
  if (capturing_)
    capturing_->host_ops_.push_back(std::move(h));
  else
    h.release();  // HostOpRunner::run deletes it
}

Event CudaDevice::record() {
  auto st = std::make_shared<CudaEventState>(index_);
  cuda_check(cudaEventRecord(st->event, stream_), "cudaEventRecord");
  return Event(std::move(st));
}

void CudaDevice::synchronize() {
  cuda_check(cudaStreamSynchronize(stream_), ("cudaStreamSynchronize on " + name_).c_str());
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    std::swap(err, error_);
  }
  if (err) std::rethrow_exception(err);
}

void CudaDevice::wait(const Event& e) {
  if (!e.state()) return;
  if (auto* c = dynamic_cast<CudaEventState*>(e.state())) {
    cuda_check(cudaStreamWaitEvent(stream_, c->event, 0), "cudaStreamWaitEvent");
    return;
  }
  // Another device's event: block this stream's host-function thread until it completes.
  enqueue([e] { e.wait(); });
}

bool CudaDevice::is_pinned(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

void CudaDevice::stage_buffers() {
  for (int k = 0; k < 2; ++k) {
    if (!stage_[k].data()) stage_[k] = PinnedBuffer(kStageBytes);
    if (!stage_done_[k]) stage_done_[k] = std::make_shared<CudaEventState>(index_);
  }
}

void CudaDevice::copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  activate();
  if (is_pinned(src)) {
    cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync H2D");
    return;
  }
  if (capturing_) throw Error(name_ + ": a copy from pageable memory cannot be captured in a CUDA graph; use pinned memory");
  stage_buffers();
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  int k = 0;
  for (size_t off = 0; off < bytes; off += kStageBytes, k ^= 1) {
    const size_t n = std::min(kStageBytes, bytes - off);
    stage_done_[k]->wait();  // the DMA out of this buffer two chunks ago has finished
    std::memcpy(stage_[k].data(), s + off, n);
    cuda_check(cudaMemcpyAsync(d + off, stage_[k].data(), n, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync H2D");
    cuda_check(cudaEventRecord(stage_done_[k]->event, stream_), "cudaEventRecord");
  }
}

void CudaDevice::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  activate();
  if (is_pinned(dst)) {
    cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync D2H");
    return;
  }
  if (capturing_) throw Error(name_ + ": a copy to pageable memory cannot be captured in a CUDA graph; use pinned memory");
  stage_buffers();
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  const size_t chunks = (bytes + kStageBytes - 1) / kStageBytes;
  auto issue = [&](size_t c) {
    const size_t off = c * kStageBytes, n = std::min(kStageBytes, bytes - off);
    cuda_check(cudaMemcpyAsync(stage_[c % 2].data(), s + off, n, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync D2H");
    cuda_check(cudaEventRecord(stage_done_[c % 2]->event, stream_), "cudaEventRecord");
  };
  issue(0);
  for (size_t c = 0; c < chunks; ++c) {
    if (c + 1 < chunks) issue(c + 1);  // the next chunk's DMA overlaps this chunk's memcpy
    stage_done_[c % 2]->wait();
    const size_t off = c * kStageBytes;
    std::memcpy(d + off, stage_[c % 2].data(), std::min(kStageBytes, bytes - off));
  }
}

CudaGraph CudaDevice::capture(const std::function<void()>& body) {
  if (capturing_) throw Error(name_ + ": CUDA graph captures do not nest");
  activate();
  CudaGraph g;
  // Thread-local mode: a synchronising call from this thread during the capture is an error
  // rather than a silent break of the graph.
  cuda_check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  capturing_ = &g;
  try {
    body();
  } catch (...) {
    capturing_ = nullptr;
    cudaGraph_t dead = nullptr;
    cudaStreamEndCapture(stream_, &dead);
    if (dead) cudaGraphDestroy(dead);
    cudaGetLastError();
    throw;
  }
  capturing_ = nullptr;
  cuda_check(cudaStreamEndCapture(stream_, &g.graph_),
             "cudaStreamEndCapture (a synchronising call during the capture invalidates it)");
  cuda_check(cudaGraphInstantiate(&g.exec_, g.graph_, 0), "cudaGraphInstantiate");
  return g;
}

void CudaDevice::launch(const CudaGraph& graph) {
  if (graph.empty()) throw Error(name_ + ": launch of an empty CUDA graph");
  activate();
  cuda_check(cudaGraphLaunch(graph.exec_, stream_), "cudaGraphLaunch");
}

gpu::HandoffTimes CudaDevice::measure_handoff(int iters) {
  activate();
  gpu::HandoffTimes t;
  gpu_check(gpu::measure_handoff(stream_, iters, &t));
  return t;
}

}  // namespace hexe

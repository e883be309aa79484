// Flagged decode passes of the CUDA executor (see cuda_offload.h). With every MoE layer's routed
// experts on the CPU, a graphed decode pass hands over by pinned flags (gpu_kernels/host_flags.h)
// instead of an event wait, two copies and a graph launch per layer:
//   GPU: ... attention(l), norm + router, publish(l) ─┐          ┌─ await(l): x += y (+ shared),
//                                                    │          │  norm for l+1, attention(l+1) ...
//   CPU:                           poll, route, routed experts, answer
// The segment that starts with await(l) is queued before the CPU half of layer l runs, so its
// launch latency is spent while the CPU computes, and the GPU resumes a PCIe round trip after the
// answer.
// Measured on an H100 with 16 CPU threads (Qwen3-30B-A3B shape, 16 layers, tg64, fused decode
// chain, alternating runs): the host waited 0.645-0.687 ms per token for the GPU with flags and
// 0.720-0.752 with events (an event hand-off already reads and writes mapped memory instead of
// copying; what flags save is the event wait and the graph launch on the critical path). So flags
// are the default (OffloadConfig::flag_handoffs; HEXE_HANDOFF=event|flags overrides).
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cpu_kernels/cpu_relax.h"
#include "memory/error.h"
#include "runtime/engine/blocks.h"
#include "runtime/engine/cuda/cuda_check.h"
#include "runtime/engine/cuda/cuda_offload.h"

namespace hexe::gpu_offload {

namespace {

// Host view of the counters in flags_pin_, each on its own cache line.
constexpr size_t kToHost = 0, kToDevice = 8, kFailed = 16;  // in unsigned long long words
constexpr double kAnswerTimeoutS = 60;

template <class T>
T* device_pointer(void* host) {
  void* d = nullptr;
  cuda_check(cudaHostGetDevicePointer(&d, host, 0), "cudaHostGetDevicePointer");
  return static_cast<T*>(d);
}

}  // namespace

void CudaOffload::setup_flags() {
  const char* env = std::getenv("HEXE_HANDOFF");
  const std::string mode = env ? env : "";
  flag_handoff_ = mode == "flags" || (cfg_.flag_handoffs && mode != "event");
  flags_pin_ = PinnedBuffer(24 * sizeof(unsigned long long));
  std::memset(flags_pin_.data(), 0, flags_pin_.bytes());
  auto* words = flags_pin_.data<unsigned long long>();
  flags_.to_host = device_pointer<unsigned long long>(words + kToHost);
  flags_.to_device = device_pointer<unsigned long long>(words + kToDevice);
  flags_.failed = device_pointer<int>(words + kFailed);
  auto* counters = alloc<unsigned long long>(3 * sizeof(unsigned long long), "hand-off counters");
  cuda_check(cudaMemset(counters, 0, 3 * sizeof(unsigned long long)), "cudaMemset");
  flags_.published = counters;
  if (cfg_.timeline) {
    flags_.started_ns = counters + 1;
    flags_.busy_ns = counters + 2;
  }
  h_map_ = device_pointer<float>(h_pin_.data());
  logits_map_ = device_pointer<float>(logits_pin_.data());
  y_map_ = device_pointer<float>(y_pin_.data());
}

bool CudaOffload::flagged_pass(int64_t T) const {
  if (!flag_handoff_ || !graph_mode_ || T * s_.n_embd > gpu::kAwaitMaxElements) return false;
  bool any = false;
  for (int l = 0; l < cfg_.gpu_layers; ++l) {
    const DevLayer& d = layers_[l];
    if (d.recipe.attention == LayerRecipe::Attention::None || !d.recipe.moe) continue;
    if (experts_here(l, T) || !d.hot_index.empty()) return false;
    any = true;
  }
  return any;
}

void CudaOffload::forward_flagged(int64_t T, cpu::ThreadPool& pool, RoutingCounts* routing) {
  const int64_t E = s_.n_embd;
  std::vector<std::function<void()>> body;
  body.push_back([this, T, E] {
    upload_batch(T);
    h2d(x_, x_pin_.data(), size_t(T * E) * sizeof(float));
    if (flags_.busy_ns) gpu_check(gpu::stamp_start(flags_, st_));
  });
  // Segments of the main chain are untimed (they start by waiting); shared experts are timed.
  auto flush = [&](bool timed) {
    run_segment(T, [&] {
      for (auto& f : body) f();
    }, true, timed);
    body.clear();
  };
  int pending = -1;  // the layer whose hand-off the CPU answers once the next segment is queued
  auto answer = [&] {
    if (pending < 0) return;
    const int l = pending;
    pending = -1;
    answer_handoff(l, T, pool, routing);
  };
  try {
    bool normed = false;
    for (int l = 0; l < cfg_.gpu_layers; ++l) {
      const DevLayer& d = layers_[l];
      if (d.recipe.attention == LayerRecipe::Attention::None) continue;
      body.push_back(attention_step(l, T, normed));
      normed = false;
      if (!d.recipe.moe) {
        body.push_back([this, l, T] { dense_ffn(l, T); });
        continue;
      }
      body.push_back([this, l, T] { moe_head(l, T, true); });
      flush(false);
      if (d.shexp_gate) {
        body.push_back([this, l, T] { shared_experts(l, T); });
        flush(true);
      }
      answer();  // the previous hand-off: the segment just queued waits for it
      pending = l;
      const int next = next_attention(l);
      body.push_back([this, l, T, next] { await_tail(l, T, next); });
      normed = next >= 0;
    }
    body.push_back([this, T, E] {
      if (flags_.busy_ns) gpu_check(gpu::stamp_end(flags_, st_));
      if (!cfg_.head_on_gpu) d2h(x_pin_.data(), x_, size_t(T * E) * sizeof(float));
    });
    flush(false);
    answer();
    dev_.synchronize();
  } catch (...) {
    abort_handoffs();
    throw;
  }
  if (flags_pin_.data<volatile unsigned long long>()[kFailed] != 0) {  // (an int the GPU sets)
    abort_handoffs();
    throw Error(dev_.name() + ": a GPU layer waited " + std::to_string(int(kAnswerTimeoutS)) +
                " s for the CPU's routed experts and gave up");
  }
  if (flags_.busy_ns) {
    unsigned long long busy = 0;
    cuda_check(cudaMemcpy(&busy, flags_.busy_ns, sizeof(busy), cudaMemcpyDeviceToHost), "cudaMemcpy busy_ns");
    stats_.gpu_busy_s += double(busy - busy_seen_ns_) * 1e-9;
    busy_seen_ns_ = busy;
  }
}

gpu::AwaitAddParams CudaOffload::host_add_params(int l, int64_t T, int next) const {
  gpu::AwaitAddParams p;
  p.x = x_;
  p.host = y_map_;
  p.extra = layers_[l].shexp_gate ? shared_ : nullptr;
  p.rows = T;
  p.n = s_.n_embd;
  if (next >= 0) {
    p.norm_weight = layers_[next].attn_norm;
    p.norm_out = h_;
    p.eps = s_.rms_eps;
  }
  return p;
}

void CudaOffload::await_tail(int l, int64_t T, int next) {
  gpu::AwaitAddParams p = host_add_params(l, T, next);
  p.flags = flags_;
  p.timeout_ns = uint64_t(kAnswerTimeoutS * 1e9);
  gpu_check(gpu::await_host_add(p, st_));
}

void CudaOffload::answer_handoff(int l, int64_t T, cpu::ThreadPool& pool, RoutingCounts* routing) {
  auto* words = flags_pin_.data<volatile unsigned long long>();
  const uint64_t n = ++handoffs_;
  auto tw = Clock::now();
  for (uint64_t spin = 1; words[kToHost] < n; ++spin) {
    cpu::cpu_relax();
    if (spin % 65536 != 0) continue;
    // A failed kernel never publishes: its error, not the timeout, is what to report.
    const cudaError_t e = cudaStreamQuery(st_);
    if (e != cudaSuccess && e != cudaErrorNotReady) cuda_check(e, "GPU work before a hand-off");
    if (since(tw) > kAnswerTimeoutS)
      throw Error(dev_.name() + ": layer " + std::to_string(l) + "'s hand-off did not come within " +
                  std::to_string(int(kAnswerTimeoutS)) + " s");
  }
  std::atomic_thread_fence(std::memory_order_acquire);  // h and the logits were written before the count
  stats_.wait_gpu_s += since(tw);
  tw = Clock::now();
  route_rows(s_, model_.layers[l], logits_pin_.data<float>(), T, ids_.data(), weights_.data(), routing, l, &pool);
  cpu::MoeParams mp = routed_expert_params(model_, l, h_pin_.data<float>(), T, ids_.data(), weights_.data(),
                                           y_pin_.data<float>(), homes_);
  cpu::moe_experts(mp, pool);
  // Every store of the sum (streaming ones included) is visible before the answer.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  words[kToDevice] = n;
  stats_.cpu_experts_s += since(tw);
  ++stats_.flag_handoffs;
  stats_.d2h_bytes += uint64_t(T) * uint64_t(s_.n_embd + s_.n_expert) * sizeof(float);
  stats_.h2d_bytes += uint64_t(T) * uint64_t(s_.n_embd) * sizeof(float);
}

void CudaOffload::abort_handoffs() noexcept {
  auto* words = flags_pin_.data<volatile unsigned long long>();
  std::atomic_thread_fence(std::memory_order_seq_cst);
  words[kToDevice] = ~0ull;  // every await still queued goes on (on garbage; the pass has failed)
  cudaStreamSynchronize(st_);
  cudaGetLastError();
  cudaMemset(flags_.published, 0, 3 * sizeof(unsigned long long));
  cudaDeviceSynchronize();
  words[kToHost] = 0;
  words[kToDevice] = 0;
  words[kFailed] = 0;
  handoffs_ = 0;
  busy_seen_ns_ = 0;
}

}  // namespace hexe::gpu_offload

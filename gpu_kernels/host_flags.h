// The pinned-flag hand-off of a hybrid decode step: the GPU hands the hidden state and router
// logits to a host thread and takes the routed experts' sum back through mapped pinned memory,
// each side polling a counter the other writes. Unlike an event wait plus a graph launch per
// layer, both directions cost a PCIe round trip (~2 us), and the next layer's work can be queued
// (and wait on the GPU) while the CPU still computes.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "gpu_kernels/status.h"

namespace hexe::gpu {

// The counters of one stream's hand-offs. to_host, to_device and failed are device pointers of
// mapped pinned memory (cudaHostAlloc); published, started_ns and busy_ns are device memory.
// Hand-off n (1, 2, ...): the GPU writes its data, then *to_host = n; the host computes, writes
// its answer, then *to_device = n; the GPU goes on.
struct HostFlags {
  unsigned long long* to_host = nullptr;
  unsigned long long* to_device = nullptr;
  int* failed = nullptr;                 // set by an await that saw no answer within its timeout
  unsigned long long* published = nullptr;  // hand-offs published so far (the awaited number)
  // GPU busy time between hand-offs (a timeline): an await (or stamp_start) notes when the GPU
  // resumed, a publish (or stamp_end) adds the time since. Null: not timed.
  unsigned long long* started_ns = nullptr;
  unsigned long long* busy_ns = nullptr;
};

// Copies up to 3 device arrays to mapped host memory, then publishes hand-off *published + 1.
struct PublishParams {
  HostFlags flags;
  int parts = 0;
  const float* src[3] = {nullptr, nullptr, nullptr};
  float* dst[3] = {nullptr, nullptr, nullptr};  // device pointers of mapped host memory
  int64_t n[3] = {0, 0, 0};
};
Status publish_to_host(const PublishParams& p, cudaStream_t stream);

// Waits for the host's answer to the last published hand-off (*to_device >= *published), then per
// row r < rows of n floats: x[r] += host[r] (+ extra[r]); with norm_weight, also
// norm_out[r] = x[r] / rms(x[r]) * norm_weight (as rms_norm computes it). One block: decode rows.
// After timeout_ns without an answer it sets *failed and goes on (the host reports the error).
struct AwaitAddParams {
  HostFlags flags;
  float* x = nullptr;
  const float* host = nullptr;   // device pointer of mapped host memory, rows x n
  const float* extra = nullptr;  // device memory or null
  int64_t rows = 0, n = 0;
  const float* norm_weight = nullptr;
  float* norm_out = nullptr;
  float eps = 1e-6f;
  uint64_t timeout_ns = 60'000'000'000ull;
};
inline constexpr int64_t kAwaitMaxElements = int64_t(1) << 20;  // rows x n of one await (one block)
Status await_host_add(const AwaitAddParams& p, cudaStream_t stream);

// await_host_add without the wait (p.flags is not read): the add of an event hand-off, whose host
// side wrote `host` before it queued this launch (or the CUDA graph holding it). One launch
// instead of a copy to the device, one or two adds and the next layer's RMSNorm.
Status add_host_rows(const AwaitAddParams& p, cudaStream_t stream);

// Timeline marks around GPU work that no await or publish brackets (a pass's first and last part).
Status stamp_start(const HostFlags& f, cudaStream_t stream);
Status stamp_end(const HostFlags& f, cudaStream_t stream);

}  // namespace hexe::gpu

// Hand-off latency probes: host function between kernels, pinned-flag ping-pong, sync + relaunch.
#include "gpu_kernels/handoff.h"

#include <chrono>
#include <cstdint>

#include "gpu_kernels/host_flags.h"

namespace hexe::gpu {

namespace {

Status api_error(const char* op, cudaError_t e) {
  cudaGetLastError();
  return Status::cuda(op, e);
}
#define HEXE_HANDOFF_TRY(expr)                                         \
  do {                                                                 \
    const cudaError_t hexe_e_ = (expr);                                \
    if (hexe_e_ != cudaSuccess) return api_error("measure_handoff", hexe_e_); \
  } while (0)

constexpr uint64_t kTimeoutNs = 2'000'000'000;

__device__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void touch(int* p) { *p += 1; }

// Waits for the host's go[0] == i, answers done[0] = i, for i = 1..iters.
__global__ void ping_pong(volatile int* go, volatile int* done, volatile int* timed_out, int iters) {
  for (int i = 1; i <= iters; ++i) {
    const uint64_t t0 = global_ns();
    while (*go < i) {
      if (global_ns() - t0 > kTimeoutNs) {
        *timed_out = 1;
        __threadfence_system();
        return;
      }
    }
    *done = i;
    __threadfence_system();
  }
}

void CUDART_CB count_call(void* user) { ++*static_cast<int*>(user); }

using Clock = std::chrono::steady_clock;
double us_since(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

struct Owned {
  void* dev = nullptr;
  void* host = nullptr;
  ~Owned() {
    if (dev) cudaFree(dev);
    if (host) cudaFreeHost(host);
  }
};

// Method 3 of measure_handoff: `iters` hand-offs through gpu::publish_to_host / await_host_add,
// each with 2048 floats each way, the next one queued before the host answers this one.
// `flags_host`: 192 bytes of mapped pinned memory for the counters.
Status measure_flag_rows(cudaStream_t stream, void* flags_host, int iters, double* us) {
  constexpr int64_t kFloats = 2048;
  Owned rows;
  HEXE_HANDOFF_TRY(cudaHostAlloc(&rows.host, kFloats * 4, cudaHostAllocMapped));
  HEXE_HANDOFF_TRY(cudaMalloc(&rows.dev, 2 * kFloats * 4 + 64));
  HEXE_HANDOFF_TRY(cudaMemsetAsync(rows.dev, 0, 2 * kFloats * 4 + 64, stream));
  auto* words = static_cast<volatile unsigned long long*>(flags_host);
  for (int i = 0; i < 24; ++i) words[i] = 0;
  void* dev_flags = nullptr;
  void* dev_rows = nullptr;
  HEXE_HANDOFF_TRY(cudaHostGetDevicePointer(&dev_flags, flags_host, 0));
  HEXE_HANDOFF_TRY(cudaHostGetDevicePointer(&dev_rows, rows.host, 0));
  float* x = static_cast<float*>(rows.dev);
  HostFlags f;
  f.to_host = static_cast<unsigned long long*>(dev_flags);
  f.to_device = f.to_host + 8;
  f.failed = reinterpret_cast<int*>(f.to_host + 16);
  f.published = reinterpret_cast<unsigned long long*>(x + 2 * kFloats);
  auto enqueue = [&]() -> Status {
    PublishParams p;
    p.flags = f;
    p.parts = 1;
    p.src[0] = x + kFloats, p.dst[0] = static_cast<float*>(dev_rows), p.n[0] = kFloats;
    if (Status s = publish_to_host(p, stream); !s.ok()) return s;
    AwaitAddParams a;
    a.flags = f;
    a.x = x;
    a.host = static_cast<const float*>(dev_rows);
    a.rows = 1;
    a.n = kFloats;
    a.timeout_ns = kTimeoutNs;
    return await_host_add(a, stream);
  };
  uint64_t n = 0;
  bool timeout = false;
  auto trips = [&](int count) -> Status {
    if (Status s = enqueue(); !s.ok()) return s;
    for (int i = 0; i < count; ++i) {
      if (i + 1 < count)
        if (Status s = enqueue(); !s.ok()) return s;
      ++n;
      const auto t0 = Clock::now();
      while (!timeout && words[0] < n) timeout = us_since(t0) > kTimeoutNs / 1000.0;
      __sync_synchronize();
      words[8] = timeout ? ~0ull : n;  // (after a timeout: releases every queued await)
    }
    HEXE_HANDOFF_TRY(cudaStreamSynchronize(stream));
    return Status::success();
  };
  if (Status s = trips(10); !s.ok()) return s;
  const auto t0 = Clock::now();
  if (Status s = trips(iters); !s.ok()) return s;
  *us = us_since(t0) / iters;
  const bool failed = timeout || words[16] != 0;
  for (int i = 0; i < 24; ++i) words[i] = 0;
  if (failed) return Status::invalid("measure_handoff", "pinned-flag hand-off with rows timed out (2 s)");
  return Status::success();
}

}  // namespace

Status measure_handoff(cudaStream_t stream, int iters, HandoffTimes* out) noexcept {
  if (iters < 1 || out == nullptr) return Status::invalid("measure_handoff", "iters must be >= 1 and out non-null");
  out->iters = iters;
  Owned mem;
  HEXE_HANDOFF_TRY(cudaMalloc(&mem.dev, sizeof(int)));
  HEXE_HANDOFF_TRY(cudaMemsetAsync(mem.dev, 0, sizeof(int), stream));
  int* counter = static_cast<int*>(mem.dev);
  HEXE_HANDOFF_TRY(cudaStreamSynchronize(stream));

  // 1. Kernel pairs with and without a host function between them, queued ahead.
  int calls = 0;
  auto run_pairs = [&](bool host_fn, double* us) -> Status {
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) {
      touch<<<1, 1, 0, stream>>>(counter);
      if (host_fn) HEXE_HANDOFF_TRY(cudaLaunchHostFunc(stream, count_call, &calls));
      touch<<<1, 1, 0, stream>>>(counter);
    }
    HEXE_HANDOFF_TRY(cudaGetLastError());
    HEXE_HANDOFF_TRY(cudaStreamSynchronize(stream));
    *us = us_since(t0);
    return Status::success();
  };
  double plain = 0, with_fn = 0, warm = 0;
  if (Status s = run_pairs(false, &warm); !s.ok()) return s;  // loads the module, warms the stream
  if (Status s = run_pairs(false, &plain); !s.ok()) return s;
  if (Status s = run_pairs(true, &with_fn); !s.ok()) return s;
  if (calls != iters) return Status::invalid("measure_handoff", "host function count differs from the launches");
  out->host_fn_us = (with_fn - plain) / iters;

  // 2. Flag ping-pong with a resident kernel, flags on separate 64-byte lines of mapped memory.
  HEXE_HANDOFF_TRY(cudaHostAlloc(&mem.host, 192, cudaHostAllocMapped));
  volatile int* go = static_cast<volatile int*>(mem.host);
  volatile int* done = go + 16;
  volatile int* timed_out = go + 32;
  *go = 0, *done = 0, *timed_out = 0;
  int* dev_flags = nullptr;
  HEXE_HANDOFF_TRY(cudaHostGetDevicePointer(reinterpret_cast<void**>(&dev_flags), mem.host, 0));
  ping_pong<<<1, 1, 0, stream>>>(dev_flags, dev_flags + 16, dev_flags + 32, iters);
  HEXE_HANDOFF_TRY(cudaGetLastError());
  bool host_timeout = false;
  const auto t0 = Clock::now();
  for (int i = 1; i <= iters && !host_timeout; ++i) {
    __sync_synchronize();
    *go = i;
    __sync_synchronize();
    const auto wait0 = Clock::now();
    while (*done < i && *timed_out == 0) {
      if (us_since(wait0) > kTimeoutNs / 1000.0) {
        host_timeout = true;
        break;
      }
    }
    if (*timed_out) break;
  }
  const double ping_us = us_since(t0);
  *go = iters;  // releases a kernel still waiting, whatever happened above
  __sync_synchronize();
  HEXE_HANDOFF_TRY(cudaStreamSynchronize(stream));
  if (host_timeout || *timed_out)
    return Status::invalid("measure_handoff", "pinned-flag ping-pong timed out (no answer within 2 s)");
  out->flag_round_trip_us = ping_us / iters;

  // 3. Publish 8 KB, the host answers, await and add 8 KB back (the flagged decode pass's kernels).
  if (Status s = measure_flag_rows(stream, mem.host, iters, &out->flag_rows_us); !s.ok()) return s;

  // 4. Launch, synchronise, relaunch.
  const auto t1 = Clock::now();
  for (int i = 0; i < iters; ++i) {
    touch<<<1, 1, 0, stream>>>(counter);
    HEXE_HANDOFF_TRY(cudaStreamSynchronize(stream));
  }
  out->sync_relaunch_us = us_since(t1) / iters;
  return Status::success();
}

}  // namespace hexe::gpu

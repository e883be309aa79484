// Pinned-flag hand-off kernels (see host_flags.h). Each is one block: decode moves a few rows.
#include "gpu_kernels/host_flags.h"

#include "gpu_kernels/norm.cuh"

namespace hexe::gpu {
namespace {

constexpr int kThreads = 256;

__device__ uint64_t now_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// System-scope acquire/release: the host reads and writes these counters.
__device__ unsigned long long load_acquire_sys(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}
__device__ void store_release_sys(unsigned long long* p, unsigned long long v) {
  asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

// Four floats of mapped host memory, read over PCIe every time (never from a cache).
__device__ float4 load_volatile4(const float* p) {
  float4 v;
  asm volatile("ld.volatile.global.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "l"(p)
               : "memory");
  return v;
}

__global__ void __launch_bounds__(kThreads) publish_kernel(const PublishParams p) {
  for (int part = 0; part < p.parts; ++part) {
    const float* __restrict__ src = p.src[part];
    volatile float* dst = p.dst[part];
    const int64_t n = p.n[part];
    // 16-byte writes over PCIe where both sides allow them: a quarter of the transactions.
    const bool wide = n % 4 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.dst[part]) % 16 == 0;
    if (wide) {
      for (int64_t i = threadIdx.x; i < n / 4; i += kThreads) {
        const float4 v = reinterpret_cast<const float4*>(src)[i];
        asm volatile("st.volatile.global.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(p.dst[part] + 4 * i), "f"(v.x),
                     "f"(v.y), "f"(v.z), "f"(v.w)
                     : "memory");
      }
    } else {
      for (int64_t i = threadIdx.x; i < n; i += kThreads) dst[i] = src[i];
    }
  }
  __threadfence_system();  // this thread's copies reach host memory before the count below
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned long long n = *p.flags.published + 1;
    *p.flags.published = n;
    if (p.flags.busy_ns) *p.flags.busy_ns += now_ns() - *p.flags.started_ns;
    store_release_sys(p.flags.to_host, n);
  }
}

template <bool kWait>
__global__ void __launch_bounds__(kThreads) await_add_kernel(const AwaitAddParams p) {
  if (kWait && threadIdx.x == 0) {
    const unsigned long long want = *p.flags.published;
    const uint64_t t0 = now_ns();
    // After one await gave up, the rest of the pass does not wait again.
    const bool gave_up = *reinterpret_cast<volatile int*>(p.flags.failed) != 0;
    while (!gave_up && load_acquire_sys(p.flags.to_device) < want) {
      if (now_ns() - t0 > p.timeout_ns) {
        *reinterpret_cast<volatile int*>(p.flags.failed) = 1;
        __threadfence_system();
        break;
      }
      __nanosleep(100);
    }
    if (p.flags.started_ns) *p.flags.started_ns = now_ns();
  }
  // Every thread's host reads below come after thread 0 saw the answer. (After a timeout the rows
  // are garbage; the host throws after the pass.)
  __syncthreads();
  __shared__ float partial[kThreads / 32];
  const bool wide = p.n % 4 == 0 && reinterpret_cast<uintptr_t>(p.host) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
                    (!p.extra || reinterpret_cast<uintptr_t>(p.extra) % 16 == 0);
  if (wide) {
    // 16-byte reads over PCIe, kInFlight of them per thread issued before any is used: the rows
    // arrive in about one round trip (a read consumed before the next is issued costs one each;
    // this block read 8 KB in 9 us that way on an H100).
    constexpr int kInFlight = 8;
    auto* x4 = reinterpret_cast<float4*>(p.x);
    const auto* e4 = reinterpret_cast<const float4*>(p.extra);
    const int64_t n4 = p.rows * p.n / 4;
    for (int64_t base = 0; base < n4; base += int64_t(kInFlight) * kThreads) {
      float4 h[kInFlight];
#pragma unroll
      for (int j = 0; j < kInFlight; ++j) {
        const int64_t i = base + int64_t(j) * kThreads + threadIdx.x;
        if (i < n4) h[j] = load_volatile4(p.host + 4 * i);
      }
#pragma unroll
      for (int j = 0; j < kInFlight; ++j) {
        const int64_t i = base + int64_t(j) * kThreads + threadIdx.x;
        if (i >= n4) break;
        float4 v = x4[i];
        v.x += h[j].x, v.y += h[j].y, v.z += h[j].z, v.w += h[j].w;
        if (e4) {
          const float4 ev = e4[i];
          v.x += ev.x, v.y += ev.y, v.z += ev.z, v.w += ev.w;
        }
        x4[i] = v;
      }
    }
    if (!p.norm_weight) return;
    __syncthreads();  // the squares below are summed in rms_norm_kernel's order, over all of x
  }
  for (int64_t r = 0; r < p.rows; ++r) {
    float* x = p.x + r * p.n;
    const volatile float* y = p.host + r * p.n;  // volatile: read over PCIe every pass, never cached
    const float* e = p.extra ? p.extra + r * p.n : nullptr;
    float sum = 0.f;
    if (wide) {
      for (int64_t i = threadIdx.x; i < p.n; i += kThreads) sum += x[i] * x[i];
    } else {
      for (int64_t i = threadIdx.x; i < p.n; i += kThreads) {
        float v = x[i] + y[i];
        if (e) v += e[i];
        x[i] = v;
        sum += v * v;
      }
      if (!p.norm_weight) continue;
    }
    // rms_norm_kernel's reduction (same block size), so the normed row is the same bits.
    const float scale = detail::rms_inv(detail::block_sum<kThreads>(sum, partial), p.n, p.eps);
    float* h = p.norm_out + r * p.n;
    for (int64_t i = threadIdx.x; i < p.n; i += kThreads) h[i] = detail::rms_apply(x[i], scale, p.norm_weight, i);
  }
}

__global__ void stamp_kernel(HostFlags f, bool end) {
  if (end) *f.busy_ns += now_ns() - *f.started_ns;
  else *f.started_ns = now_ns();
}

bool flags_complete(const HostFlags& f) { return f.to_host && f.to_device && f.failed && f.published; }

const char* check_add(const AwaitAddParams& p) {
  if (p.rows < 0 || p.n <= 0 || p.rows * p.n > kAwaitMaxElements)
    return "rows x n must be in 0..kAwaitMaxElements with n > 0";
  if (!p.x || !p.host) return "x or host is null";
  if ((p.norm_weight == nullptr) != (p.norm_out == nullptr)) return "norm_weight and norm_out go together";
  return nullptr;
}

}  // namespace

Status publish_to_host(const PublishParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "publish_to_host";
  if (!flags_complete(p.flags)) return Status::invalid(kOp, "a hand-off counter is null");
  if (p.parts < 0 || p.parts > 3) return Status::invalid(kOp, "parts must be in 0..3");
  for (int i = 0; i < p.parts; ++i)
    if (p.n[i] < 0 || (p.n[i] > 0 && (!p.src[i] || !p.dst[i]))) return Status::invalid(kOp, "a part is null or n < 0");
  publish_kernel<<<1, kThreads, 0, stream>>>(p);
  return last_launch_status(kOp);
}

Status await_host_add(const AwaitAddParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "await_host_add";
  if (!flags_complete(p.flags)) return Status::invalid(kOp, "a hand-off counter is null");
  if (const char* why = check_add(p)) return Status::invalid(kOp, why);
  if (p.flags.busy_ns && !p.flags.started_ns) return Status::invalid(kOp, "busy_ns without started_ns");
  await_add_kernel<true><<<1, kThreads, 0, stream>>>(p);
  return last_launch_status(kOp);
}

Status add_host_rows(const AwaitAddParams& p, cudaStream_t stream) {
  constexpr const char* kOp = "add_host_rows";
  if (const char* why = check_add(p)) return Status::invalid(kOp, why);
  await_add_kernel<false><<<1, kThreads, 0, stream>>>(p);
  return last_launch_status(kOp);
}

Status stamp_start(const HostFlags& f, cudaStream_t stream) {
  if (!f.busy_ns || !f.started_ns) return Status::invalid("stamp_start", "busy_ns or started_ns is null");
  stamp_kernel<<<1, 1, 0, stream>>>(f, false);
  return last_launch_status("stamp_start");
}

Status stamp_end(const HostFlags& f, cudaStream_t stream) {
  if (!f.busy_ns || !f.started_ns) return Status::invalid("stamp_end", "busy_ns or started_ns is null");
  stamp_kernel<<<1, 1, 0, stream>>>(f, true);
  return last_launch_status("stamp_end");
}

}  // namespace hexe::gpu

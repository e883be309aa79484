// GEMV bandwidth benchmark: achieved weight-streaming GB/s of gpu::gemv per weight type and token
// count, next to the device's theoretical memory bandwidth (ratio = achieved / theoretical).
//   bench_gpu_gemv [n k]      (default n = 14336, k = 4096; weights rotate over copies > 4x L2)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "cpu_kernels/format.h"
#include "cpu_kernels/quant.h"
#include "gpu_kernels/device.h"
#include "gpu_kernels/matmul.h"

namespace {

using namespace hexe;

bool ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "%s\n", gpu::cuda_error_message(e, what).c_str());
  return false;
}

// Random bytes with small finite F16 scales: bandwidth does not depend on the values, only on
// them being finite. Plain types get random finite values.
std::vector<uint8_t> weights(DType t, int64_t n, int64_t k) {
  std::vector<uint8_t> w(row_bytes(t, uint64_t(k)) * uint64_t(n));
  std::mt19937_64 rng(1);
  if (!is_quantized(t)) {
    const size_t es = info(t).block_bytes;
    for (size_t i = 0; i < w.size(); i += es) {
      const float v = float(int(rng() % 2001) - 1000) * 1e-3f;
      if (t == DType::F32) std::memcpy(&w[i], &v, 4);
      const uint16_t h = t == DType::F16 ? cpu::f32_to_f16(v) : cpu::f32_to_bf16(v);
      if (t != DType::F32) std::memcpy(&w[i], &h, 2);
    }
    return w;
  }
  for (auto& b : w) b = uint8_t(rng());
  const uint32_t bb = info(t).block_bytes;
  const uint16_t d = cpu::f32_to_f16(0.01f);
  for (size_t off = 0; off < w.size(); off += bb) {
    if (t == DType::Q6_K) {
      std::memcpy(&w[off + 208], &d, 2);
    } else {
      std::memcpy(&w[off], &d, 2);
      if (t == DType::Q4_K || t == DType::Q5_K || t == DType::Q4_1 || t == DType::Q5_1) std::memcpy(&w[off + 2], &d, 2);
    }
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  const auto presence = gpu::probe_devices();
  if (presence.count == 0) {
    std::printf("bench_gpu_gemv: skipped, %s\n", presence.reason.c_str());
    return 0;
  }
  const int64_t n = argc > 2 ? std::atoll(argv[1]) : 14336, k = argc > 2 ? std::atoll(argv[2]) : 4096;
  gpu::DeviceInfo dev;
  if (auto s = gpu::device_info(0, &dev); !s.ok()) {
    std::fprintf(stderr, "%s\n", gpu::to_string(s).c_str());
    return 1;
  }
  std::printf("device: %s (sm_%d%d, %d SMs, L2 %zu MB), theoretical memory bandwidth %.0f GB/s\n",
              dev.name.c_str(), dev.cc_major, dev.cc_minor, dev.sm_count, dev.l2_bytes >> 20,
              dev.memory_bandwidth / 1e9);
  std::printf("gemv n=%lld k=%lld: GB/s counts weight + activation + output bytes per call\n", (long long)n,
              (long long)k);

  cudaStream_t stream;
  if (!ok(cudaStreamCreate(&stream), "cudaStreamCreate")) return 1;
  cudaEvent_t start, stop;
  if (!ok(cudaEventCreate(&start), "cudaEventCreate") || !ok(cudaEventCreate(&stop), "cudaEventCreate")) return 1;
  float *x = nullptr, *y = nullptr;
  if (!ok(cudaMalloc(&x, size_t(8 * k) * 4), "cudaMalloc x") || !ok(cudaMalloc(&y, size_t(8 * n) * 4), "cudaMalloc y"))
    return 1;
  if (!ok(cudaMemset(x, 0, size_t(8 * k) * 4), "cudaMemset")) return 1;

  const DType types[] = {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0, DType::Q4_0, DType::BF16, DType::F16};
  for (DType t : types) {
    const auto host = weights(t, n, k);
    const size_t bytes = host.size();
    // Enough copies that the set is at least 4x the L2 cache: every call streams from DRAM/HBM.
    const size_t copies = std::max<size_t>(2, (4 * dev.l2_bytes + bytes - 1) / bytes);
    uint8_t* w = nullptr;
    if (!ok(cudaMalloc(&w, bytes * copies), "cudaMalloc weights")) return 1;
    for (size_t c = 0; c < copies; ++c)
      if (!ok(cudaMemcpy(w + c * bytes, host.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy")) return 1;
    for (int m : {1, 4, 8}) {
      gpu::MatmulParams p;
      p.w_type = t;
      p.n = n;
      p.k = k;
      p.x = x;
      p.m = m;
      p.x_stride = k;
      p.y = y;
      p.y_stride = n;
      const int iters = 200;
      for (int i = -20; i < iters; ++i) {
        if (i == 0 && !ok(cudaEventRecord(start, stream), "cudaEventRecord")) return 1;
        p.w = w + size_t((i + 20) % int(copies)) * bytes;
        if (auto s = gpu::gemv(p, stream); !s.ok()) {
          std::fprintf(stderr, "%s\n", gpu::to_string(s).c_str());
          return 1;
        }
      }
      if (!ok(cudaEventRecord(stop, stream), "cudaEventRecord") || !ok(cudaEventSynchronize(stop), "sync")) return 1;
      float ms = 0;
      if (!ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime")) return 1;
      const double per_call = double(ms) * 1e-3 / iters;
      const double moved = double(bytes) + double(m) * double(k + n) * 4;
      const double bw = moved / per_call;
      std::printf("gemv %-5s m=%d: %8.1f us  %7.0f GB/s  limit %5.0f GB/s  ratio %.3f\n",
                  std::string(dtype_name(t)).c_str(), m, per_call * 1e6, bw / 1e9, dev.memory_bandwidth / 1e9,
                  bw / dev.memory_bandwidth);
    }
    cudaFree(w);
  }
  cudaFree(x);
  cudaFree(y);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  return 0;
}

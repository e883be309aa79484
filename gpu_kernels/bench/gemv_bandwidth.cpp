// GEMV bandwidth benchmark: achieved weight-streaming GB/s of gpu::gemv per weight type, shape and
// token count, next to the device's theoretical memory bandwidth (ratio = achieved / theoretical).
//   bench_gpu_gemv [n k [type...]]   default: the decode shapes n x k = 4096 x 2048 (attention projection),
//                          151936 x 2048 (output head), 2048 x 4096 (output projection), for
//                          Q4_K, Q5_K, Q6_K, Q8_0, Q4_0 (integer path) and Q5_0 (float path), m = 1, 4, 8;
//                          types by name (F32, F16, BF16, Q4_K, ...) replace that list.
// Weights rotate over copies >= 4x L2, so every call streams them from DRAM/HBM.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <tuple>
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
  for (size_t i = 0; i + 8 <= w.size(); i += 8) {
    const uint64_t r = rng();
    std::memcpy(&w[i], &r, 8);
  }
  for (size_t i = w.size() / 8 * 8; i < w.size(); ++i) w[i] = uint8_t(rng());
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

// Milliseconds of one replay of a CUDA graph captured from `enqueue` (which returns false on an
// error it has printed), timed after one warm replay; < 0 on error.
template <class F>
float graph_ms(cudaStream_t stream, cudaEvent_t start, cudaEvent_t stop, F&& enqueue) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  float ms = -1;
  if (!ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture")) return -1;
  const bool enqueued = enqueue();
  if (!ok(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture") || !enqueued) return -1;
  if (!ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate") ||
      !ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch") || !ok(cudaEventRecord(start, stream), "cudaEventRecord") ||
      !ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch") || !ok(cudaEventRecord(stop, stream), "cudaEventRecord") ||
      !ok(cudaEventSynchronize(stop), "sync") || !ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime"))
    ms = -1;
  if (exec) cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return ms;
}

bool status_ok(const gpu::Status& s) {
  if (s.ok()) return true;
  std::fprintf(stderr, "%s\n", gpu::to_string(s).c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const auto presence = gpu::probe_devices();
  if (presence.count == 0) {
    std::printf("bench_gpu_gemv: skipped, %s\n", presence.reason.c_str());
    return 0;
  }
  std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 2048}, {151936, 2048}, {2048, 4096}};
  if (argc > 2) shapes = {{std::atoll(argv[1]), std::atoll(argv[2])}};
  gpu::DeviceInfo dev;
  if (auto s = gpu::device_info(0, &dev); !s.ok()) {
    std::fprintf(stderr, "%s\n", gpu::to_string(s).c_str());
    return 1;
  }
  std::printf("device: %s (sm_%d%d, %d SMs, L2 %zu MB), theoretical memory bandwidth %.0f GB/s\n",
              dev.name.c_str(), dev.cc_major, dev.cc_minor, dev.sm_count, dev.l2_bytes >> 20,
              dev.memory_bandwidth / 1e9);
  std::printf("GB/s (graph-replay time) counts weight + activation + output bytes per call; ratio = GB/s / theoretical\n");

  int64_t max_n = 0, max_k = 0;
  for (auto [n, k] : shapes) max_n = std::max(max_n, n), max_k = std::max(max_k, k);
  cudaStream_t stream;
  if (!ok(cudaStreamCreate(&stream), "cudaStreamCreate")) return 1;
  cudaEvent_t start, stop;
  if (!ok(cudaEventCreate(&start), "cudaEventCreate") || !ok(cudaEventCreate(&stop), "cudaEventCreate")) return 1;
  float *x = nullptr, *y = nullptr;
  if (!ok(cudaMalloc(&x, size_t(8 * max_k) * 4), "cudaMalloc x") || !ok(cudaMalloc(&y, size_t(8 * max_n) * 4), "cudaMalloc y"))
    return 1;
  {
    std::vector<float> hx(size_t(8 * max_k));
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    for (auto& v : hx) v = d(rng);
    if (!ok(cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy x")) return 1;
  }

  std::vector<DType> types = {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0, DType::Q4_0, DType::Q5_0};
  if (argc > 3) {
    types.clear();
    for (int i = 3; i < argc; ++i) {
      const auto t = dtype_from_name(argv[i]);
      if (!t || !gpu::supports_weight_type(*t)) {
        std::fprintf(stderr, "bench_gpu_gemv: no GPU weight type %s\n", argv[i]);
        return 1;
      }
      types.push_back(*t);
    }
  }
  for (auto [n, k] : shapes) {
    std::printf("n=%lld k=%lld\n", (long long)n, (long long)k);
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
        // Timed twice: launched one by one from the host (includes launch overhead when the
        // kernel is shorter than it), and replayed from a CUDA graph (as the engine's decode does).
        const int iters = 100;
        for (int i = -10; i < iters; ++i) {
          if (i == 0 && !ok(cudaEventRecord(start, stream), "cudaEventRecord")) return 1;
          p.w = w + size_t((i + 10) % int(copies)) * bytes;
          if (auto s = gpu::gemv(p, stream); !s.ok()) {
            std::fprintf(stderr, "%s\n", gpu::to_string(s).c_str());
            return 1;
          }
        }
        if (!ok(cudaEventRecord(stop, stream), "cudaEventRecord") || !ok(cudaEventSynchronize(stop), "sync")) return 1;
        float ms = 0;
        if (!ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime")) return 1;
        const double per_call = double(ms) * 1e-3 / iters;

        ms = graph_ms(stream, start, stop, [&] {
          for (int i = 0; i < iters; ++i) {
            p.w = w + size_t(i % int(copies)) * bytes;
            if (!status_ok(gpu::gemv(p, stream))) return false;
          }
          return true;
        });
        if (ms < 0) return 1;
        const double per_graph_call = double(ms) * 1e-3 / iters;

        const double moved = double(bytes) + double(m) * double(k + n) * 4;
        const double bw = moved / per_graph_call;
        std::printf("gemv %-5s %-5s n=%-6lld k=%-5lld m=%d: launched %6.1f us, graph %6.1f us  %7.0f GB/s  ratio %.3f\n",
                    std::string(dtype_name(t)).c_str(), gpu::gemv_quantizes_activation(t) ? "int" : "float",
                    (long long)n, (long long)k, m, per_call * 1e6, per_graph_call * 1e6, bw / 1e9,
                    bw / dev.memory_bandwidth);
      }
      cudaFree(w);
    }
  }
  // A decode step's routed experts (Qwen3-30B-A3B: 8 of them, gate 768x2048 Q4_K, down 2048x768
  // Q6_K, one token): 8 gemv calls against one gemv_batched call, both replayed from a graph.
  for (auto [t, n, k] : {std::tuple{DType::Q4_K, int64_t(768), int64_t(2048)}, std::tuple{DType::Q6_K, int64_t(2048), int64_t(768)}}) {
    if (8 * n > 8 * max_n || k > max_k) continue;
    const auto host = weights(t, n, k);
    const size_t bytes = host.size(), sets = std::max<size_t>(16, (4 * dev.l2_bytes + 8 * bytes - 1) / (8 * bytes)) * 8;
    uint8_t* w = nullptr;
    if (!ok(cudaMalloc(&w, bytes * sets), "cudaMalloc experts")) return 1;
    for (size_t c = 0; c < sets; ++c)
      if (!ok(cudaMemcpy(w + c * bytes, host.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy")) return 1;
    double us[2] = {0, 0};
    for (int batched = 0; batched < 2; ++batched) {
      const int iters = 50;
      const float ms = graph_ms(stream, start, stop, [&] {
        for (int i = 0; i < iters; ++i) {
          gpu::GemvBatch b;
          b.w_type = t;
          b.n = n;
          b.k = k;
          b.x_stride = k;
          b.y_stride = n;
          b.count = 8;
          for (int e = 0; e < 8; ++e) b.e[e] = {w + ((size_t(i) * 8 + size_t(e)) % sets) * bytes, x, y + e * n, 1};
          if (batched) {
            if (!status_ok(gpu::gemv_batched(b, stream))) return false;
            continue;
          }
          for (int e = 0; e < 8; ++e) {
            gpu::MatmulParams p;
            p.w = b.e[e].w; p.w_type = t; p.n = n; p.k = k; p.x = x; p.m = 1; p.x_stride = k; p.y = b.e[e].y; p.y_stride = n;
            if (!status_ok(gpu::gemv(p, stream))) return false;
          }
        }
        return true;
      });
      if (ms < 0) return 1;
      us[batched] = double(ms) * 1e3 / iters;
    }
    const double moved = 8.0 * double(bytes);
    std::printf("8 experts %-5s n=%-5lld k=%-5lld m=1: 8 x gemv %6.1f us, gemv_batched %6.1f us (%.0f GB/s, ratio %.3f)\n",
                std::string(dtype_name(t)).c_str(), (long long)n, (long long)k, us[0], us[1], moved / (us[1] * 1e-6) / 1e9,
                moved / (us[1] * 1e-6) / dev.memory_bandwidth);
    cudaFree(w);
  }
  cudaFree(x);
  cudaFree(y);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  return 0;
}

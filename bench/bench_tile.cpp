// Per-core compute rate of the matmul kernels with cache-resident weights (no DRAM): GB/s of
// weights per second of this thread's CPU time (CLOCK_THREAD_CPUTIME_ID, so time slices lost to
// other processes on a loaded machine do not count). A kernel reaches the DRAM limit only if this
// rate times the thread count is well above the DRAM read bandwidth. Two figures per format:
// `matmul` (the front: activation quantisation + tiles, what a decode matmul costs) and `tile`
// (the tile kernel alone on pre-quantised activations: the compute rate the weight stream meets).
//   bench_tile [--m M] [--k K] [--kib KiB of weights, default 512] [--isa scalar|avx2|avx512|amx]
//              [--layout gguf|rows16|both]   (rows16: the repacked decode layout, q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K)
//              [--type q4_K]   (one format only, by its GGUF name)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/probe.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/repack.h"

#include "bench/thread_clock.h"

int main(int argc, char** argv) {
  using namespace hexe;
  using namespace hexe::cpu;
  int64_t m = 1, k = 2048;
  size_t kib = 512;
  Isa tier = active_isa();
  std::string layouts = "gguf", only;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--m")) m = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--k")) k = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--kib")) kib = size_t(std::atoll(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--layout")) layouts = argv[i + 1];
    else if (!std::strcmp(argv[i], "--type")) only = argv[i + 1];
    else if (!std::strcmp(argv[i], "--isa"))
      tier = !std::strcmp(argv[i + 1], "scalar") ? Isa::Scalar
             : !std::strcmp(argv[i + 1], "avx2") ? Isa::Avx2
             : !std::strcmp(argv[i + 1], "amx")  ? Isa::Amx
                                                 : Isa::Avx512;
  }
  std::vector<float> x(size_t(m * k));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i * 7919 % 201) - 100) * 0.01f;
  {  // the per-core int8 / bf16 peaks in the same CPU-time terms, for GEMM ratios (m > 1)
    const double t0 = thread_cpu_seconds();
    const double ops = int8_dot_ops(5000000);
    const double t1 = thread_cpu_seconds();
    const double fl = bf16_dot_flops(5000000);
    const double t2 = thread_cpu_seconds();
    std::printf("peak int8 %.1f GOP/s/core (%s), peak bf16 %.1f GFLOP/s/core (%s)\n", ops / (t1 - t0) / 1e9,
                int8_dot_name(), fl / (t2 - t1) / 1e9, bf16_dot_name());
  }
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                         DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  std::printf("m %lld, k %lld, %zu KiB of weights per format, tier cap %s\n", static_cast<long long>(m),
              static_cast<long long>(k), kib, isa_name(tier));
  for (DType t : types) {
    if (!only.empty() && only != dtype_name(t)) continue;
    const uint64_t rb = row_bytes(t, uint64_t(k));
    const int64_t n = std::max<int64_t>(16, int64_t((kib << 10) / rb));
    // Real quantised rows (finite scales) from random floats.
    std::vector<float> wf(static_cast<size_t>(k));
    std::vector<uint8_t> w(size_t(rb * uint64_t(n)));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < k; ++i) wf[size_t(i)] = float(int((r * 31 + i * 17) % 255) - 127) * 0.004f;
      quantize_row(t, wf.data(), w.data() + size_t(r) * rb, k);
    }
    for (const WeightLayout layout : {WeightLayout::Gguf, WeightLayout::Rows16}) {
      if (layouts != "both" && layouts != layout_name(layout)) continue;
      if (layout == WeightLayout::Rows16 && !rows16_supported(t)) continue;
      PackedWeights packed;
      if (layout == WeightLayout::Rows16) packed = repack_for_decode(t, n, k, w.data(), rb);
      std::vector<float> y(size_t(m * n));
      MatmulParams p;
      p.w = layout == WeightLayout::Rows16 ? static_cast<const void*>(packed.data()) : w.data();
      p.w_type = t; p.w_layout = layout; p.n = n; p.k = k;
      p.x = x.data(); p.m = m; p.x_stride = k; p.y = y.data(); p.y_stride = n;
      matmul_at(p, tier, nullptr);
      int reps = 0;
      const double t0 = thread_cpu_seconds();
      double t1 = t0;
      while (t1 - t0 < 0.3) {
        matmul_at(p, tier, nullptr);
        ++reps;
        t1 = thread_cpu_seconds();
      }
      const double s = (t1 - t0) / reps;
      // The tile alone: activations quantised once, outside the timing.
      const GemmKernel* g = select_gemm(t, k, tier, layout);
      const DType at = paired_activation(t);
      const size_t arb = at == DType::F32 ? size_t(k) * sizeof(float) : row_bytes(at, uint64_t(k));
      std::vector<uint8_t> act(arb * size_t(m));
      for (int64_t i = 0; i < m; ++i) {
        if (at == DType::F32) std::memcpy(act.data() + size_t(i) * arb, x.data() + i * k, arb);
        else quantize_row(at, x.data() + i * k, act.data() + size_t(i) * arb, k);
      }
      const size_t stride = layout == WeightLayout::Rows16 ? rows16_group_bytes(t, k) : rb;
      reps = 0;
      const double t2 = thread_cpu_seconds();
      double t3 = t2;
      while (t3 - t2 < 0.3) {
        g->fn(k, p.w, stride, n, act.data(), arb, m, y.data(), n);
        ++reps;
        t3 = thread_cpu_seconds();
      }
      const double st = (t3 - t2) / reps;
      // GB/s of the GGUF bytes the matmul stands for (the same useful bytes in either layout).
      std::printf("%-5s %-26s matmul %7.2f GB/s/core %7.1f GMAC/s/core | tile %7.2f GB/s/core\n",
                  std::string(dtype_name(t)).c_str(), matmul_choice(t, k, tier, layout).name.c_str(),
                  double(rb) * double(n) / s / 1e9, double(m * n * k) / s / 1e9, double(rb) * double(n) / st / 1e9);
    }
  }
  return 0;
}

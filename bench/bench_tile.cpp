// Per-core compute rate of the matmul kernels with cache-resident weights (no DRAM): GB/s of
// weights per second of this thread's CPU time (CLOCK_THREAD_CPUTIME_ID, so time slices lost to
// other processes on a loaded machine do not count). A kernel reaches the DRAM limit only if this
// rate times the thread count is well above the DRAM read bandwidth.
//   bench_tile [--m M] [--k K] [--kib KiB of weights, default 512] [--isa scalar|avx2|avx512]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/probe.h"
#include "cpu_kernels/quant.h"

namespace {
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace hexe;
  using namespace hexe::cpu;
  int64_t m = 1, k = 2048;
  size_t kib = 512;
  Isa tier = active_isa();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--m")) m = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--k")) k = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--kib")) kib = size_t(std::atoll(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--isa"))
      tier = !std::strcmp(argv[i + 1], "scalar") ? Isa::Scalar : !std::strcmp(argv[i + 1], "avx2") ? Isa::Avx2 : Isa::Avx512;
  }
  std::vector<float> x(size_t(m * k));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i * 7919 % 201) - 100) * 0.01f;
  {  // the per-core int8 / bf16 peaks in the same CPU-time terms, for GEMM ratios (m > 1)
    const double t0 = cpu_now();
    const double ops = int8_dot_ops(5000000);
    const double t1 = cpu_now();
    const double fl = bf16_dot_flops(5000000);
    const double t2 = cpu_now();
    std::printf("peak int8 %.1f GOP/s/core (%s), peak bf16 %.1f GFLOP/s/core (%s)\n", ops / (t1 - t0) / 1e9,
                int8_dot_name(), fl / (t2 - t1) / 1e9, bf16_dot_name());
  }
  const DType types[] = {DType::F32, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  std::printf("m %lld, k %lld, %zu KiB of weights per format, tier cap %s\n", static_cast<long long>(m),
              static_cast<long long>(k), kib, isa_name(tier));
  for (DType t : types) {
    const uint64_t rb = row_bytes(t, uint64_t(k));
    const int64_t n = std::max<int64_t>(16, int64_t((kib << 10) / rb));
    // Real quantised rows (finite scales) from random floats.
    std::vector<float> wf(static_cast<size_t>(k));
    std::vector<uint8_t> w(size_t(rb * uint64_t(n)));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < k; ++i) wf[size_t(i)] = float(int((r * 31 + i * 17) % 255) - 127) * 0.004f;
      quantize_row(t, wf.data(), w.data() + size_t(r) * rb, k);
    }
    std::vector<float> y(size_t(m * n));
    MatmulParams p;
    p.w = w.data(); p.w_type = t; p.n = n; p.k = k;
    p.x = x.data(); p.m = m; p.x_stride = k; p.y = y.data(); p.y_stride = n;
    matmul_at(p, tier, nullptr);
    int reps = 0;
    const double t0 = cpu_now();
    double t1 = t0;
    while (t1 - t0 < 0.3) {
      matmul_at(p, tier, nullptr);
      ++reps;
      t1 = cpu_now();
    }
    const double s = (t1 - t0) / reps;
    std::printf("%-5s %-22s %8.2f GB/s/core %8.1f GMAC/s/core\n", std::string(dtype_name(t)).c_str(),
                matmul_choice(t, k, tier).name.c_str(), double(rb) * double(n) / s / 1e9,
                double(m * n * k) / s / 1e9);
  }
  return 0;
}

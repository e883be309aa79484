// Activation quantisation of one row (what every int8 decode matmul does first, on one thread):
// microseconds per row at each ISA tier against the scalar reference, held to a quarter of the
// reference's time (the row is cache-resident; the vector version has ~16 lanes of work per step).
//   bench_quant_act [--n N]   (default: 2048 and 7168, Qwen3-30B's and DeepSeek-V3's hidden sizes)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu_kernels/isa.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/quant_act.h"

#include "bench/thread_clock.h"

int main(int argc, char** argv) {
  using namespace hexe;
  using namespace hexe::cpu;
  std::vector<int> sizes = {2048, 7168};
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--n") == 0) sizes = {std::atoi(argv[i + 1])};
  std::printf("activation row quantisation, median of 2001 runs (thread CPU time)\n");
  int failures = 0;
  for (DType t : {DType::Q8_K, DType::Q8_0}) {
    for (int n : sizes) {
      if (n <= 0 || n % int(info(t).block_elems) != 0) continue;
      std::vector<float> x(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) x[size_t(i)] = float((i * 7919) % 1000) / 333.f - 1.5f;
      std::vector<uint8_t> y(row_bytes(t, uint64_t(n)));
      auto time_at = [&](Isa isa) {
        std::vector<double> runs;
        for (int r = 0; r < 2001; ++r) {
          const double t0 = thread_cpu_seconds();
          if (isa == Isa::Scalar) quantize_row(t, x.data(), y.data(), n);
          else quantize_activation_row_at(isa, t, x.data(), y.data(), n);
          runs.push_back(thread_cpu_seconds() - t0);
        }
        std::nth_element(runs.begin(), runs.begin() + 1000, runs.end());
        return runs[1000];
      };
      const double ref = time_at(Isa::Scalar);
      std::printf("%-5s n=%-5d reference %7.2f us\n", std::string(dtype_name(t)).c_str(), n, ref * 1e6);
      if (int(hardware_isa()) >= int(Isa::Avx512)) {
        const double v = time_at(Isa::Avx512);
        const bool ok = v <= ref / 4;
        failures += !ok;
        std::printf("%-5s n=%-5d avx512    %7.2f us  = %.2f of the reference (limit 0.25) %s\n",
                    std::string(dtype_name(t)).c_str(), n, v * 1e6, v / ref, ok ? "ok" : "ABOVE LIMIT");
      }
    }
  }
  if (int(hardware_isa()) < int(Isa::Avx512)) std::printf("no AVX-512 on this CPU: the reference is the only tier\n");
  return failures ? 1 : 0;
}

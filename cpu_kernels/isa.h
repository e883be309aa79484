// CPU feature detection (CPUID + XCR0, once) and the ISA tier kernels dispatch on.
#pragma once

#include <string>

namespace hexe::cpu {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };  // Avx512: F/BW/VL (+VNNI/BF16 when present)

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_vnni = false, avx512_bf16 = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  std::string brand;
};

const CpuFeatures& cpu_features();  // detected once
// The tier in use: the best the CPU has, capped by HEXE_CPU_ISA=scalar|avx2|avx512 (a request
// above the hardware is an error printed once, and the hardware's best is used).
Isa active_isa();
// The best tier this CPU runs, ignoring HEXE_CPU_ISA (tests use it to skip absent tiers).
Isa hardware_isa();
const char* isa_name(Isa isa);

}  // namespace hexe::cpu

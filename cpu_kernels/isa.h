// CPU feature detection (CPUID + XCR0, once) and the ISA tier kernels dispatch on.
#pragma once

#include <string>

namespace hexe::cpu {

// Avx512: F/BW/VL (+VNNI/BF16 when present). Amx: the Avx512 tier plus AMX-TILE/AMX-INT8 tiles
// (granted by the kernel: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)); its tables fall back to
// the Avx512 kernels for formats and shapes (decode, m < 16) without an AMX tile.
enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2, Amx = 3 };
inline constexpr int kIsaCount = 4;

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_vnni = false, avx512_bf16 = false, avx_vnni = false;
  bool avx512_vbmi = false;  // byte permutes (the AMX tier's Q4_K tile uses vpermt2b)
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool amd = false;  // vendor AuthenticAMD: the decode tiles' software prefetch is off there (kernels.h)
  std::string brand;
};

const CpuFeatures& cpu_features();  // detected once
// The tier in use: the best the CPU has, capped by HEXE_CPU_ISA=scalar|avx2|avx512|amx (a request
// above the hardware is an error printed once, and the hardware's best is used).
Isa active_isa();
// The best tier this CPU runs, ignoring HEXE_CPU_ISA (tests use it to skip absent tiers).
Isa hardware_isa();
const char* isa_name(Isa isa);
// AMX tiles usable: CPUID/XCR0 report AMX-TILE and AMX-INT8 and the kernel granted this process
// the XTILEDATA state (requested once, on the first call; a refusal leaves AMX off).
bool amx_usable();

}  // namespace hexe::cpu

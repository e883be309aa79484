// CPUID + XCR0 feature detection (once) and the active ISA tier (capped by HEXE_CPU_ISA).
#include "cpu_kernels/isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "cpu_kernels/env.h"
#include "cpu_kernels/kernels.h"

namespace hexe::cpu {
namespace {

struct Regs { uint32_t a = 0, b = 0, c = 0, d = 0; };

Regs cpuid(uint32_t leaf, uint32_t sub) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

bool bit(uint32_t v, int b) { return (v >> b) & 1u; }

CpuFeatures detect() {
  CpuFeatures f;
  const Regs l0 = cpuid(0, 0);
  const uint32_t max_leaf = l0.a;
  char vendor[13] = {};
  std::memcpy(vendor, &l0.b, 4);
  std::memcpy(vendor + 4, &l0.d, 4);
  std::memcpy(vendor + 8, &l0.c, 4);
  f.amd = std::strcmp(vendor, "AuthenticAMD") == 0;
  if (max_leaf < 1) return f;
  const Regs l1 = cpuid(1, 0);
  const bool osxsave = bit(l1.c, 27);
  // The OS must save the register state: XMM|YMM (bits 1,2) for AVX, opmask|ZMM (5,6,7) for
  // AVX-512, XTILECFG|XTILEDATA (17,18) for AMX.
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;
  const bool avx = bit(l1.c, 28) && os_avx;
  f.fma = avx && bit(l1.c, 12);
  f.f16c = avx && bit(l1.c, 29);
  if (max_leaf >= 7) {
    const Regs l7 = cpuid(7, 0);
    const Regs l7s1 = l7.a >= 1 ? cpuid(7, 1) : Regs{};
    f.avx2 = avx && bit(l7.b, 5);
    f.avx512f = os_avx512 && bit(l7.b, 16);
    f.avx512dq = f.avx512f && bit(l7.b, 17);
    f.avx512bw = f.avx512f && bit(l7.b, 30);
    f.avx512vl = f.avx512f && bit(l7.b, 31);
    f.avx512_vnni = f.avx512f && bit(l7.c, 11);
    f.avx512_vbmi = f.avx512f && bit(l7.c, 1);
    f.avx512_bf16 = f.avx512f && bit(l7s1.a, 5);
    f.avx_vnni = avx && bit(l7s1.a, 4);
    // AMX also needs arch_prctl(ARCH_REQ_XCOMP_PERM) before use; the AMX kernels ask for it.
    f.amx_bf16 = os_amx && bit(l7.d, 22);
    f.amx_tile = os_amx && bit(l7.d, 24);
    f.amx_int8 = os_amx && bit(l7.d, 25);
    // A test build whose AVX-512 files run on SIMDe (x86/avx512/emulated_avx512.h): the tier is
    // there wherever AVX2 is; AVX512-VBMI stays off, so the AMX tier never is (its files are
    // compiled for the real instructions).
    if (kAvx512Emulated && f.avx2 && f.fma && f.f16c && !f.avx512f) {
      f.avx512f = f.avx512dq = f.avx512bw = f.avx512vl = f.avx512_vnni = f.avx512_bf16 = true;
      f.avx512_vbmi = false;
      std::fprintf(stderr, "hexe: this build emulates AVX-512 on SIMDe (for tests): its avx512 tier runs many "
                           "times slower than avx2; HEXE_CPU_ISA=avx2 for speed\n");
    }
  }
  if (cpuid(0x80000000u, 0).a >= 0x80000004u) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      const Regs r = cpuid(0x80000002u + i, 0);
      std::memcpy(brand + 16 * i, &r, 16);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }
  return f;
}

// Asks the kernel for the AMX tile data state (Linux >= 5.16); without it the first tile
// instruction faults (SIGILL).
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
  unsigned long bitmask = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) != 0) return false;
  return (bitmask >> kXfeatureXtiledata) & 1u;
#else
  return false;
#endif
}

Isa hardware_best(const CpuFeatures& f) {
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c && f.avx512_vnni &&
      f.avx512_vbmi && amx_usable())
    return Isa::Amx;
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c) return Isa::Avx512;
  if (f.avx2 && f.fma && f.f16c) return Isa::Avx2;
  return Isa::Scalar;
}

Isa resolve_active() {
  const Isa best = hardware_best(cpu_features());
  const std::string& req = env::cpu_isa_request();
  if (req.empty()) return best;
  Isa want;
  if (req == "scalar") want = Isa::Scalar;
  else if (req == "avx2") want = Isa::Avx2;
  else if (req == "avx512") want = Isa::Avx512;
  else if (req == "amx") want = Isa::Amx;
  else {
    std::fprintf(stderr, "hexe: HEXE_CPU_ISA=%s is not one of scalar|avx2|avx512|amx; using %s\n",
                 req.c_str(), isa_name(best));
    return best;
  }
  if (int(want) > int(best)) {
    std::fprintf(stderr, "hexe: HEXE_CPU_ISA=%s exceeds what this CPU supports; using %s\n",
                 req.c_str(), isa_name(best));
    return best;
  }
  return want;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool amx_usable() {
  static const bool ok = [] {
    const CpuFeatures& f = cpu_features();
    return f.amx_tile && f.amx_int8 && request_amx_permission();
  }();
  return ok;
}

Isa hardware_isa() {
  static const Isa isa = hardware_best(cpu_features());
  return isa;
}

Isa active_isa() {
  static const Isa isa = resolve_active();  // the message above prints once
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Amx: return "amx";
  }
  return "?";
}

}  // namespace hexe::cpu

// The AVX-512 tier on a CPU without AVX-512, for testing only: the files of x86/avx512/ compiled
// with the AVX2 flags and this header included first (cpu_kernels/CMakeLists.txt: the objects of
// test_cpu_kernels_emulated_avx512, ctest label `emulated`; with -DHEXE_EMULATE_AVX512=ON, of every
// program). It maps the AVX-512 intrinsics onto SIMDe's portable versions (Debian: libsimde-dev)
// and supplies, lane by lane, the ones our kernels use that SIMDe 0.7 lacks or gets wrong for us.
// kAvx512Emulated (gemm_quant_avx512.cpp) is then true and isa.cpp reports AVX-512
// F/BW/VL/DQ/VNNI/BF16, so the tier's tables, dispatch and tests run as on the real CPU, many
// times slower: the point is that its tests can fail on a machine that has only AVX2.
#pragma once

#include <immintrin.h>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cpu_kernels/quant.h"

#define HEXE_AVX512_EMULATED 1

namespace hexe_emu512 {

template <class T, class V>
inline void lanes(V v, T* out) {
  static_assert(sizeof(V) % sizeof(T) == 0);
  std::memcpy(out, &v, sizeof(V));
}
template <class V, class T>
inline V from_lanes(const T* in) {
  V v;
  std::memcpy(&v, in, sizeof(V));
  return v;
}

inline simde__m512 cvtepi32_ps(simde__m512i a) {
  int32_t x[16];
  float r[16];
  lanes(a, x);
  for (int i = 0; i < 16; ++i) r[i] = float(x[i]);
  return from_lanes<simde__m512>(r);
}
// Round to nearest even (the default MXCSR mode); out of range or NaN: 0x80000000, as the CPU.
inline int32_t f32_to_i32(float f, bool truncate) {
  const float t = truncate ? std::trunc(f) : std::nearbyint(f);
  if (!(t >= -2147483648.0f && t < 2147483648.0f)) return std::numeric_limits<int32_t>::min();
  return int32_t(t);
}
inline simde__m512i cvtps_epi32(simde__m512 a, bool truncate) {
  float x[16];
  int32_t r[16];
  lanes(a, x);
  for (int i = 0; i < 16; ++i) r[i] = f32_to_i32(x[i], truncate);
  return from_lanes<simde__m512i>(r);
}
template <class From, class To, int N, class In>
inline simde__m512i widen(In a) {
  static_assert(sizeof(In) == N * sizeof(From) && sizeof(simde__m512i) == N * sizeof(To));
  From x[N];
  To r[N];
  lanes(a, x);
  for (int i = 0; i < N; ++i) r[i] = To(x[i]);
  return from_lanes<simde__m512i>(r);
}
inline simde__m512 cvtph_ps(__m256i h) {
  const __m256 lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  const __m256 hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
  float r[16];
  _mm256_storeu_ps(r, lo);
  _mm256_storeu_ps(r + 8, hi);
  return from_lanes<simde__m512>(r);
}
// f32 -> bf16 as vcvtne2ps2bf16: the reference's rounding (nearest even, NaN kept quiet), and
// zeros and denormals to a signed zero.
inline uint16_t cvtne_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x7F800000u) == 0 ? uint16_t(u >> 16 & 0x8000u) : hexe::cpu::f32_to_bf16(f);
}
// Elements 0..15 from b, 16..31 from a (as vcvtne2ps2bf16), as the integer vector the kernels cast
// it to.
inline simde__m512i cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
  float fa[16], fb[16];
  uint16_t r[32];
  lanes(a, fa);
  lanes(b, fb);
  for (int i = 0; i < 16; ++i) r[i] = cvtne_bf16(fb[i]), r[16 + i] = cvtne_bf16(fa[i]);
  return from_lanes<simde__m512i>(r);
}
template <class V, class T, int N>
inline V maskz_loadu(uint64_t m, const void* p) {
  T r[N] = {};
  for (int i = 0; i < N; ++i)
    if (m >> i & 1) std::memcpy(&r[i], static_cast<const T*>(p) + i, sizeof(T));
  return from_lanes<V>(r);
}
inline void mask_storeu_ps(void* p, uint16_t m, simde__m512 v) {
  float x[16];
  lanes(v, x);
  for (int i = 0; i < 16; ++i)
    if (m >> i & 1) std::memcpy(static_cast<float*>(p) + i, &x[i], 4);
}
inline simde__mmask16 cmplt_epi32_mask(simde__m512i a, simde__m512i b) {
  int32_t x[16], y[16];
  lanes(a, x);
  lanes(b, y);
  simde__mmask16 m = 0;
  for (int i = 0; i < 16; ++i) m = simde__mmask16(m | (x[i] < y[i]) << i);
  return m;
}
inline simde__m512i srai_epi32(simde__m512i a, unsigned n) {
  int32_t x[16];
  lanes(a, x);
  for (int i = 0; i < 16; ++i) x[i] = x[i] >> (n > 31 ? 31 : n);
  return from_lanes<simde__m512i>(x);
}
// The same tree as the compiler's reductions (halves of 256, 128, then pairs 2 apart, then the
// last two), so sums round as on the real CPU.
template <class Op>
inline float reduce_tree(simde__m512 a, Op op) {
  float x[16];
  lanes(a, x);
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) x[i] = op(x[i], x[i + w]);
  return x[0];
}
inline float reduce_add_ps(simde__m512 a) { return reduce_tree(a, [](float u, float v) { return u + v; }); }
inline float reduce_max_ps(simde__m512 a) { return reduce_tree(a, [](float u, float v) { return u > v ? u : v; }); }
// vdpbf16ps: per f32 lane, acc + odd product, then + even product (Intel's order), bf16 inputs
// and f32 results below 2^-126 as zero. The products of two bf16 are exact in f32.
inline float bf16_daz(uint16_t h) { return (h & 0x7F80u) == 0 ? (h & 0x8000u ? -0.0f : 0.0f) : hexe::cpu::bf16_to_f32(h); }
inline float ftz(float f) { return std::fabs(f) < std::numeric_limits<float>::min() ? std::copysign(0.0f, f) : f; }
inline simde__m512 dpbf16_ps(simde__m512 acc, simde__m512i a, simde__m512i b) {
  float t[16];
  uint16_t x[32], y[32];
  lanes(acc, t);
  lanes(a, x);
  lanes(b, y);
  for (int i = 0; i < 16; ++i) {
    t[i] = ftz(t[i] + bf16_daz(x[2 * i + 1]) * bf16_daz(y[2 * i + 1]));
    t[i] = ftz(t[i] + bf16_daz(x[2 * i]) * bf16_daz(y[2 * i]));
  }
  return from_lanes<simde__m512>(t);
}

// vrndscaleps: round to M = imm[7:4] fraction bits, by imm[1:0] (or the current mode where imm[2]
// is set). SIMDe 0.7.4's version rounds _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC to eighths.
inline simde__m512 roundscale_ps(simde__m512 a, int imm) {
  float x[16];
  lanes(a, x);
  const float scale = std::ldexp(1.0f, imm >> 4);
  for (int i = 0; i < 16; ++i) {
    if (!std::isfinite(x[i])) continue;
    const float v = x[i] * scale;
    float r;
    switch (imm & 4 ? 0 : imm & 3) {
      case 1: r = std::floor(v); break;
      case 2: r = std::ceil(v); break;
      case 3: r = std::trunc(v); break;
      default: r = std::nearbyint(v); break;
    }
    x[i] = std::copysign(r / scale, x[i]);
  }
  return from_lanes<simde__m512>(x);
}

// vscalefps: a x 2^floor(b), rounded once. SIMDe 0.7.4 multiplies by exp2(floor(b)), which is
// infinite for b >= 128 (exp near 88.7 has b = 128 and a below 1).
inline float scalef(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<float>::quiet_NaN();
  if (std::isinf(b)) {
    if ((b > 0 && a == 0) || (b < 0 && std::isinf(a))) return std::numeric_limits<float>::quiet_NaN();
    return b > 0 ? a * std::numeric_limits<float>::infinity() : a * 0.0f;
  }
  const float e = std::floor(b);
  return std::ldexp(a, e > 400 ? 400 : e < -400 ? -400 : int(e));
}
inline simde__m512 maskz_scalef_ps(simde__mmask16 k, simde__m512 a, simde__m512 b) {
  float x[16], y[16];
  lanes(a, x);
  lanes(b, y);
  for (int i = 0; i < 16; ++i) x[i] = k >> i & 1 ? scalef(x[i], y[i]) : 0.0f;
  return from_lanes<simde__m512>(x);
}

// The _round forms: the kernels use them so that a product and a sum are rounded apart, as the
// scalar reference does (the compiler contracts a plain multiply and add into an FMA). Out of
// line, so that no caller's contraction reaches across.
[[gnu::noinline]] inline simde__m512 mul_rounded(simde__m512 a, simde__m512 b) { return simde_mm512_mul_ps(a, b); }
[[gnu::noinline]] inline simde__m512 add_rounded(simde__m512 a, simde__m512 b) { return simde_mm512_add_ps(a, b); }

template <class T, int N>
inline T reduce_add_int(simde__m512i a) {
  T x[N];
  lanes(a, x);
  T s = 0;
  using U = std::make_unsigned_t<T>;  // wraps as the CPU's lanes do
  for (int i = 0; i < N; ++i) s = T(U(s) + U(x[i]));
  return s;
}

}  // namespace hexe_emu512

// Intrinsics SIMDe 0.7 does not have (the compiler's own are declared by immintrin.h, and some
// are macros there: each is undefined first).
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps(a) hexe_emu512::cvtepi32_ps(a)
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32(a) hexe_emu512::cvtps_epi32((a), false)
#undef _mm512_cvttps_epi32
#define _mm512_cvttps_epi32(a) hexe_emu512::cvtps_epi32((a), true)
#undef _mm512_cvtepi8_epi32
#define _mm512_cvtepi8_epi32(a) hexe_emu512::widen<int8_t, int32_t, 16>(a)
#undef _mm512_cvtepu8_epi32
#define _mm512_cvtepu8_epi32(a) hexe_emu512::widen<uint8_t, int32_t, 16>(a)
#undef _mm512_cvtepu8_epi16
#define _mm512_cvtepu8_epi16(a) hexe_emu512::widen<uint8_t, int16_t, 32>(a)
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32(a) hexe_emu512::widen<uint16_t, int32_t, 16>(a)
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps(a) hexe_emu512::cvtph_ps(a)
#undef _mm512_cvtne2ps_pbh
#define _mm512_cvtne2ps_pbh(a, b) hexe_emu512::cvtne2ps_pbh((a), (b))
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps(m, p) (hexe_emu512::maskz_loadu<simde__m512, float, 16>((m), (p)))
#undef _mm512_maskz_loadu_epi16
#define _mm512_maskz_loadu_epi16(m, p) (hexe_emu512::maskz_loadu<simde__m512i, int16_t, 32>((m), (p)))
#undef _mm256_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16(m, p) (hexe_emu512::maskz_loadu<__m256i, int16_t, 16>((m), (p)))
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps(p, m, v) hexe_emu512::mask_storeu_ps((p), (m), (v))
#undef _mm512_cmplt_epi32_mask
#define _mm512_cmplt_epi32_mask(a, b) hexe_emu512::cmplt_epi32_mask((a), (b))
#undef _mm512_srai_epi32
#define _mm512_srai_epi32(a, n) hexe_emu512::srai_epi32((a), (n))
#undef _mm512_reduce_add_ps
#define _mm512_reduce_add_ps(a) hexe_emu512::reduce_add_ps(a)
#undef _mm512_reduce_max_ps
#define _mm512_reduce_max_ps(a) hexe_emu512::reduce_max_ps(a)
#undef _mm512_reduce_add_epi32
#define _mm512_reduce_add_epi32(a) hexe_emu512::reduce_add_int<int32_t, 16>(a)
#undef _mm512_reduce_add_epi64
#define _mm512_reduce_add_epi64(a) hexe_emu512::reduce_add_int<int64_t, 8>(a)
#undef _mm512_maskz_scalef_ps
#define _mm512_maskz_scalef_ps(k, a, b) hexe_emu512::maskz_scalef_ps((k), (a), (b))
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps(a, imm) hexe_emu512::roundscale_ps((a), (imm))
#undef _mm512_shuffle_f32x4
#define _mm512_shuffle_f32x4(a, b, imm) simde_mm512_shuffle_f32x4((a), (b), (imm))
#undef _cvtu64_mask64
#define _cvtu64_mask64(v) simde__mmask64(v)
// Only _MM_FROUND_CUR_DIRECTION is used: the plain operations, each rounded on its own.
#undef _mm512_add_round_ps
#define _mm512_add_round_ps(a, b, r) hexe_emu512::add_rounded((a), (b))
#undef _mm512_mul_round_ps
#define _mm512_mul_round_ps(a, b, r) hexe_emu512::mul_rounded((a), (b))

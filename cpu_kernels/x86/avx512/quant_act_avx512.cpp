// AVX-512 activation quantisers, byte-identical to the reference (ref/quantize.cpp q_q8_0 and
// q_q8_k): the same float products, the same rounding (half away from zero for Q8_0, half to even
// for Q8_K), the same first-on-ties maximum.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/quant.h"

namespace hexe::cpu::avx512 {

namespace {

inline __m512 abs_ps(__m512 v) { return _mm512_andnot_ps(_mm512_set1_ps(-0.f), v); }

// round(v) with halves away from zero, as std::round, exactly: trunc(v) plus one step toward v's
// sign where the (exact) fractional part is at least one half.
inline __m512i round_half_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 step = _mm512_or_ps(_mm512_set1_ps(1.f), _mm512_and_ps(v, _mm512_set1_ps(-0.f)));  // +-1
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, step));
}

}  // namespace

void quantize_q8_0_row(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_ps(a), abs_ps(b)));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    const __m512 s = _mm512_set1_ps(id);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs), _mm512_cvtsepi32_epi8(round_half_away(_mm512_mul_ps(a, s))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16),
                     _mm512_cvtsepi32_epi8(round_half_away(_mm512_mul_ps(b, s))));
  }
}

void quantize_q8_k_row(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  constexpr int kVecs = kQKK / 16;
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    __m512 v[kVecs];
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < kVecs; ++j) {
      v[j] = _mm512_loadu_ps(x + 16 * j);
      m = _mm512_max_ps(m, abs_ps(v[j]));
    }
    const float amax = _mm512_reduce_max_ps(m);
    if (amax == 0.f) {
      y[i] = BlockQ8_K{};  // d, qs and bsums all zero
      continue;
    }
    // The first element of that magnitude, as the reference's strict '<' scan keeps it.
    float max = 0.f;
    for (int j = 0; j < kVecs; ++j) {
      const __mmask16 hit = _mm512_cmp_ps_mask(abs_ps(v[j]), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hit) {
        max = x[16 * j + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m512 s = _mm512_set1_ps(iscale);
    const __m512i hi = _mm512_set1_epi32(127);
    for (int j = 0; j < kVecs; ++j) {
      // Round half to even (the MXCSR default), as nearest_int's float-adder trick rounds.
      const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v[j], s)), hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16 * j), _mm512_cvtsepi32_epi8(q));
      y[i].bsums[j] = int16_t(_mm512_reduce_add_epi32(q));
    }
    y[i].d = 1.f / iscale;
  }
}

}  // namespace hexe::cpu::avx512

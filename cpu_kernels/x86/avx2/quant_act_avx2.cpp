// AVX2 activation quantisers, byte-identical to the reference (ref/quantize.cpp q_q8_0 and
// q_q8_k) as the AVX-512 ones are: the same float products, the same rounding (half away from
// zero for Q8_0, half to even for Q8_K), the same first-on-ties maximum. Before them the AVX2 tier
// quantised with the scalar reference, which took as long as the Q4_K decode tile itself on a
// 256 KiB matrix (bench_tile, HEXE_CPU_ISA=avx2).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/x86/hsum_epi32.h"

namespace hexe::cpu::avx2 {

namespace {

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), v); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// round(v) with halves away from zero, as std::round, exactly: trunc(v) plus one step toward v's
// sign where the (exact) fractional part is at least one half.
inline __m256i round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 up = _mm256_cmp_ps(abs_ps(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 step = _mm256_or_ps(_mm256_set1_ps(1.f), _mm256_and_ps(v, _mm256_set1_ps(-0.f)));  // +-1
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, step)));
}

// Four vectors of 8 i32 (each within [-128, 127]) -> 32 bytes in element order.
inline void store_32_bytes(__m256i a, __m256i b, __m256i c, __m256i d, int8_t* out) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);  // per lane: a, b / c, d
  const __m256i p = _mm256_packs_epi16(ab, cd);  // dwords: a0 b0 c0 d0 | a1 b1 c1 d1 (4 bytes each)
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

}  // namespace

void quantize_q8_0_row(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      m = _mm256_max_ps(m, abs_ps(v[j]));
    }
    const float d = hmax(m) / 127.f;
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    const __m256 s = _mm256_set1_ps(id);
    store_32_bytes(round_half_away(_mm256_mul_ps(v[0], s)), round_half_away(_mm256_mul_ps(v[1], s)),
                   round_half_away(_mm256_mul_ps(v[2], s)), round_half_away(_mm256_mul_ps(v[3], s)), y[i].qs);
  }
}

void quantize_q8_k_row(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  constexpr int kVecs = kQKK / 8;
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < kVecs; ++j) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + 8 * j)));
    const float amax = hmax(m);
    if (amax == 0.f) {
      y[i] = BlockQ8_K{};  // d, qs and bsums all zero
      continue;
    }
    // The first element of that magnitude, as the reference's strict '<' scan keeps it.
    float max = 0.f;
    for (int j = 0; j < kVecs; ++j) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + 8 * j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (hit) {
        max = x[8 * j + __builtin_ctz(unsigned(hit))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 s = _mm256_set1_ps(iscale);
    const __m256i hi = _mm256_set1_epi32(127);
    for (int j = 0; j < kQKK / 32; ++j) {
      __m256i q[4];
      for (int t = 0; t < 4; ++t)  // round half to even (the MXCSR default), as nearest_int's float-adder trick rounds
        q[t] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * j + 8 * t), s)), hi);
      store_32_bytes(q[0], q[1], q[2], q[3], y[i].qs + 32 * j);
      // bsums of the two 16-value groups: pairs of vectors, each summed across its lanes.
      for (int h = 0; h < 2; ++h) y[i].bsums[2 * j + h] = int16_t(hsum_epi32(_mm256_add_epi32(q[2 * h], q[2 * h + 1])));
    }
    y[i].d = 1.f / iscale;
  }
}

}  // namespace hexe::cpu::avx2

// AVX-512 tiles for float weights (F32; F16 via vcvtph2ps; BF16 by shifting to f32) x float rows,
// 16 lanes, masked tails (no scalar remainder loop).
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/kernels.h"

namespace hexe::cpu {
namespace {

// Horizontal sum (not _mm512_reduce_add_ps: GCC 12's version warns about an undefined operand).
inline float hsum16(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xEE)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <DType W> __m512 load16(const void* w, int64_t i, __mmask16 m);
template <> __m512 load16<DType::F32>(const void* w, int64_t i, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + i);
}
template <> __m512 load16<DType::F16>(const void* w, int64_t i, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i));
}
template <> __m512 load16<DType::BF16>(const void* w, int64_t i, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <DType W, int R>
void rows(int64_t k, const void* w, const float* x, size_t xs, float* y, int64_t ys) {
  __m512 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    const __m512 w0 = load16<W>(w, i, 0xFFFF), w1 = load16<W>(w, i + 16, 0xFFFF);
    for (int r = 0; r < R; ++r) {
      a0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + r * xs + i), a0[r]);
      a1[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + r * xs + i + 16), a1[r]);
    }
  }
  for (; i < k; i += 16) {
    const __mmask16 m = k - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - i)) - 1);
    const __m512 w0 = load16<W>(w, i, m);
    for (int r = 0; r < R; ++r) a0[r] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x + r * xs + i), a0[r]);
  }
  for (int r = 0; r < R; ++r) y[r * ys] = hsum16(_mm512_add_ps(a0[r], a1[r]));
}

// Prefill: 4 weight rows x 4 activation rows, 16 accumulators. Per 16 elements the 4 weight
// vectors are loaded (and widened) once and each of the 4 activation vectors once for 16 FMAs,
// where rows<W, 4> loads 8 activation vectors for 8 FMAs. bench_tile --m 32 on the Zen 4 VM:
// f32 18.4 -> 43.7, bf16 20.9 -> 54.4 GMAC/s a core (the FMA units' rate is about 59); the MoE
// layer's prefill (moe-layer --quant bf16 --tokens 512) 69-76 -> 161 GFLOP/s.
template <DType W>
inline void step4x4(const uint8_t* w, size_t wrb, const float* x, size_t xs, int64_t i, __mmask16 m, __m512 (&acc)[4][4]) {
  __m512 wv[4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) wv[j] = load16<W>(w + j * wrb, i, m);
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + r * xs + i);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_fmadd_ps(wv[j], xv, acc[r][j]);
  }
}

template <DType W>
void block4x4(int64_t k, const uint8_t* w, size_t wrb, const float* x, size_t xs, float* y, int64_t ys) {
  __m512 acc[4][4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) step4x4<W>(w, wrb, x, xs, i, 0xFFFF, acc);
  if (i < k) step4x4<W>(w, wrb, x, xs, i, __mmask16((1u << (k - i)) - 1), acc);
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) y[r * ys + j] = hsum16(acc[r][j]);
}

template <DType W>
void tile(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
          int64_t mr, float* y, int64_t ys) {
  const auto* x = static_cast<const float*>(act);
  const size_t xs = arb / sizeof(float);
  int64_t j0 = 0;
  // Prefill: 4 x 4 blocks, the activation rows past the last 4 one by one; the weight rows past
  // the last 4 (and every row in decode) as before, one weight row against up to 4 activation rows.
  if (mr >= 4)
    for (; j0 + 4 <= nr; j0 += 4) {
      const auto* wj = static_cast<const uint8_t*>(w) + j0 * wrb;
      int64_t i = 0;
      for (; i + 4 <= mr; i += 4) block4x4<W>(k, wj, wrb, x + i * xs, xs, y + i * ys + j0, ys);
      for (int64_t jj = 0; jj < 4 && i < mr; ++jj)
        for (int64_t ii = i; ii < mr; ++ii)
          rows<W, 1>(k, wj + jj * wrb, x + ii * xs, xs, y + ii * ys + j0 + jj, ys);
    }
  for (int64_t j = j0; j < nr; ++j) {
    const void* wj = static_cast<const uint8_t*>(w) + j * wrb;
    int64_t i = 0;
    for (; i + 4 <= mr; i += 4) rows<W, 4>(k, wj, x + i * xs, xs, y + i * ys + j, ys);
    switch (mr - i) {
      case 3: rows<W, 3>(k, wj, x + i * xs, xs, y + i * ys + j, ys); break;
      case 2: rows<W, 2>(k, wj, x + i * xs, xs, y + i * ys + j, ys); break;
      case 1: rows<W, 1>(k, wj, x + i * xs, xs, y + i * ys + j, ys); break;
      default: break;
    }
  }
}

}  // namespace

#define HEXE_FLOAT_TILE(NAME, TYPE)                                                           \
  void NAME(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,     \
            int64_t mr, float* y, int64_t ys) {                                                 \
    tile<TYPE>(k, w, wrb, nr, act, arb, mr, y, ys);                                             \
  }
HEXE_FLOAT_TILE(gemm_tile_f32_avx512, DType::F32)
HEXE_FLOAT_TILE(gemm_tile_f16_avx512, DType::F16)
HEXE_FLOAT_TILE(gemm_tile_bf16_avx512, DType::BF16)
#undef HEXE_FLOAT_TILE

}  // namespace hexe::cpu

// AVX2+FMA tiles for float weights (F32; F16 via F16C; BF16 by shifting to f32) x float rows.
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/x86/hsum_ps.h"

namespace hexe::cpu {
namespace {

template <DType W> __m256 load8(const void* w, int64_t i);
template <> __m256 load8<DType::F32>(const void* w, int64_t i) { return _mm256_loadu_ps(static_cast<const float*>(w) + i); }
template <> __m256 load8<DType::F16>(const void* w, int64_t i) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i)));
}
template <> __m256 load8<DType::BF16>(const void* w, int64_t i) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
template <DType W> float load1(const void* w, int64_t i) {
  if constexpr (W == DType::F32) return static_cast<const float*>(w)[i];
  else if constexpr (W == DType::F16) return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
}

// R activation rows against one weight row; two accumulators per row hide FMA latency. Decode
// prefetches the weights `pf` bytes ahead (0: not), as the quantised AVX2 tiles do (qgemm256.h).
template <DType W, int R>
void rows(int64_t k, const void* w, const float* x, size_t xs, float* y, int64_t ys, int pf) {
  constexpr int64_t kElemBytes = W == DType::F32 ? 4 : 2;
  __m256 a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    if (pf) _mm_prefetch(static_cast<const char*>(w) + i * kElemBytes + pf, _MM_HINT_T0);
    const __m256 w0 = load8<W>(w, i), w1 = load8<W>(w, i + 8);
    for (int r = 0; r < R; ++r) {
      a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * xs + i), a0[r]);
      a1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * xs + i + 8), a1[r]);
    }
  }
  for (; i + 8 <= k; i += 8) {
    const __m256 w0 = load8<W>(w, i);
    for (int r = 0; r < R; ++r) a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * xs + i), a0[r]);
  }
  for (int r = 0; r < R; ++r) {
    float s = hsum_ps(_mm256_add_ps(a0[r], a1[r]));
    for (int64_t t = i; t < k; ++t) s += load1<W>(w, t) * x[r * xs + t];
    y[r * ys] = s;
  }
}

template <DType W>
void tile(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
          int64_t mr, float* y, int64_t ys) {
  const auto* x = static_cast<const float*>(act);
  const size_t xs = arb / sizeof(float);
  const int pf = mr <= 4 ? decode_prefetch_bytes(kAvx2DecodePrefetchBytes, PrefetchOnAmd::On) : 0;
  for (int64_t j = 0; j < nr; ++j) {
    const void* wj = static_cast<const uint8_t*>(w) + j * wrb;
    int64_t i = 0;
    for (; i + 4 <= mr; i += 4) rows<W, 4>(k, wj, x + i * xs, xs, y + i * ys + j, ys, pf);
    switch (mr - i) {
      case 3: rows<W, 3>(k, wj, x + i * xs, xs, y + i * ys + j, ys, pf); break;
      case 2: rows<W, 2>(k, wj, x + i * xs, xs, y + i * ys + j, ys, pf); break;
      case 1: rows<W, 1>(k, wj, x + i * xs, xs, y + i * ys + j, ys, pf); break;
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
HEXE_FLOAT_TILE(gemm_tile_f32_avx2, DType::F32)
HEXE_FLOAT_TILE(gemm_tile_f16_avx2, DType::F16)
HEXE_FLOAT_TILE(gemm_tile_bf16_avx2, DType::BF16)
#undef HEXE_FLOAT_TILE

}  // namespace hexe::cpu

// AVX-512 VNNI Q8_0 x Q8_0 tiles for few activation rows (decode): up to 4 weight rows share each
// activation block's load and scale, two accumulator sets hide the FMA latency. With 4+
// activation rows the shared 256-bit tile (weights unpacked once for 4 activation rows) is used.
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/qgemm256.h"

namespace hexe::cpu {
namespace {

struct DotVnni256 {
  static __m256i dot(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
};

// y[r] = dot(weight row r, activation row) for r < R.
template <int R>
void q8_rows(int64_t nb, const uint8_t* w, size_t wrb, const BlockQ8_0* a, float* y) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  auto step = [&](int64_t b, __m256* acc) {
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[b].qs));
    const float da = f16(a[b].d);
    for (int r = 0; r < R; ++r) {
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(w + size_t(r) * wrb) + b;
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs));
      // |q| (u8) . sign(a, q) (s8) == q . a, the form vpdpbusd takes.
      const __m256i p = DotVnni256::dot(_mm256_abs_epi8(q), _mm256_sign_epi8(av, q));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(da * f16(blk->d)), acc[r]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, acc0);
    step(b + 1, acc1);
  }
  if (b < nb) step(b, acc0);
  for (int r = 0; r < R; ++r) y[r] = hsum(_mm256_add_ps(acc0[r], acc1[r]));
}

}  // namespace

void gemm_tile_q8_0_avx512(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act,
                           size_t arb, int64_t mr, float* y, int64_t ys) {
  if (mr >= 4) {
    tile_loop<LegacyRows, LQ8_0, DotVnni256, kQK>(k, w, wrb, nr, act, arb, mr, y, ys);
    return;
  }
  const int64_t nb = k / kQK;
  const auto* w8 = static_cast<const uint8_t*>(w);
  for (int64_t i = 0; i < mr; ++i) {
    const auto* a = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(act) + size_t(i) * arb);
    float* yi = y + i * ys;
    int64_t j = 0;
    for (; j + 4 <= nr; j += 4) q8_rows<4>(nb, w8 + size_t(j) * wrb, wrb, a, yi + j);
    switch (nr - j) {
      case 3: q8_rows<3>(nb, w8 + size_t(j) * wrb, wrb, a, yi + j); break;
      case 2: q8_rows<2>(nb, w8 + size_t(j) * wrb, wrb, a, yi + j); break;
      case 1: q8_rows<1>(nb, w8 + size_t(j) * wrb, wrb, a, yi + j); break;
      default: break;
    }
  }
}

}  // namespace hexe::cpu

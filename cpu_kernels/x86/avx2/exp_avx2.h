// exp(x) on 8 float lanes for the AVX2 kernels (attention's softmax): the AVX-512 exp_ps's
// polynomial (x86/avx512/exp_avx512.h), with 2^n built in the exponent bits.
#pragma once

#include <immintrin.h>

namespace hexe::cpu::avx2 {

// exp(x) per lane (Cephes expf): x = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-7
// polynomial, times 2^n. Relative error ~1.5e-7 on [-87.3, 88.7]; below -87.3 (and -inf) the
// result is 0, above 88.7 it saturates at e^88.7, as the AVX-512 exp_ps.
inline __m256 exp_ps(__m256 x) {
  const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.72283f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  // 2^n for n in [-126, 128] as 2^a * 2^(n-a), a = n >> 1: both factors normal floats (biased
  // exponents in bits 23..30), where one factor would overflow at n = 128.
  const __m256i ni = _mm256_cvtps_epi32(n), a = _mm256_srai_epi32(ni, 1), b = _mm256_sub_epi32(ni, a);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 ea = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
  const __m256 eb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
  return _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(y, ea), eb), live);
}

}  // namespace hexe::cpu::avx2

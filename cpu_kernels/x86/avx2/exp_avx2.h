// exp(x) on 8 float lanes for the AVX2 kernels (attention's softmax): the AVX-512 exp_ps's
// polynomial (x86/exp_poly.h), with 2^n built in the exponent bits.
#pragma once

#include <immintrin.h>

#include "cpu_kernels/x86/exp_poly.h"

namespace hexe::cpu::avx2 {

// exp(x) per lane (x86/exp_poly.h), times 2^n. Below kExpMin (and -inf) the result is 0, above
// kExpMax it saturates at e^kExpMax, as the AVX-512 exp_ps.
inline __m256 exp_ps(__m256 x) {
  using namespace exp_poly;
  const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(kExpMin), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpMin)), _mm256_set1_ps(kExpMax));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 y = _mm256_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kP[i]));
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

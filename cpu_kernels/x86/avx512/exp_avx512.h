// exp(x) on 16 float lanes, shared by the AVX-512 kernels (attention's softmax, SwiGLU).
#pragma once

#include <immintrin.h>

#include "cpu_kernels/x86/exp_poly.h"

namespace hexe::cpu::avx512 {

// exp(x) per lane (x86/exp_poly.h), times 2^n through vscalefps. Below kExpMin (and -inf) the
// result is 0, above kExpMax it saturates at e^kExpMax.
inline __m512 exp_ps(__m512 x) {
  using namespace exp_poly;
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpMin), _CMP_GE_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpMin)), _mm512_set1_ps(kExpMax));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 y = _mm512_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(kP[i]));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_maskz_scalef_ps(live, y, n);
}

}  // namespace hexe::cpu::avx512

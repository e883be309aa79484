// Scale searches behind the K-quant reference quantisers (GGML's make_qx/make_qkx2_quants).
#pragma once

#include <cstdint>
#include <cstring>

namespace hexe::cpu {

// Round half to even through the float adder (valid for |v| <= 2^22), as GGML's nearest_int.
inline int nearest_int(float v) {
  const float t = v + 12582912.f;
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// Symmetric levels L in [0, 2*nmax) for n values (rmse_type 1: weights x^2, or qw when given);
// returns the scale (values ~ scale * (L - nmax)).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);

// Asymmetric levels L in [0, nmax] with a min: values ~ scale * L - *the_min. Searches nstep+1
// candidate scales (rmin + rdelta*is + nmax)/(max-min) minimising the weighted error.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* laux, float rmin, float rdelta, int nstep,
                       bool use_mad);

}  // namespace hexe::cpu

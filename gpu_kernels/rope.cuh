// Device-side RoPE pieces shared by rope.cu and qkv_rope_store.cu, so both round identically.
#pragma once

namespace hexe::gpu::detail {

// cos/sin of pair i's angle in the CPU reference's (HF's) order: inv_freq = 1 / theta^(2i/rot_dim)
// rounded to float, angle = float(pos) * inv_freq (one rounding), cos/sin through double then rounded.
__device__ __forceinline__ void rope_cos_sin(float pos, int i, int rot_dim, float theta, float* c, float* s) {
  const float base = float(pow(double(theta), double(float(2 * i) / float(rot_dim))));
  const float angle = __fmul_rn(pos, __fdiv_rn(1.0f, base));
  double sd, cd;
  sincos(double(angle), &sd, &cd);
  *c = float(cd);
  *s = float(sd);
}

// The two outputs of rotating (x0, x1); explicit _rn operations so no FMA contraction changes them.
__device__ __forceinline__ float rope_first(float x0, float x1, float c, float s) {
  return __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
}
__device__ __forceinline__ float rope_second(float x0, float x1, float c, float s) {
  return __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
}

}  // namespace hexe::gpu::detail

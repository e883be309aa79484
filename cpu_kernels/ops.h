// Element-wise and row ops of the forward pass. Single row/vector entry points; callers split.
#pragma once

#include <cstdint>

namespace hexe::cpu {

// dst = src / rms(src) * weight (weight may be null: no scale). dst may alias src.
void rms_norm(const float* src, const float* weight, float* dst, int64_t n, float eps);

enum class RopeMode { Neox, Interleaved };
struct RopeParams {
  RopeMode mode = RopeMode::Neox;
  int head_dim = 0;     // elements per head
  int rot_dim = 0;      // leading elements of each head that rotate (== head_dim for full RoPE)
  float theta = 10000.f;
};
// Rotates n_heads heads of x (contiguous, head_dim apart) in place for position pos.
void rope(float* x, int n_heads, int64_t pos, const RopeParams& p);
// The same for q (n_q heads) and then k (n_k heads) at one position, from one cos/sin table:
// exactly rope(q, ...) then rope(k, ...).
void rope_qk(float* q, int n_q, float* k, int n_k, int64_t pos, const RopeParams& p);

// dst[i] = silu(gate[i]) * up[i]. dst may alias gate or up.
void swiglu(const float* gate, const float* up, float* dst, int64_t n);

// In-place numerically stable softmax over n values.
void softmax(float* x, int64_t n);

// The k largest of x[0..n) (ties: lower index first), in descending order.
void top_k(const float* x, int n, int k, int* idx, float* val);

// dst[i] += a * src[i]
void axpy(float a, const float* src, float* dst, int64_t n);

// dot product of two float vectors
float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace hexe::cpu

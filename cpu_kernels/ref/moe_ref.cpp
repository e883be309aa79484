// Scalar MoE reference: per token and slot, float gate/up/down through matmul_ref (no activation
// quantisation), accumulated in slot order.
#include <vector>

#include "cpu_kernels/matmul.h"
#include "cpu_kernels/moe.h"
#include "cpu_kernels/ops.h"

namespace hexe::cpu {

void moe_experts_ref(const MoeParams& p) {
  const int64_t H = p.hidden, F = p.n_ff;
  std::vector<float> g(static_cast<size_t>(F)), u(static_cast<size_t>(F)), d(static_cast<size_t>(H));
  auto mv = [](const void* w, DType t, int64_t n, int64_t k, const float* x, float* y) {
    MatmulParams mp;
    mp.w = w; mp.w_type = t; mp.n = n; mp.k = k;
    mp.x = x; mp.m = 1; mp.x_stride = k; mp.y = y; mp.y_stride = n;
    matmul_ref(mp);
  };
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    float* y = p.y + t * H;
    for (int64_t i = 0; i < H; ++i) y[i] = 0.f;
    for (int k = 0; k < p.top_k; ++k) {
      if (p.ids[t * p.top_k + k] < 0) continue;  // an empty slot
      const ExpertWeights& e = p.experts[p.ids[t * p.top_k + k]];
      mv(e.gate, p.gate_type, F, H, p.x + t * H, g.data());
      mv(e.up, p.up_type, F, H, p.x + t * H, u.data());
      swiglu(g.data(), u.data(), g.data(), F);
      mv(e.down, p.down_type, H, F, g.data(), d.data());
      axpy(p.weights[t * p.top_k + k], d.data(), y, H);
    }
  }
}

}  // namespace hexe::cpu

// Scalar attention reference: full score row, softmax, weighted sum of values, per (query, head).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_kernels/attention.h"

namespace hexe::cpu {

void attention_ref(const AttentionParams& p) {
  const int group = p.n_heads / p.k.n_kv_heads;
  const int dk = p.k.head_dim, dv = p.v.head_dim;
  std::vector<double> s;
  for (int64_t i = 0; i < p.n_q; ++i) {
    const int64_t n_keys = p.q_pos[i] + 1;
    s.assign(size_t(n_keys), 0.0);
    for (int h = 0; h < p.n_heads; ++h) {
      const int kvh = h / group;
      const float* q = p.q + (i * p.n_heads + h) * int64_t(dk);
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_keys; ++t) {
        const float* k = p.k.row(t) + int64_t(kvh) * dk;
        double d = 0;
        for (int e = 0; e < dk; ++e) d += double(q[e]) * k[e];
        s[size_t(t)] = d * p.scale;
        mx = std::max(mx, s[size_t(t)]);
      }
      double sum = 0;
      for (auto& v : s) sum += (v = std::exp(v - mx));
      float* out = p.out + (i * p.n_heads + h) * int64_t(dv);
      for (int e = 0; e < dv; ++e) {
        double acc = 0;
        for (int64_t t = 0; t < n_keys; ++t) acc += s[size_t(t)] * p.v.row(t)[int64_t(kvh) * dv + e];
        out[e] = float(acc / sum);
      }
    }
  }
}

}  // namespace hexe::cpu

// Row ops of the forward pass in portable C++ (loops written with independent partial sums so
// the baseline compiler vectorises them; float order follows HF transformers where it matters).
#include "cpu_kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_kernels/isa.h"

namespace hexe::cpu {
namespace avx512 {
void swiglu(const float* gate, const float* up, float* dst, int64_t n);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += a[i + l] * b[i + l];
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void axpy(float a, const float* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i];
}

// HF: x * rsqrt(mean(x^2) + eps), then * weight, all in float32.
void rms_norm(const float* src, const float* weight, float* dst, int64_t n, float eps) {
  const float mean = dot_f32(src, src, n) / float(n);
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (weight) {
    for (int64_t i = 0; i < n; ++i) dst[i] = weight[i] * (src[i] * scale);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * scale;
  }
}

namespace {

// HF order: inv_freq = 1 / theta^(2i/d) in float32, angle = float32(pos) * inv_freq (one
// rounding), then cos/sin of that float32 angle. cos/sin go through double so they are correctly
// rounded even at positions ~1e5 where the angle is large. c, s: rot_dim / 2 values each.
void rope_table(int64_t pos, const RopeParams& p, float* c, float* s) {
  const int half = p.rot_dim / 2;
  const float fpos = float(pos);
  for (int i = 0; i < half; ++i) {
    const float inv_freq = 1.0f / std::pow(p.theta, float(2 * i) / float(p.rot_dim));
    const float angle = fpos * inv_freq;
    c[i] = float(std::cos(double(angle)));
    s[i] = float(std::sin(double(angle)));
  }
}

void rope_apply(float* x, int n_heads, const RopeParams& p, const float* c, const float* s) {
  const int half = p.rot_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + int64_t(h) * p.head_dim;
    if (p.mode == RopeMode::Neox) {  // pairs (i, i + rot_dim/2)
      for (int i = 0; i < half; ++i) {
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * c[i] - x1 * s[i];
        v[i + half] = x1 * c[i] + x0 * s[i];
      }
    } else {  // pairs (2i, 2i + 1)
      for (int i = 0; i < half; ++i) {
        const float x0 = v[2 * i], x1 = v[2 * i + 1];
        v[2 * i] = x0 * c[i] - x1 * s[i];
        v[2 * i + 1] = x1 * c[i] + x0 * s[i];
      }
    }
  }
}

}  // namespace

void rope(float* x, int n_heads, int64_t pos, const RopeParams& p) { rope_qk(x, n_heads, nullptr, 0, pos, p); }

void rope_qk(float* q, int n_q, float* k, int n_k, int64_t pos, const RopeParams& p) {
  const int half = p.rot_dim / 2;
  thread_local std::vector<float> cs;
  cs.resize(size_t(2 * half));
  rope_table(pos, p, cs.data(), cs.data() + half);
  rope_apply(q, n_q, p, cs.data(), cs.data() + half);
  if (k) rope_apply(k, n_k, p, cs.data(), cs.data() + half);
}

void swiglu(const float* gate, const float* up, float* dst, int64_t n) {
  static const bool fast = int(active_isa()) >= int(Isa::Avx512);  // HEXE_CPU_ISA caps it
  if (fast) return avx512::swiglu(gate, up, dst, n);
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    dst[i] = (g / (1.0f + std::exp(-g))) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float mx = *std::max_element(x, x + n);
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;  // divide, as torch does
}

void top_k(const float* x, int n, int k, int* idx, float* val) {
  k = std::min(k, n);
  thread_local std::vector<int> order;
  order.resize(size_t(n));
  for (int i = 0; i < n; ++i) order[size_t(i)] = i;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [x](int a, int b) {
    return x[a] > x[b] || (x[a] == x[b] && a < b);
  });
  for (int i = 0; i < k; ++i) {
    idx[i] = order[size_t(i)];
    val[i] = x[order[size_t(i)]];
  }
}

}  // namespace hexe::cpu

// Scalar integer dot products of one weight row with one activation row in its paired format
// (Q8_0 for the 32-element formats, Q8_K for the K-quants, floats for F32/F16/BF16).
#include <cstring>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/quant.h"

namespace hexe::cpu {
namespace {

// Weight levels of one 32-block as ints (offset removed for the symmetric formats).
template <class Block>
void legacy_levels(const Block& b, int* q, int offset, bool five_bit) {
  uint32_t qh = 0;
  if constexpr (requires { b.qh; }) std::memcpy(&qh, b.qh, 4);
  for (int j = 0; j < kQK / 2; ++j) {
    int lo = b.qs[j] & 0x0F, hi = b.qs[j] >> 4;
    if (five_bit) {
      lo |= int((qh >> j) & 1) << 4;
      hi |= int((qh >> (j + 16)) & 1) << 4;
    }
    q[j] = lo - offset;
    q[j + kQK / 2] = hi - offset;
  }
}

// Symmetric: w = d*q. Asymmetric (has m): w = d*q + m, so dot = d*da*sum(q a) + m*da*sum(a).
template <class Block>
float dot_legacy(int64_t nb, const Block* w, const BlockQ8_0* a, int offset, bool five_bit) {
  float acc = 0.f;
  int q[kQK];
  for (int64_t i = 0; i < nb; ++i) {
    legacy_levels(w[i], q, offset, five_bit);
    int sumi = 0, suma = 0;
    for (int j = 0; j < kQK; ++j) {
      sumi += q[j] * a[i].qs[j];
      suma += a[i].qs[j];
    }
    const float da = f16_to_f32(a[i].d);
    acc += float(sumi) * (f16_to_f32(w[i].d) * da);
    if constexpr (requires { w[i].m; }) acc += float(suma) * (f16_to_f32(w[i].m) * da);
  }
  return acc;
}

float dot_q8_0(int64_t nb, const BlockQ8_0* w, const BlockQ8_0* a) {
  float acc = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += w[i].qs[j] * a[i].qs[j];
    acc += float(sumi) * (f16_to_f32(w[i].d) * f16_to_f32(a[i].d));
  }
  return acc;
}

// Q4_K/Q5_K: sum_j sc_j * sum(q a) * d*da - dmin*da * sum_j m_j * (bsum of sub-block j).
template <class Block>
float dot_k4(int64_t nb, const Block* w, const BlockQ8_K* a) {
  float acc = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, w[i].scales, &sc, &m);
      const uint8_t* qs = w[i].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int s = 0;
      for (int l = 0; l < 32; ++l) {
        int q = (qs[l] >> shift) & 0xF;
        if constexpr (requires { w[i].qh; }) q |= ((w[i].qh[l] >> j) & 1) << 4;
        s += q * a[i].qs[32 * j + l];
      }
      sumi += sc * s;
      summ += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
    }
    acc += a[i].d * f16_to_f32(w[i].d) * float(sumi) - a[i].d * f16_to_f32(w[i].dmin) * float(summ);
  }
  return acc;
}

// Q6_K: d*da * sum_j sc_j * sum((q - 32) a) over 16 sub-blocks of 16.
float dot_q6_k(int64_t nb, const BlockQ6_K* w, const BlockQ8_K* a) {
  float acc = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    int sumi = 0;
    for (int e = 0; e < kQKK; e += 16) {
      int s = 0;
      for (int l = e; l < e + 16; ++l) {
        // Within each 128-half: quarters 0/1 are the low nibbles of ql[0..32)/ql[32..64),
        // quarters 2/3 their high nibbles; qh holds 2 bits per quarter.
        const int half = l / 128, r = l % 128, quarter = r / 32, pos = r % 32;
        const uint8_t* ql = w[i].ql + 64 * half;
        const uint8_t qh = w[i].qh[32 * half + pos];
        const uint8_t byte = ql[pos + ((quarter & 1) ? 32 : 0)];
        const int nib = (quarter >= 2) ? (byte >> 4) : (byte & 0xF);
        const int q = (nib | (((qh >> (2 * quarter)) & 3) << 4)) - 32;
        s += q * a[i].qs[l];
      }
      sumi += w[i].scales[e / 16] * s;
    }
    acc += a[i].d * f16_to_f32(w[i].d) * float(sumi);
  }
  return acc;
}

float dot_float(DType w, int64_t k, const void* w_row, const float* x) {
  float acc = 0.f;
  for (int64_t i = 0; i < k; ++i) {
    float wv;
    if (w == DType::F32) wv = static_cast<const float*>(w_row)[i];
    else if (w == DType::F16) wv = f16_to_f32(static_cast<const uint16_t*>(w_row)[i]);
    else wv = bf16_to_f32(static_cast<const uint16_t*>(w_row)[i]);
    acc += wv * x[i];
  }
  return acc;
}

}  // namespace

float vec_dot_ref(DType w, int64_t k, const void* w_row, const void* act_row) {
  const auto* a8 = static_cast<const BlockQ8_0*>(act_row);
  const auto* ak = static_cast<const BlockQ8_K*>(act_row);
  const int64_t nb32 = k / kQK, nb256 = k / kQKK;
  switch (w) {
    case DType::F32: case DType::F16: case DType::BF16:
      return dot_float(w, k, w_row, static_cast<const float*>(act_row));
    case DType::Q4_0: return dot_legacy(nb32, static_cast<const BlockQ4_0*>(w_row), a8, 8, false);
    case DType::Q4_1: return dot_legacy(nb32, static_cast<const BlockQ4_1*>(w_row), a8, 0, false);
    case DType::Q5_0: return dot_legacy(nb32, static_cast<const BlockQ5_0*>(w_row), a8, 16, true);
    case DType::Q5_1: return dot_legacy(nb32, static_cast<const BlockQ5_1*>(w_row), a8, 0, true);
    case DType::Q8_0: return dot_q8_0(nb32, static_cast<const BlockQ8_0*>(w_row), a8);
    case DType::Q4_K: return dot_k4(nb256, static_cast<const BlockQ4_K*>(w_row), ak);
    case DType::Q5_K: return dot_k4(nb256, static_cast<const BlockQ5_K*>(w_row), ak);
    case DType::Q6_K: return dot_q6_k(nb256, static_cast<const BlockQ6_K*>(w_row), ak);
    default: return 0.f;  // not computable: never dispatched here
  }
}

}  // namespace hexe::cpu

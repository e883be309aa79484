// The scalar tier's tiles for the Rows16 layout (repack.h): the same integer dot products and
// float order as vec_dot_ref, reading the interleaved bytes. The truth the SIMD Rows16 tiles are
// held to, besides the GGUF-layout reference on the original rows.
#include <cstring>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/repack.h"

namespace hexe::cpu {
namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Row r of the group at g (q8_0): sum_b float(sum q*a) * (d * da), as dot_q8_0.
float dot_q8_0_rows16(int64_t nb, const uint8_t* g, int r, const BlockQ8_0* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = g + (b / 2) * 1088;
    const uint8_t* q = pair + (b % 2) * 512;
    int sumi = 0;
    for (int c = 0; c < 8; ++c)
      for (int i = 0; i < 4; ++i) sumi += int(int8_t(q[c * 64 + r * 4 + i] ^ 0x80)) * a[b].qs[4 * c + i];
    acc += float(sumi) * (f16_at(pair + 1024 + (b % 2) * 32 + r * 2) * f16_to_f32(a[b].d));
  }
  return acc;
}

// Bit `lane` (0..63) of the little-endian 64-bit byte mask at mask.
int mask_bit(const uint8_t* mask, int lane) { return mask[lane / 8] >> (lane % 8) & 1; }

// Row r of the group at g (q4_0, q4_1, q5_0, q5_1): sum_b float(sum (q - offset) a) * (d * da)
// [+ float(sum a) * (m * da)], as dot_legacy.
template <DType W>
float dot_legacy_rows16(int64_t nb, const uint8_t* g, int r, const BlockQ8_0* a) {
  constexpr Rows16Legacy L = rows16_legacy(W);
  float acc = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = g + (b / 2) * L.pair_bytes;
    const int h = int(b % 2);
    const uint8_t* q = pair + L.line(h, 0);
    int sumi = 0, suma = 0;
    for (int c = 0; c < 4; ++c)
      for (int i = 0; i < 4; ++i) {
        const uint8_t v = q[c * 64 + r * 4 + i];
        int lo = v & 15, hi = v >> 4;
        if constexpr (L.five) {
          const int bit = r * 4 + i;
          lo |= mask_bit(pair + L.mask(h, c, 0), bit) << 4;
          hi |= mask_bit(pair + L.mask(h, c, 1), bit) << 4;
        }
        const int a_lo = a[b].qs[4 * c + i], a_hi = a[b].qs[16 + 4 * c + i];
        sumi += (lo - L.offset) * a_lo + (hi - L.offset) * a_hi;
        suma += a_lo + a_hi;
      }
    const float da = f16_to_f32(a[b].d);
    acc += float(sumi) * (f16_at(pair + L.d + h * 32 + r * 2) * da);
    if constexpr (L.m != 0) acc += float(suma) * (f16_at(pair + L.m + h * 32 + r * 2) * da);
  }
  return acc;
}

// Row r (q4_K, or q5_K with its 5th-bit plane), as dot_k4.
template <bool kFive>
float dot_k4_rows16(int64_t nb, const uint8_t* g, int r, const BlockQ8_K* a) {
  const size_t sb_bytes = rows16_group_bytes(kFive ? DType::Q5_K : DType::Q4_K, kQKK);
  float acc = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = g + b * sb_bytes;
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      const int p = j / 2, shift = 4 * (j % 2);
      int s = 0;
      for (int l = 0; l < 32; ++l) {
        const int c = l / 4, lane = r * 4 + l % 4;
        int q = (o[k4_rows16_line(kFive, p, c) + lane] >> shift) & 0xF;
        if constexpr (kFive) q |= mask_bit(o + q5k_rows16_mask(p, c, j % 2), lane) << 4;
        s += q * a[b].qs[32 * j + l];
      }
      sumi += rows16_q4k_scale(o, j, r) * s;
      summ += rows16_q4k_min(o, j, r) * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    acc += a[b].d * f16_at(o + r * 2) * float(sumi) - a[b].d * f16_at(o + 32 + r * 2) * float(summ);
  }
  return acc;
}

// Row r (q6_K), as dot_q6_k: the 6-bit level of column 128h + 32t + 4c + i from the three
// bytes of (h, c) (repack.h), sub-block sums scaled in integers, one float step per block.
float dot_q6_K_rows16(int64_t nb, const uint8_t* g, int r, const BlockQ8_K* a) {
  float acc = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = g + b * kQ6KRows16Bytes;
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      const int h = j / 8, t = (j % 8) / 2;
      int s = 0;
      for (int l = 0; l < 16; ++l) {
        const int c = 4 * (j % 2) + l / 4, i = l % 4;
        const uint8_t* v = o + q6k_rows16_triple(h, c) + r * 4 + i;
        const int nib = (v[(t % 2) * 64] >> (4 * (t / 2))) & 0xF;
        const int q = (nib | (((v[128] >> (2 * t)) & 3) << 4)) - 32;
        s += q * a[b].qs[128 * h + 32 * t + 4 * c + i];
      }
      sumi += int(int8_t(o[q6k_rows16_scales(j) + r])) * s;
    }
    acc += a[b].d * f16_at(o + kQ6KRows16D + r * 2) * float(sumi);
  }
  return acc;
}

template <DType W>
void tile_rows16_ref(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                     int64_t mr, float* y, int64_t ys) {
  const int64_t nb = k / int64_t(info(W).block_elems);
  for (int64_t j = 0; j < nr; ++j) {
    const uint8_t* g = static_cast<const uint8_t*>(w) + size_t(j / kRows16) * gstride;
    for (int64_t i = 0; i < mr; ++i) {
      const void* a = static_cast<const uint8_t*>(act) + i * arb;
      if constexpr (W == DType::Q8_0)
        y[i * ys + j] = dot_q8_0_rows16(nb, g, int(j % kRows16), static_cast<const BlockQ8_0*>(a));
      else if constexpr (W == DType::Q4_0 || W == DType::Q4_1 || W == DType::Q5_0 || W == DType::Q5_1)
        y[i * ys + j] = dot_legacy_rows16<W>(nb, g, int(j % kRows16), static_cast<const BlockQ8_0*>(a));
      else if constexpr (W == DType::Q4_K || W == DType::Q5_K)
        y[i * ys + j] = dot_k4_rows16<W == DType::Q5_K>(nb, g, int(j % kRows16), static_cast<const BlockQ8_K*>(a));
      else
        y[i * ys + j] = dot_q6_K_rows16(nb, g, int(j % kRows16), static_cast<const BlockQ8_K*>(a));
    }
  }
}

}  // namespace

GemmKernel gemm_kernel_rows16_ref(DType w) {
  switch (w) {
    case DType::Q8_0: return {tile_rows16_ref<DType::Q8_0>, "scalar/q8_0/rows16", nullptr, kQK};
    case DType::Q4_0: return {tile_rows16_ref<DType::Q4_0>, "scalar/q4_0/rows16", nullptr, kQK};
    case DType::Q4_1: return {tile_rows16_ref<DType::Q4_1>, "scalar/q4_1/rows16", nullptr, kQK};
    case DType::Q5_0: return {tile_rows16_ref<DType::Q5_0>, "scalar/q5_0/rows16", nullptr, kQK};
    case DType::Q5_1: return {tile_rows16_ref<DType::Q5_1>, "scalar/q5_1/rows16", nullptr, kQK};
    case DType::Q4_K: return {tile_rows16_ref<DType::Q4_K>, "scalar/q4_K/rows16", nullptr, kQKK};
    case DType::Q5_K: return {tile_rows16_ref<DType::Q5_K>, "scalar/q5_K/rows16", nullptr, kQKK};
    case DType::Q6_K: return {tile_rows16_ref<DType::Q6_K>, "scalar/q6_K/rows16", nullptr, kQKK};
    default: return {nullptr, nullptr, "no rows16 layout for this format", 1};
  }
}

}  // namespace hexe::cpu

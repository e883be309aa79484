// Load-time repack of GGUF Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K rows into the Rows16 decode layout (see repack.h).
#include "cpu_kernels/repack.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "cpu_kernels/blocks.h"

namespace hexe::cpu {
namespace {

constexpr size_t kQ8PairBytes = 2 * 16 * kQK + 2 * 16 * 2;           // 1088
static_assert(rows16_legacy(DType::Q4_0).pair_bytes == 32 * sizeof(BlockQ4_0) &&
              rows16_legacy(DType::Q4_1).pair_bytes == 32 * sizeof(BlockQ4_1) &&
              rows16_legacy(DType::Q5_0).pair_bytes == 32 * sizeof(BlockQ5_0) &&
              rows16_legacy(DType::Q5_1).pair_bytes == 32 * sizeof(BlockQ5_1));
static_assert(rows16_legacy(DType::Q4_1).pair_bytes % 64 == 0 && rows16_legacy(DType::Q5_0).pair_bytes % 64 == 0 &&
              rows16_legacy(DType::Q5_1).pair_bytes % 64 == 0 && rows16_legacy(DType::Q4_0).pair_bytes % 64 == 0);
constexpr size_t kQ4KBlockBytes = kQ4KRows16Bytes;                      // the GGUF's 16 x 144
constexpr size_t kQ5KBlockBytes = kQ5KRows16Bytes;                      // the GGUF's 16 x 176
static_assert(kQ4KBlockBytes == 16 * sizeof(BlockQ4_K) && kQ5KBlockBytes == 16 * sizeof(BlockQ5_K));
constexpr size_t kQ6KBlockBytes = kQ6KRows16Bytes;
static_assert(kQ6KBlockBytes == 3392 && q6k_rows16_chunk(2, 0) == kQ6KRows16D);  // 16 x 210 GGUF bytes, in 64-byte lines
static_assert(kQ8PairBytes % 64 == 0 && kQ5KBlockBytes % 64 == 0 && kQ4KBlockBytes % 64 == 0 && kQ6KBlockBytes % 64 == 0);

void pack_q8_0_group(int64_t rows, int64_t k, const uint8_t* src, size_t srb, uint8_t* dst) {
  const int64_t nb = k / kQK;
  std::memset(dst, 0, rows16_group_bytes(DType::Q8_0, k));
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* pair = dst + size_t(b / 2) * kQ8PairBytes;
    uint8_t* q = pair + (b % 2) * 512;
    uint8_t* d = pair + 1024 + (b % 2) * 32;
    for (int64_t r = 0; r < kRows16; ++r) {
      if (r >= rows) {  // padding row: q = 0 (stored 0x80), d = 0
        for (int c = 0; c < 8; ++c) std::memset(q + c * 64 + r * 4, 0x80, 4);
        continue;
      }
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(src + size_t(r) * srb) + b;
      for (int c = 0; c < 8; ++c)
        for (int i = 0; i < 4; ++i) q[c * 64 + r * 4 + i] = uint8_t(blk->qs[4 * c + i]) ^ 0x80;
      std::memcpy(d + r * 2, &blk->d, 2);
    }
  }
}

// Sets bit `lane` of a little-endian 64-bit byte mask (Q5_0/Q5_1/Q5_K: lane r*4 + i of a nibble line).
void set_mask_bit(uint8_t* mask, int lane) { mask[lane / 8] |= uint8_t(1u << (lane % 8)); }

// Q4_0, Q4_1, Q5_0, Q5_1: the nibble lines, the 5th bits as byte masks over them, d and m.
template <class Block>
void pack_legacy_group(DType t, int64_t rows, int64_t k, const uint8_t* src, size_t srb, uint8_t* dst) {
  constexpr bool kFive = requires(Block b) { b.qh; };
  const Rows16Legacy L = rows16_legacy(t);
  const int64_t nb = k / kQK;
  std::memset(dst, 0, rows16_group_bytes(t, k));  // padding rows and block: q = 0, d = m = 0
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* pair = dst + size_t(b / 2) * L.pair_bytes;
    const int h = int(b % 2);
    for (int64_t r = 0; r < std::min<int64_t>(rows, kRows16); ++r) {
      const auto* blk = reinterpret_cast<const Block*>(src + size_t(r) * srb) + b;
      for (int c = 0; c < 4; ++c) std::memcpy(pair + L.line(h, c) + r * 4, blk->qs + 4 * c, 4);
      std::memcpy(pair + L.d + h * 32 + r * 2, &blk->d, 2);
      if constexpr (requires { blk->m; }) std::memcpy(pair + L.m + h * 32 + r * 2, &blk->m, 2);
      if constexpr (kFive) {
        uint32_t qh;
        std::memcpy(&qh, blk->qh, 4);
        for (int u = 0; u < 2; ++u)
          for (int c = 0; c < 4; ++c) {
            for (int i = 0; i < 4; ++i)
              if (qh >> (16 * u + 4 * c + i) & 1) set_mask_bit(pair + L.mask(h, c, u), int(r) * 4 + i);
          }
      }
    }
  }
}

// Stores 6-bit value v (0..127) of a Q4_K group's scales or mins: low nibble into lo[v % 64]
// (bits 4 (v / 64) ..), top 2 bits into hi[v % 32] (bits 2 (v / 32) ..). See repack.h.
void put6(uint8_t* lo, uint8_t* hi, int v, uint8_t value) {
  lo[v % 64] = uint8_t(lo[v % 64] | (value & 15) << (4 * (v / 64)));
  hi[v % 32] = uint8_t(hi[v % 32] | (value >> 4) << (2 * (v / 32)));
}

uint8_t get6(const uint8_t* lo, const uint8_t* hi, int v) {
  return uint8_t((lo[v % 64] >> (4 * (v / 64)) & 15) | (hi[v % 32] >> (2 * (v / 32)) & 3) << 4);
}

// Q4_K and Q5_K: the same super-block head and nibble lines; Q5_K puts a line of 5th-bit byte masks
// before each four of them.
template <class Block>
void pack_k4_group(DType t, int64_t rows, int64_t k, const uint8_t* src, size_t srb, uint8_t* dst) {
  constexpr bool kFive = requires(Block b) { b.qh; };
  const int64_t nb = k / kQKK;
  const size_t sb_bytes = rows16_group_bytes(t, kQKK);
  std::memset(dst, 0, rows16_group_bytes(t, k));
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = dst + size_t(b) * sb_bytes;
    for (int64_t r = 0; r < std::min<int64_t>(rows, kRows16); ++r) {
      const auto* blk = reinterpret_cast<const Block*>(src + size_t(r) * srb) + b;
      std::memcpy(o + r * 2, &blk->d, 2);
      std::memcpy(o + 32 + r * 2, &blk->dmin, 2);
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        k4_scale_min(j, blk->scales, &sc, &m);
        put6(o + 64, o + 192, j * 16 + int(r), sc);
        put6(o + 128, o + 224, (j / 2) * 32 + int(r) * 2 + j % 2, m);
      }
      for (int p = 0; p < 4; ++p)
        for (int c = 0; c < 8; ++c) {
          std::memcpy(o + k4_rows16_line(kFive, p, c) + r * 4, blk->qs + 32 * p + 4 * c, 4);
          if constexpr (kFive)
            for (int h = 0; h < 2; ++h)
              for (int i = 0; i < 4; ++i)
                if (blk->qh[4 * c + i] >> (2 * p + h) & 1) set_mask_bit(o + q5k_rows16_mask(p, c, h), int(r) * 4 + i);
        }
    }
  }
}

// Q6_K: the GGUF bytes, moved (the kernel splits nibbles and 2-bit fields as the GGUF kernel does).
void pack_q6_K_group(int64_t rows, int64_t k, const uint8_t* src, size_t srb, uint8_t* dst) {
  const int64_t nb = k / kQKK;
  std::memset(dst, 0, rows16_group_bytes(DType::Q6_K, k));
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = dst + size_t(b) * kQ6KBlockBytes;
    for (int64_t r = 0; r < std::min<int64_t>(rows, kRows16); ++r) {
      const auto* blk = reinterpret_cast<const BlockQ6_K*>(src + size_t(r) * srb) + b;
      std::memcpy(o + kQ6KRows16D + r * 2, &blk->d, 2);
      for (int j = 0; j < 16; ++j) o[q6k_rows16_scales(j) + r] = uint8_t(blk->scales[j]);
      for (int h = 0; h < 2; ++h)
        for (int c = 0; c < 8; ++c) {
          uint8_t* v = o + q6k_rows16_triple(h, c) + r * 4;
          std::memcpy(v, blk->ql + 64 * h + 4 * c, 4);
          std::memcpy(v + 64, blk->ql + 64 * h + 32 + 4 * c, 4);
          std::memcpy(v + 128, blk->qh + 32 * h + 4 * c, 4);
        }
    }
  }
}

}  // namespace

const char* layout_name(WeightLayout l) { return l == WeightLayout::Rows16 ? "rows16" : "gguf"; }

uint8_t rows16_q4k_scale(const uint8_t* sb, int j, int r) { return get6(sb + 64, sb + 192, j * 16 + r); }
uint8_t rows16_q4k_min(const uint8_t* sb, int j, int r) { return get6(sb + 128, sb + 224, (j / 2) * 32 + r * 2 + j % 2); }

bool legacy_nibbles(DType t) { return t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q5_0 || t == DType::Q5_1; }

bool rows16_supported(DType t) {
  return t == DType::Q8_0 || legacy_nibbles(t) || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
}

size_t rows16_group_bytes(DType t, int64_t k) {
  if (t == DType::Q8_0) return size_t((k / kQK + 1) / 2) * kQ8PairBytes;
  if (legacy_nibbles(t)) return size_t((k / kQK + 1) / 2) * rows16_legacy(t).pair_bytes;
  return size_t(k / kQKK) * (t == DType::Q6_K ? kQ6KBlockBytes : t == DType::Q5_K ? kQ5KBlockBytes : kQ4KBlockBytes);
}

int64_t rows16_col_align(DType t) { return t == DType::Q8_0 || legacy_nibbles(t) ? 2 * kQK : kQKK; }

size_t rows16_col_offset(DType t, int64_t c0) {
  if (t == DType::Q8_0) return size_t(c0 / (2 * kQK)) * kQ8PairBytes;
  if (legacy_nibbles(t)) return size_t(c0 / (2 * kQK)) * rows16_legacy(t).pair_bytes;
  return size_t(c0 / kQKK) * rows16_group_bytes(t, kQKK);
}

void PackedWeights::Free::operator()(uint8_t* p) const { std::free(p); }

void repack_rows16_into(DType t, int64_t rows, int64_t k, const void* src, size_t srb, uint8_t* dst) {
  const size_t gb = rows16_group_bytes(t, k);
  const auto* s = static_cast<const uint8_t*>(src);
  for (int64_t r0 = 0, g = 0; r0 < rows; r0 += kRows16, ++g) {
    const int64_t n = std::min<int64_t>(kRows16, rows - r0);
    uint8_t* out = dst + size_t(g) * gb;
    if (t == DType::Q8_0) pack_q8_0_group(n, k, s + size_t(r0) * srb, srb, out);
    else if (t == DType::Q4_0) pack_legacy_group<BlockQ4_0>(t, n, k, s + size_t(r0) * srb, srb, out);
    else if (t == DType::Q4_1) pack_legacy_group<BlockQ4_1>(t, n, k, s + size_t(r0) * srb, srb, out);
    else if (t == DType::Q5_0) pack_legacy_group<BlockQ5_0>(t, n, k, s + size_t(r0) * srb, srb, out);
    else if (t == DType::Q5_1) pack_legacy_group<BlockQ5_1>(t, n, k, s + size_t(r0) * srb, srb, out);
    else if (t == DType::Q6_K) pack_q6_K_group(n, k, s + size_t(r0) * srb, srb, out);
    else if (t == DType::Q5_K) pack_k4_group<BlockQ5_K>(t, n, k, s + size_t(r0) * srb, srb, out);
    else pack_k4_group<BlockQ4_K>(t, n, k, s + size_t(r0) * srb, srb, out);
  }
}

PackedWeights repack_for_decode(DType t, int64_t rows, int64_t k, const void* src, size_t srb) {
  if (!rows16_supported(t))
    throw std::invalid_argument("repack_for_decode: format " + std::string(dtype_name(t)) +
                                " has no rows16 layout (expected q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K or q6_K)");
  const int64_t blk = int64_t(info(t).block_elems);
  if (k <= 0 || k % blk != 0 || rows < 0)
    throw std::invalid_argument("repack_for_decode: " + std::string(dtype_name(t)) + " k=" + std::to_string(k) +
                                " rows=" + std::to_string(rows) + " (k must be a positive multiple of " +
                                std::to_string(blk) + ")");
  PackedWeights pw;
  const int64_t groups = (rows + kRows16 - 1) / kRows16;
  pw.bytes_ = rows16_group_bytes(t, k) * size_t(groups);
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(pw.bytes_, 64)));
  if (!buf) throw std::bad_alloc();
  pw.buf_.reset(buf);
  repack_rows16_into(t, rows, k, src, srb, buf);
  pw.view_ = {t, WeightLayout::Rows16, buf, rows16_group_bytes(t, k), rows, k};
  return pw;
}

}  // namespace hexe::cpu

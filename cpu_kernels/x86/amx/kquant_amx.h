// The AMX-INT8 prefill driver the K-quant tiles share (Q4_K and Q6_K weights in the Rows16 layout
// x Q8_K activations, m >= 16 activation rows). Included by the format files only (AMX flags).
//
// The formats fold their per-sub-block scales into the weights: each weight becomes an integer
// w' (Q4_K: q * sc, 0..945; Q6_K: sc * (q - 32), -4096..4064) that does not fit a byte, so it is
// split into a low byte (unsigned, 0..255) and a high byte (signed) and the tile unit computes
// C_lo = A . lo (TDPBSUD) and C_hi = A . hi (TDPBSSD) over a whole 256-column super-block:
// sum_k a_k w'_k = C_lo + 256 C_hi, exact in int32, with one float epilogue per super-block
// (the earlier Q4_K tile scaled a K = 32 C tile per 32-column sub-block: 8 trips through memory
// per super-block, the tile unit mostly idle; a K = 32 TDPBSUD costs as much as a K = 64 one).
//
// Per 16-row weight group, each super-block is prepared once (AVX-512: levels, vpmaddubsw by the
// row's scale, the bytes split with vpermt2b) into 8 KiB of B tiles: 4 chunks of 64 columns, each
// a low-byte and a high-byte tile of 16 rows x 64 bytes ([kk][4n + i] = column 4kk + i of weight
// row n). Every 16-row activation tile of the call then runs against them, two at a time:
//   A  (tmm0/tmm1): 16 activation rows x 64 int8 (columns 64u.. of the super-block), copied once
//                   per call into aligned 1 KiB tiles.
//   B  (tmm2/tmm3): low and high bytes of chunk u.
//   C  (tmm4-7):    C_lo, C_hi of two activation row tiles, accumulated over the 4 chunks.
// The C tiles go through a buffer to the format's epilogue (float accumulators per row tile,
// across the group's super-blocks). The tile unit and the AVX-512 code did not overlap on the
// machines measured (a software-pipelined order, the next batch's TMUL work issued before this
// one's epilogue, measured 8% slower), so the batches simply run in order.
//
// Ragged edges: m not a multiple of 16: the last row tile is the last 16 rows (overlapping; only
// its new rows are stored); n not a multiple of 16: the group's padding rows are zero in Rows16
// and their outputs are masked off. Weights of the next group are prefetched (to L2) during the
// current one's tile work: without it each group reached the tile as a burst of DRAM misses.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/amx/amx_tiles.h"

namespace hexe::cpu::amx {

inline constexpr size_t kKqChunkProducts = 2048;  // B tiles of one 64-column chunk: low, high bytes
inline constexpr size_t kKqSbProducts = 4 * kKqChunkProducts;

// vpermt2b index (bit 6: second operand) of the low product bytes: per dword d, bytes 0 and 2 of
// the even-column products (pe) interleaved with those of the odd-column products (po); +1 gives
// the high bytes.
alignas(64) inline constexpr std::array<uint8_t, 64> kInterleaveLo = [] {
  std::array<uint8_t, 64> a{};
  for (int d = 0; d < 16; ++d) {
    a[4 * d + 0] = uint8_t(4 * d);
    a[4 * d + 1] = uint8_t(64 + 4 * d);
    a[4 * d + 2] = uint8_t(4 * d + 2);
    a[4 * d + 3] = uint8_t(64 + 4 * d + 2);
  }
  return a;
}();

// pe / po: int16 products of the even / odd columns of each 4-column quad (one dword per weight
// row); stores their low bytes and high bytes in column order as one B tile row each.
inline void store_split(__m512i pe, __m512i po, __m512i idx_lo, __m512i idx_hi, uint8_t* lo_row, uint8_t* hi_row) {
  _mm512_store_si512(lo_row, _mm512_permutex2var_epi8(pe, idx_lo, po));
  _mm512_store_si512(hi_row, _mm512_permutex2var_epi8(pe, idx_hi, po));
}

// Activation side of one 16-row tile: its A tiles ([super-block][chunk] x 1 KiB), d_a per (row,
// super-block), the format's integers per (row, super-block) (rows nb * Format::kExtra apart),
// and its accumulators.
struct KqRowTile {
  const uint8_t* act;
  const float* da;
  const int32_t* extra;
  float* acc;
};

namespace kq_detail {

inline void load_config_k64() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  __asm__ volatile("" : : "m"(c));  // GCC 12 does not see ldtilecfg read c and may drop the stores
  _tile_loadconfig(&c);
}

// TMUL work of one super-block for one row tile (C tiles 4/5) or two (t1 not null: 6/7 too),
// against the B tiles 2 (low bytes) and 3 (high bytes) of each chunk. GCC's tile intrinsics need
// literal tile numbers, hence a macro for one row tile's part.
#define HEXE_KQ_ROW_TILE(a, c_lo, c_hi, a_tiles) \
  do {                                            \
    _tile_loadd(a, a_tiles, 64);                  \
    _tile_dpbsud(c_lo, a, 2);                     \
    _tile_dpbssd(c_hi, a, 3);                     \
  } while (0)
inline void issue(size_t a_off, const uint8_t* prod, const KqRowTile& t0, const KqRowTile* t1, GroupPrefetch& pf) {
  _tile_zero(4); _tile_zero(5);
  if (t1) { _tile_zero(6); _tile_zero(7); }
  for (int u = 0; u < 4; ++u) {
    pf.step();
    _tile_loadd(2, prod + u * kKqChunkProducts, 64);
    _tile_loadd(3, prod + u * kKqChunkProducts + 1024, 64);
    HEXE_KQ_ROW_TILE(0, 4, 5, t0.act + a_off + 1024 * u);
    if (t1) HEXE_KQ_ROW_TILE(1, 6, 7, t1->act + a_off + 1024 * u);
  }
}
#undef HEXE_KQ_ROW_TILE

// C_lo then C_hi of the first row tile at buf, of the second at buf + 512.
inline void store_c(bool pair, int32_t* buf) {
  _tile_stored(4, buf, 64);
  _tile_stored(5, buf + 256, 64);
  if (pair) {
    _tile_stored(6, buf + 512, 64);
    _tile_stored(7, buf + 768, 64);
  }
}

template <class T>
T* aligned64(std::vector<uint8_t>& v, size_t bytes) {
  if (v.size() < bytes + 64) v.resize(bytes + 64);
  return reinterpret_cast<T*>(v.data() + (64 - reinterpret_cast<uintptr_t>(v.data()) % 64) % 64);
}

}  // namespace kq_detail

// Format (see gemm_q4_k_amx.cpp, gemm_q6_k_amx.cpp):
//   kSbBytes                  bytes of one super-block of a Rows16 group
//   kExtra                    int32 per (activation row, super-block) the epilogue reads
//   Meta                      per super-block, filled by prepare
//   act_extra(block, out)     the kExtra integers of one activation super-block
//   prepare(sb, prod, meta)   the super-block's 4 chunks of low/high B tiles, and its Meta
//   epilogue(c, meta, da, extra, nb, acc)
//                             acc[r][0..16) += the super-block's sums of row r (c: C_lo, C_hi)
// k a multiple of 256; mr >= 16.
template <class Format>
void kquant_amx(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb, int64_t mr,
                float* y, int64_t ys) {
  using namespace kq_detail;
  const int64_t nb = k / kQKK;
  const auto* a8 = static_cast<const uint8_t*>(act);
  const auto* w8 = static_cast<const uint8_t*>(w);
  const int64_t n_mt = (mr + 15) / 16;
  const int64_t n_groups = (nr + 15) / 16;
  thread_local std::vector<float> da_buf;
  thread_local std::vector<int32_t> extra_buf;
  thread_local std::vector<uint8_t> prod_store, acc_store, a_store;
  thread_local std::vector<KqRowTile> tiles;
  if (da_buf.size() < size_t(mr * nb)) da_buf.resize(size_t(mr * nb));
  if (extra_buf.size() < size_t(mr * nb * Format::kExtra)) extra_buf.resize(size_t(mr * nb * Format::kExtra));
  for (int64_t i = 0; i < mr; ++i) {
    const auto* ab = reinterpret_cast<const BlockQ8_K*>(a8 + size_t(i) * arb);
    for (int64_t b = 0; b < nb; ++b) {
      da_buf[size_t(i * nb + b)] = ab[b].d;
      Format::act_extra(ab[b], extra_buf.data() + (i * nb + b) * Format::kExtra);
    }
  }
  uint8_t* prod = aligned64<uint8_t>(prod_store, kKqSbProducts);
  // The activation quants again as A tiles, [row tile][super-block][chunk] x 16 rows x 64 bytes:
  // loaded with a 64-byte stride from aligned lines (in place they are 292-byte blocks apart,
  // each row split over two lines: the tile loads took a fifth longer).
  uint8_t* a_tiles = aligned64<uint8_t>(a_store, size_t(n_mt) * size_t(nb) * 4096);
  float* accbuf = aligned64<float>(acc_store, size_t(n_mt) * 256 * sizeof(float));
  auto m0_of = [&](int64_t t) { return std::min(16 * t, mr - 16); };
  tiles.resize(size_t(n_mt));
  for (int64_t t = 0; t < n_mt; ++t) {
    uint8_t* at = a_tiles + size_t(t) * size_t(nb) * 4096;
    for (int r = 0; r < 16; ++r) {
      const auto* ab = reinterpret_cast<const BlockQ8_K*>(a8 + size_t(m0_of(t) + r) * arb);
      for (int64_t b = 0; b < nb; ++b)
        for (int u = 0; u < 4; ++u)
          _mm512_store_si512(at + size_t(b) * 4096 + u * 1024 + r * 64, _mm512_loadu_si512(ab[b].qs + 64 * u));
    }
    tiles[size_t(t)] = KqRowTile{at, da_buf.data() + m0_of(t) * nb, extra_buf.data() + m0_of(t) * nb * Format::kExtra,
                                 accbuf + t * 256};
  }
  alignas(64) int32_t buf[1024];
  typename Format::Meta meta;
  load_config_k64();
  GroupPrefetch pf;
  const int64_t per_sb = (n_mt + 1) / 2;  // batches per super-block: row tiles in pairs
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* grp = w8 + size_t(g) * gstride;
    pf.reset(g + 1 < n_groups ? grp + gstride : nullptr, size_t(nb) * Format::kSbBytes, nb * per_sb * 4);
    std::memset(accbuf, 0, size_t(n_mt) * 256 * sizeof(float));
    for (int64_t b = 0; b < nb; ++b) {
      Format::prepare(grp + size_t(b) * Format::kSbBytes, prod, meta);
      const size_t a_off = size_t(b) * 4096;
      for (int64_t t = 0; t < n_mt; t += 2) {
        const KqRowTile& t0 = tiles[size_t(t)];
        const bool pair = t + 1 < n_mt;
        issue(a_off, prod, t0, pair ? &tiles[size_t(t) + 1] : nullptr, pf);
        store_c(pair, buf);
        Format::epilogue(buf, meta, t0.da + b, t0.extra + b * Format::kExtra, nb, t0.acc);
        if (pair) {
          const KqRowTile& t1 = tiles[size_t(t) + 1];
          Format::epilogue(buf + 512, meta, t1.da + b, t1.extra + b * Format::kExtra, nb, t1.acc);
        }
      }
    }
    const int cols = int(std::min<int64_t>(16, nr - 16 * g));
    const __mmask16 mask = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
    for (int64_t t = 0; t < n_mt; ++t) {
      const int64_t m0 = m0_of(t);
      float* yo = y + m0 * ys + 16 * g;
      for (int64_t r = 16 * t - m0; r < 16; ++r)  // rows before 16 t - m0: stored by the previous tile
        _mm512_mask_storeu_ps(yo + r * ys, mask, _mm512_load_ps(accbuf + t * 256 + 16 * r));
    }
  }
  _tile_release();
}

// A format's tile entry: the driver above from 16 activation rows; below that (decode: a 16-row
// tile would be mostly padding), and where AMX or VBMI is unusable, the AVX-512 VNNI tile.
template <class Format, GemmTileFn kVnniTile>
void kquant_tile(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb, int64_t mr,
                 float* y, int64_t ys) {
  static const bool usable = amx_usable() && cpu_features().avx512_vbmi;
  if (mr < 16 || !usable) return kVnniTile(k, w, gstride, nr, act, arb, mr, y, ys);
  kquant_amx<Format>(k, w, gstride, nr, act, arb, mr, y, ys);
}

}  // namespace hexe::cpu::amx

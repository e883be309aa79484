// AMX-INT8 tile for Q4_K weights in the Rows16 layout x Q8_K activations in prefill (m >= 16
// activation rows). Below 16 rows it hands over to the AVX-512 VNNI Rows16 tile.
//
// The sub-block scales go into the weights, so the tile unit runs a whole super-block without a
// float epilogue per 32-column sub-block (the previous tile stored, converted and scaled its C
// tile per sub-block at K = 32: 8 round trips through memory per super-block, TMUL mostly idle).
// q * sc is at most 15 * 63 = 945: ten bits, split into a low byte (0..255) and a high byte
// (0..3), two unsigned B tiles; sum_k a q sc = C_lo + 256 C_hi, exact in int32.
//
// Rows16 Q4_K (repack.h), per 16-row group and 256-column super-block: the 512 bytes of sub-block
// pair p are 8 lines c of 64 bytes, [c*64 + r*4 + i] = GGUF byte qs[32p + 4c + i] of row r, whose
// low nibble is column 64p + 4c + i (sub-block 2p) and high nibble column 64p + 32 + 4c + i
// (sub-block 2p+1). So a VNNI B tile with K = 64 (16 rows of 64 bytes, [kk][4n + i] = column
// 4kk + i of weight row n) over columns 64p..64p+63 is: rows 0-7 the low-nibble products of lines
// 0-7, rows 8-15 the high-nibble products. Each super-block of a group is prepared once
// (AVX-512: nibbles, vpmaddubsw by the row's scale, bytes split) into 8 KiB of B tiles, and every
// 16-row activation tile then runs against it:
//   A  (tmm0/tmm1): 16 activation rows x 64 int8 at qs + 64 p of each row's BlockQ8_K (stride =
//                   activation row bytes): no activation repack.
//   B  (tmm2/tmm3): low and high product bytes of pair p.
//   C  (tmm4-7):    C_lo, C_hi of two activation row tiles, accumulated over the 4 pairs.
// Per super-block the C tiles go through a buffer to AVX-512: acc += d_a (d_w (C_lo + 256 C_hi) -
// dmin_w summ), summ = sum_j m[j] * (bsum[2j] + bsum[2j+1]) through vpdpwssd on int16 pairs
// (exact). The accumulators stay in a per-row-tile buffer across the group's super-blocks.
//
// Ragged edges as the Q8_0 AMX tile: m not a multiple of 16: the last row tile is the last 16
// rows (overlapping; only its new rows are stored); n not a multiple of 16: the group's padding
// rows are zero in Rows16 and their outputs are masked off.
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

namespace hexe::cpu {
namespace {

constexpr size_t kSbBytes = 2368;                   // Rows16 Q4_K: one super-block of 16 rows
constexpr size_t kActSb = sizeof(BlockQ8_K);        // 292
constexpr size_t kActQs = offsetof(BlockQ8_K, qs);  // 4
constexpr size_t kPairProducts = 2048;              // B tiles of one pair: low bytes, high bytes
constexpr size_t kSbProducts = 4 * kPairProducts;

struct alignas(64) SbMeta {
  float d[16];          // d_w per weight row
  float dmin[16];       // dmin_w per weight row
  int16_t mins[4][32];  // per pair p: [r*2 + h] = min of sub-block 2p+h of row r
};
static_assert(sizeof(SbMeta) == 384);

// K = 64 for every tile: A 16 x 64 int8, B 16 x 64 (16 k-quads x 16 columns), C 16 x 16 int32.
void load_tile_config_k64() {
  amx::TileConfig c;
  for (int t = 0; t < 8; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  __asm__ volatile("" : : "m"(c));  // GCC 12 does not see ldtilecfg read c and may drop the stores
  _tile_loadconfig(&c);
}

// vpermt2b index (bit 6: second operand) of the low product bytes: per dword d, bytes 0 and 2 of
// the even-column products (pe) interleaved with those of the odd-column products (po).
alignas(64) constexpr std::array<uint8_t, 64> kInterleaveLo = [] {
  std::array<uint8_t, 64> a{};
  for (int d = 0; d < 16; ++d) {
    a[4 * d + 0] = uint8_t(4 * d);
    a[4 * d + 1] = uint8_t(64 + 4 * d);
    a[4 * d + 2] = uint8_t(4 * d + 2);
    a[4 * d + 3] = uint8_t(64 + 4 * d + 2);
  }
  return a;
}();

// One super-block of a group (at o) into its B tiles (prod) and metadata.
void prepare_superblock(const uint8_t* o, uint8_t* prod, SbMeta& meta) {
  const __m512i m_nib = _mm512_set1_epi8(0x0F);
  // vpermt2b indices: per dword, bytes 0 and 2 of pe and of po (low) or bytes 1 and 3 (high).
  const __m512i idx_lo = _mm512_load_si512(kInterleaveLo.data());
  const __m512i idx_hi = _mm512_add_epi8(idx_lo, _mm512_set1_epi8(1));
  for (int p = 0; p < 4; ++p) {
    // Per sub-block h of the pair: the row's scale in bytes 0 and 2 of its dword (se) or 1 and 3
    // (so), so vpmaddubsw gives the products of the even / odd columns of each quad as int16.
    __m512i se[2], so[2];
    for (int h = 0; h < 2; ++h) {
      const __m512i s = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o + 64 + (2 * p + h) * 16)));
      se[h] = _mm512_or_si512(s, _mm512_slli_epi32(s, 16));
      so[h] = _mm512_slli_epi32(se[h], 8);
    }
    uint8_t* lo_tile = prod + p * kPairProducts;
    uint8_t* hi_tile = lo_tile + 1024;
    for (int c = 0; c < 8; ++c) {
      const __m512i v = _mm512_loadu_si512(o + 320 + p * 512 + c * 64);
      const __m512i nib[2] = {_mm512_and_si512(v, m_nib), _mm512_and_si512(_mm512_srli_epi16(v, 4), m_nib)};
      for (int h = 0; h < 2; ++h) {
        const __m512i pe = _mm512_maddubs_epi16(nib[h], se[h]);  // [q0 s, q2 s] per dword
        const __m512i po = _mm512_maddubs_epi16(nib[h], so[h]);  // [q1 s, q3 s]
        // Column order again: low bytes (q0 s, q1 s, q2 s, q3 s) & 0xFF, and high bytes >> 8.
        const __m512i lo = _mm512_permutex2var_epi8(pe, idx_lo, po);
        const __m512i hi = _mm512_permutex2var_epi8(pe, idx_hi, po);
        _mm512_store_si512(lo_tile + (8 * h + c) * 64, lo);
        _mm512_store_si512(hi_tile + (8 * h + c) * 64, hi);
      }
    }
  }
  _mm512_store_ps(meta.d, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o))));
  _mm512_store_ps(meta.dmin, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + 32))));
  for (int p = 0; p < 4; ++p)
    _mm512_store_si512(meta.mins[p],
                       _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + 192 + p * 32))));
}

// acc[r] += d_a[r] (d_w (C_lo + 256 C_hi) - dmin_w summ[r]) for the 16 rows of one row tile; c:
// C_lo then C_hi (16 x 16 int32 each); da, pairs: this super-block's entries of row 0 (rows nb
// super-blocks apart).
inline void epilogue(const int32_t* c, const SbMeta& mt, const float* da, const int32_t* pairs, int64_t nb,
                     float* acc) {
  const __m512 d = _mm512_load_ps(mt.d), dmin = _mm512_load_ps(mt.dmin);
  const __m512i m0 = _mm512_load_si512(mt.mins[0]), m1 = _mm512_load_si512(mt.mins[1]);
  const __m512i m2 = _mm512_load_si512(mt.mins[2]), m3 = _mm512_load_si512(mt.mins[3]);
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r) {
    const __m512i isum = _mm512_add_epi32(_mm512_load_si512(c + 16 * r), _mm512_slli_epi32(_mm512_load_si512(c + 256 + 16 * r), 8));
    const int32_t* pr = pairs + r * nb * 4;
    __m512i mn = _mm512_dpwssd_epi32(_mm512_setzero_si512(), m0, _mm512_set1_epi32(pr[0]));
    mn = _mm512_dpwssd_epi32(mn, m1, _mm512_set1_epi32(pr[1]));
    mn = _mm512_dpwssd_epi32(mn, m2, _mm512_set1_epi32(pr[2]));
    mn = _mm512_dpwssd_epi32(mn, m3, _mm512_set1_epi32(pr[3]));
    const __m512 t = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(mn), _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum)));
    _mm512_store_ps(acc + 16 * r, _mm512_fmadd_ps(_mm512_set1_ps(da[r * nb]), t, _mm512_load_ps(acc + 16 * r)));
  }
}

// Where one 16-row activation tile reads: its first row's A bytes, d_a and pair sums, and its
// accumulator buffer.
struct RowTile {
  const uint8_t* act;
  const float* da;
  const int32_t* pairs;
  float* acc;
};

// TMUL work of super-block b for two row tiles (C tiles 4/5 and 6/7) or one (4/5) against the
// prepared B tiles, and the stores of its C tiles. GCC's tile intrinsics need literal tile
// numbers, hence a body per row-tile count.
void issue_pair(size_t a_off, const uint8_t* prod, const RowTile& t0, const RowTile& t1, size_t arb,
                amx::GroupPrefetch& pf) {
  _tile_zero(4); _tile_zero(5); _tile_zero(6); _tile_zero(7);
  for (int p = 0; p < 4; ++p) {
    pf.step();
    _tile_loadd(2, prod + p * kPairProducts, 64);
    _tile_loadd(3, prod + p * kPairProducts + 1024, 64);
    _tile_loadd(0, t0.act + a_off + 64 * p, long(arb));
    _tile_dpbsud(4, 0, 2);
    _tile_dpbsud(5, 0, 3);
    _tile_loadd(1, t1.act + a_off + 64 * p, long(arb));
    _tile_dpbsud(6, 1, 2);
    _tile_dpbsud(7, 1, 3);
  }
}

void issue_one(size_t a_off, const uint8_t* prod, const RowTile& t0, size_t arb, amx::GroupPrefetch& pf) {
  _tile_zero(4); _tile_zero(5);
  for (int p = 0; p < 4; ++p) {
    pf.step();
    _tile_loadd(2, prod + p * kPairProducts, 64);
    _tile_loadd(3, prod + p * kPairProducts + 1024, 64);
    _tile_loadd(0, t0.act + a_off + 64 * p, long(arb));
    _tile_dpbsud(4, 0, 2);
    _tile_dpbsud(5, 0, 3);
  }
}

void store_c(bool pair, int32_t* buf) {
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

}  // namespace

void gemm_tile_q4_K_rows16_amx(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  static const bool usable = amx_usable() && cpu_features().avx512_vbmi;
  if (mr < 16 || !usable) return gemm_tile_q4_K_rows16_avx512(k, w, gstride, nr, act, arb, mr, y, ys);
  const int64_t nb = k / kQKK;
  const auto* a8 = static_cast<const uint8_t*>(act);
  const auto* w8 = static_cast<const uint8_t*>(w);
  // Activations: d_a and the sub-block pair sums (two int16 in an int32) per row and super-block.
  thread_local std::vector<float> da_buf;
  thread_local std::vector<int32_t> pair_buf;
  if (da_buf.size() < size_t(mr * nb)) da_buf.resize(size_t(mr * nb));
  if (pair_buf.size() < size_t(mr * nb * 4)) pair_buf.resize(size_t(mr * nb * 4));
  for (int64_t i = 0; i < mr; ++i) {
    const auto* ab = reinterpret_cast<const BlockQ8_K*>(a8 + size_t(i) * arb);
    for (int64_t b = 0; b < nb; ++b) {
      da_buf[size_t(i * nb + b)] = ab[b].d;
      for (int p = 0; p < 4; ++p) {
        const int16_t* bs = ab[b].bsums + 4 * p;
        const int lo = bs[0] + bs[1], hi = bs[2] + bs[3];
        pair_buf[size_t((i * nb + b) * 4 + p)] = int32_t(uint32_t(uint16_t(lo)) | uint32_t(uint16_t(hi)) << 16);
      }
    }
  }
  const int64_t n_mt = (mr + 15) / 16;
  const int64_t n_groups = (nr + 15) / 16;
  auto m0_of = [&](int64_t t) { return std::min(16 * t, mr - 16); };
  thread_local std::vector<uint8_t> prod_store, acc_store;
  thread_local std::vector<RowTile> tiles;
  uint8_t* prod = aligned64<uint8_t>(prod_store, kSbProducts);
  float* accbuf = aligned64<float>(acc_store, size_t(n_mt) * 256 * sizeof(float));
  tiles.resize(size_t(n_mt));
  for (int64_t t = 0; t < n_mt; ++t)
    tiles[size_t(t)] = RowTile{a8 + size_t(m0_of(t)) * arb, da_buf.data() + m0_of(t) * nb,
                               pair_buf.data() + m0_of(t) * nb * 4, accbuf + t * 256};
  // Batches in order, each complete before the next: on the machines measured the AVX-512 code
  // does not run beside the tile unit (a software-pipelined order, TMUL work of the next batch
  // issued before this one's epilogue, measured 8% slower), so what counts is the sum of the two.
  alignas(64) int32_t buf[1024];
  SbMeta meta;
  load_tile_config_k64();
  amx::GroupPrefetch pf;
  const int64_t per_sb = (n_mt + 1) / 2;  // batches per super-block: row tiles in pairs
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* grp = w8 + size_t(g) * gstride;
    pf.reset(g + 1 < n_groups ? grp + gstride : nullptr, size_t(nb) * kSbBytes, nb * per_sb * 4);
    std::memset(accbuf, 0, size_t(n_mt) * 256 * sizeof(float));
    for (int64_t b = 0; b < nb; ++b) {
      prepare_superblock(grp + size_t(b) * kSbBytes, prod, meta);
      const size_t a_off = size_t(b) * kActSb + kActQs;
      for (int64_t t = 0; t < n_mt; t += 2) {
        const RowTile& t0 = tiles[size_t(t)];
        const bool pair = t + 1 < n_mt;
        if (pair) issue_pair(a_off, prod, t0, tiles[size_t(t) + 1], arb, pf);
        else issue_one(a_off, prod, t0, arb, pf);
        store_c(pair, buf);
        epilogue(buf, meta, t0.da + b, t0.pairs + b * 4, nb, t0.acc);
        if (pair) {
          const RowTile& t1 = tiles[size_t(t) + 1];
          epilogue(buf + 512, meta, t1.da + b, t1.pairs + b * 4, nb, t1.acc);
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

}  // namespace hexe::cpu

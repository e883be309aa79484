// AMX-INT8 tiles for Q8_0 weights x Q8_0 activations in prefill (m >= 16 activation rows), and
// the AMX row of the kernel table. Below 16 rows (decode) the tiles hand over to the AVX-512 VNNI
// ones: a 16-row tile would be mostly padding there. Q4_0, Q4_1, Q5_0 and Q5_1 (Rows16) run the
// same tiles: each 16-row group's nibbles are widened per call into signed levels q - offset in
// the Q8_0 geometry (their nibble lines already hold columns 4c + i and 16 + 4c + i of each
// block); Q4_1/Q5_1's mins add a second FMA per block in the epilogue.
//
// Tile shapes: one 32-element block per tile step, so each block's exact int32 dot is available
// to scale in float (as the scalar reference does: acc += float(isum) * (d_w * d_a)):
//   A  (tmm0/tmm4): 16 activation rows x 32 int8 (colsb 32), loaded straight from the Q8_0 rows
//                   (stride = activation row bytes, base = the block's qs): no activation repack.
//   B  (tmm1/tmm5): 8 rows x 64 bytes: 16 weight rows (output columns) x 4 consecutive k bytes
//                   per 64-byte row ("VNNI" layout), i.e. exactly one 32-block of a Rows16 group
//                   (repack.h: [c*64 + r*4 + i] = q[row r][col 4c+i]).
//   C  (tmm3/tmm6): 16 x 16 int32, zeroed per block; tmm2: a constant tile of 0x80 bytes.
// Rows16 stores q XOR 0x80 (unsigned); TDPBSUD (signed A x unsigned B) then gives
// sum a*(q+128), and TDPBSSD with the constant tile adds sum a*(-128): the exact signed sum
// (the TMUL unit is half idle at K=32, so the correction costs little). The C tile goes through
// a 1 KiB buffer to AVX-512, which converts, scales by d_w (16 columns) * d_a (per row) and
// accumulates in 16 zmm registers (one per activation row) across the k blocks. Even and odd
// blocks use separate tiles and buffers so the TMUL work of one overlaps the other's epilogue.
//
// GGUF layout: each 16-row group of weights is transposed per call into that B layout (signed
// bytes, no correction step) in a thread_local scratch with AVX-512 permutes; the Rows16 copy
// (the runtime's load-time layout for Q8_0) is read as is.
//
// Ragged edges: m not a multiple of 16: the last row tile is the last 16 rows (overlapping the
// previous tile; only its new rows are stored), so every tile is a full 16-row one and the tile
// configuration is loaded once per call. n not a multiple of 16: the group's padding rows are
// zero (Rows16) or zero-filled (scratch) and their outputs are masked off.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/amx/amx_tiles.h"
#include "cpu_kernels/x86/avx512/mask64_at.h"
#include "cpu_kernels/x86/q8_block_sum.h"

namespace hexe::cpu {
namespace {

constexpr size_t kPairBytes = 1088;  // Rows16 Q8_0: two blocks of 16 rows (2 x 512 q + 2 x 32 d)
constexpr size_t kActBlock = sizeof(BlockQ8_0);  // 34

alignas(64) constexpr std::array<uint8_t, 512> kMinus128 = [] {
  std::array<uint8_t, 512> a{};
  for (auto& v : a) v = 0x80;
  return a;
}();

float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// One 16-row tile of activations (rows at `act`, arb apart) against one 16-column group `grp`
// (Rows16 geometry) over nb blocks; stores rows [row_from, 16) x [0, cols) of y.
// kMin (Q4_1/Q5_1, w = d q + m): each block also adds m_w (16 f16 at mins + 32 b) times
// sa = d_a sum(a) (per row and block, laid out as da).
template <bool kSignedB, bool kMin = false>
void tile_16x16(int64_t nb, const uint8_t* grp, const uint8_t* act, size_t arb, const float* da, const float* sa,
                const uint8_t* mins, float* y, int64_t ys, int row_from, int cols, int32_t* buf) {
  __m512 acc[16];
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
  auto epilogue = [&](const int32_t* bf, const uint8_t* d16, int64_t blk) {
    const float* da_b = da + blk * 16;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d16)));
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(da_b[r]));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(bf + 16 * r)), s, acc[r]);
    }
    if constexpr (kMin) {
      const float* sa_b = sa + blk * 16;
      const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(mins + 32 * blk)));
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) acc[r] = _mm512_fmadd_ps(mw, _mm512_set1_ps(sa_b[r]), acc[r]);
    }
  };
  // One block: C tile c = A tile a (16 activation blocks at `ap`) . B tile w (weights at `wp`);
  // unsigned weights take the -128 correction through the constant B tile 2. GCC's tile
  // intrinsics need literal tile numbers (they are pasted into the asm), hence a macro.
#define HEXE_Q8_0_BLOCK_DOT(c, a, w, ap, wp) \
  do {                                       \
    _tile_zero(c);                           \
    _tile_loadd(a, ap, long(arb));           \
    _tile_loadd(w, wp, 64);                  \
    if constexpr (kSignedB) {                \
      _tile_dpbssd(c, a, w);                 \
    } else {                                 \
      _tile_dpbsud(c, a, w);                 \
      _tile_dpbssd(c, a, 2);                 \
    }                                        \
  } while (0)
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {  // two blocks of a pair in flight: C tiles 3 and 6
    const uint8_t* pair = grp + size_t(b / 2) * kPairBytes;
    const uint8_t* a = act + size_t(b) * kActBlock + 2;
    HEXE_Q8_0_BLOCK_DOT(3, 0, 1, a, pair);
    HEXE_Q8_0_BLOCK_DOT(6, 4, 5, a + kActBlock, pair + 512);
    _tile_stored(3, buf, 64);
    epilogue(buf, pair + 1024, b);
    _tile_stored(6, buf + 256, 64);
    epilogue(buf + 256, pair + 1024 + 32, b + 1);
  }
  if (b < nb) {
    const uint8_t* pair = grp + size_t(b / 2) * kPairBytes;
    HEXE_Q8_0_BLOCK_DOT(3, 0, 1, act + size_t(b) * kActBlock + 2, pair);
    _tile_stored(3, buf, 64);
    epilogue(buf, pair + 1024, b);
  }
#undef HEXE_Q8_0_BLOCK_DOT
  const __mmask16 mask = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r)
    if (r >= row_from) _mm512_mask_storeu_ps(y + r * ys, mask, acc[r]);
}

// Runs the AMX tiles over groups of 16 weight columns: group(g) returns group g's bytes in the
// Rows16 geometry (kSignedB: plain int8 q, else q XOR 0x80), and with kMin leaves the group's
// mins (16 f16 per block, 32 bytes apart) at `mins`. mr >= 16.
template <bool kSignedB, bool kMin = false, class GroupFn>
void run_amx(int64_t k, int64_t nr, const uint8_t* act, size_t arb, int64_t mr, float* y, int64_t ys,
             GroupFn&& group, const uint8_t* mins = nullptr) {
  const int64_t nb = k / kQK;
  const int64_t n_mt = (mr + 15) / 16;
  // Row tile t starts at row min(16 t, mr - 16); d_a of its rows as floats, [t][block][16].
  thread_local std::vector<float> da_buf, sa_buf;
  if (da_buf.size() < size_t(n_mt * nb * 16)) da_buf.resize(size_t(n_mt * nb * 16));
  if (kMin && sa_buf.size() < size_t(n_mt * nb * 16)) sa_buf.resize(size_t(n_mt * nb * 16));
  auto m0_of = [&](int64_t t) { return std::min(16 * t, mr - 16); };
  for (int64_t t = 0; t < n_mt; ++t) {
    const uint8_t* a = act + size_t(m0_of(t)) * arb;
    float* d = da_buf.data() + t * nb * 16;
    for (int r = 0; r < 16; ++r)
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = a + size_t(r) * arb + size_t(b) * kActBlock;
        d[b * 16 + r] = f16(blk);
        if constexpr (kMin)
          sa_buf[size_t(t * nb * 16 + b * 16 + r)] =
              d[b * 16 + r] * float(q8_0_block_sum(reinterpret_cast<const int8_t*>(blk + 2)));
      }
  }
  alignas(64) int32_t buf[512];
  amx::load_tile_config(/*with_constant_b=*/true);
  if constexpr (!kSignedB) _tile_loadd(2, kMinus128.data(), 64);
  const int64_t n_groups = (nr + 15) / 16;
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* grp = group(g);
    const int cols = int(std::min<int64_t>(16, nr - 16 * g));
    for (int64_t t = 0; t < n_mt; ++t) {
      const int64_t m0 = m0_of(t);
      const int row_from = int(16 * t - m0);  // rows already stored by the previous tile
      tile_16x16<kSignedB, kMin>(nb, grp, act + size_t(m0) * arb, arb, da_buf.data() + t * nb * 16,
                                 kMin ? sa_buf.data() + t * nb * 16 : nullptr, mins, y + m0 * ys + 16 * g, ys,
                                 row_from, cols, buf);
    }
  }
  _tile_release();
}

// permutex2var index tables for the 16 x 8 dword transpose below (computed once).
struct TransposeIdx {
  __m512i a_lo, a_hi, b_lo, b_hi, c_lo, c_hi;
};

const TransposeIdx& transpose_idx() {
  static const TransposeIdx t = [] {
    alignas(64) int32_t v[6][16];
    for (int e = 0; e < 16; ++e) {
      // Stage A: inputs rows (0,1) and (2,3), 8 dwords each -> [c][r] for c in 0..3 / 4..7, r < 4.
      for (int h = 0; h < 2; ++h) {
        const int r = e % 4, c = 4 * h + e / 4;
        v[h][e] = r < 2 ? r * 8 + c : 16 + (r - 2) * 8 + c;
      }
      // Stage B: inputs [c][r] (4 cols x rows 0..3) and the same for rows 4..7 -> [c][r], 2 cols x 8 rows.
      for (int h = 0; h < 2; ++h) {
        const int r = e % 8, c = 2 * h + e / 8;
        v[2 + h][e] = r < 4 ? c * 4 + r : 16 + c * 4 + (r - 4);
      }
      // Stage C: inputs [c][r] (2 cols x rows 0..7) and rows 8..15 -> one column, 16 rows.
      for (int h = 0; h < 2; ++h) {
        const int r = e;
        v[4 + h][e] = r < 8 ? h * 8 + r : 16 + h * 8 + (r - 8);
      }
    }
    TransposeIdx x;
    x.a_lo = _mm512_load_si512(v[0]); x.a_hi = _mm512_load_si512(v[1]);
    x.b_lo = _mm512_load_si512(v[2]); x.b_hi = _mm512_load_si512(v[3]);
    x.c_lo = _mm512_load_si512(v[4]); x.c_hi = _mm512_load_si512(v[5]);
    return x;
  }();
  return t;
}

// GGUF rows [0, rows) of a 16-row group (rows <= 16, the rest zero) into the Rows16 geometry with
// plain signed q (no XOR): per block, a 16 x 8 dword transpose in three permute stages.
void pack_group_signed(int64_t nb, int64_t rows, const uint8_t* w, size_t wrb, const uint8_t* zero_row,
                       uint8_t* dst) {
  const TransposeIdx& ix = transpose_idx();
  const uint8_t* row[16];
  for (int r = 0; r < 16; ++r) row[r] = r < rows ? w + size_t(r) * wrb : zero_row;
  for (int64_t b = 0; b < nb; ++b) {
    const size_t off = size_t(b) * kActBlock;
    uint8_t* q = dst + size_t(b / 2) * kPairBytes + (b % 2) * 512;
    uint8_t* d = dst + size_t(b / 2) * kPairBytes + 1024 + (b % 2) * 32;
    __m512i p[8];
    for (int j = 0; j < 8; ++j) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[2 * j] + off + 2));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[2 * j + 1] + off + 2));
      p[j] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    __m512i l[4], h[4];  // rows 4g..4g+3: columns 0..3 (l) and 4..7 (h), [c][r]
    for (int g = 0; g < 4; ++g) {
      l[g] = _mm512_permutex2var_epi32(p[2 * g], ix.a_lo, p[2 * g + 1]);
      h[g] = _mm512_permutex2var_epi32(p[2 * g], ix.a_hi, p[2 * g + 1]);
    }
    __m512i m[8];  // m[2s + half]: rows 8s..8s+7, columns {0,1},{2,3} (from l) then {4,5},{6,7} (from h)
    for (int s = 0; s < 2; ++s) {
      m[0 * 4 + 2 * s + 0] = _mm512_permutex2var_epi32(l[2 * s], ix.b_lo, l[2 * s + 1]);
      m[0 * 4 + 2 * s + 1] = _mm512_permutex2var_epi32(l[2 * s], ix.b_hi, l[2 * s + 1]);
      m[1 * 4 + 2 * s + 0] = _mm512_permutex2var_epi32(h[2 * s], ix.b_lo, h[2 * s + 1]);
      m[1 * 4 + 2 * s + 1] = _mm512_permutex2var_epi32(h[2 * s], ix.b_hi, h[2 * s + 1]);
    }
    for (int cp = 0; cp < 4; ++cp) {  // column pair cp: columns 2cp, 2cp+1
      const int hl = cp / 2, half = cp % 2;
      const __m512i top = m[hl * 4 + 0 + half], bot = m[hl * 4 + 2 + half];
      _mm512_store_si512(q + (2 * cp) * 64, _mm512_permutex2var_epi32(top, ix.c_lo, bot));
      _mm512_store_si512(q + (2 * cp + 1) * 64, _mm512_permutex2var_epi32(top, ix.c_hi, bot));
    }
    for (int r = 0; r < 16; ++r) std::memcpy(d + 2 * r, row[r] + off, 2);
  }
}

// A Q4_0/Q4_1/Q5_0/Q5_1 Rows16 group (nb blocks, repack.h) as a Q8_0 Rows16 group of signed
// levels q - offset, and (Q4_1/Q5_1) its mins at mins + 32 b (the padding block of an odd nb is
// not read: tile_16x16 stops at nb).
template <DType W>
void widen_group(int64_t nb, const uint8_t* g, uint8_t* dst, uint8_t* mins) {
  constexpr Rows16Legacy L = rows16_legacy(W);
  const __m512i m_lo = _mm512_set1_epi8(0x0F), off = _mm512_set1_epi8(char(L.offset)), bit5 = _mm512_set1_epi8(0x10);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = g + size_t(b / 2) * L.pair_bytes;
    const int h = int(b % 2);
    uint8_t* o = dst + size_t(b / 2) * kPairBytes + h * 512;
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_loadu_si512(pair + L.line(h, c));
      __m512i lo = _mm512_and_si512(v, m_lo), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m_lo);
      if constexpr (L.five) {
        lo = _mm512_mask_add_epi8(lo, mask64_at(pair + L.mask(h, c, 0)), lo, bit5);
        hi = _mm512_mask_add_epi8(hi, mask64_at(pair + L.mask(h, c, 1)), hi, bit5);
      }
      _mm512_store_si512(o + c * 64, _mm512_sub_epi8(lo, off));        // columns 4c + i
      _mm512_store_si512(o + (4 + c) * 64, _mm512_sub_epi8(hi, off));  // columns 16 + 4c + i
    }
    std::memcpy(dst + size_t(b / 2) * kPairBytes + 1024 + h * 32, pair + L.d + h * 32, 32);
    if constexpr (L.m != 0) std::memcpy(mins + 32 * b, pair + L.m + h * 32, 32);
  }
}

// Format W's tile: the AMX one from 16 activation rows, kVnni (its AVX-512 Rows16 tile) below
// that (decode) or where AMX is unusable.
template <DType W, GemmTileFn kVnni>
void nibble_rows16_amx(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb, int64_t mr,
                       float* y, int64_t ys) {
  if (mr < 16 || !amx_usable()) return kVnni(k, w, wrb, nr, act, arb, mr, y, ys);
  constexpr bool kMin = rows16_legacy(W).m != 0;
  const int64_t nb = k / kQK;
  const size_t gbytes = size_t((nb + 1) / 2) * kPairBytes;
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < gbytes + size_t(32 * nb) + 64) scratch.resize(gbytes + size_t(32 * nb) + 64);
  uint8_t* grp = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  uint8_t* mins = grp + gbytes;
  const auto* base = static_cast<const uint8_t*>(w);
  run_amx<true, kMin>(
      k, nr, static_cast<const uint8_t*>(act), arb, mr, y, ys,
      [&](int64_t g) {
        widen_group<W>(nb, base + size_t(g) * wrb, grp, mins);
        return static_cast<const uint8_t*>(grp);
      },
      mins);
}

}  // namespace

void gemm_tile_q4_0_rows16_amx(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  nibble_rows16_amx<DType::Q4_0, gemm_tile_q4_0_rows16_avx512>(k, w, wrb, nr, act, arb, mr, y, ys);
}

void gemm_tile_q5_0_rows16_amx(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  nibble_rows16_amx<DType::Q5_0, gemm_tile_q5_0_rows16_avx512>(k, w, wrb, nr, act, arb, mr, y, ys);
}

void gemm_tile_q4_1_rows16_amx(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  nibble_rows16_amx<DType::Q4_1, gemm_tile_q4_1_rows16_avx512>(k, w, wrb, nr, act, arb, mr, y, ys);
}

void gemm_tile_q5_1_rows16_amx(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  nibble_rows16_amx<DType::Q5_1, gemm_tile_q5_1_rows16_avx512>(k, w, wrb, nr, act, arb, mr, y, ys);
}

void gemm_tile_q8_0_rows16_amx(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  if (mr < 16 || !amx_usable()) return gemm_tile_q8_0_rows16_avx512(k, w, wrb, nr, act, arb, mr, y, ys);
  const auto* base = static_cast<const uint8_t*>(w);
  run_amx<false>(k, nr, static_cast<const uint8_t*>(act), arb, mr, y, ys,
                 [&](int64_t g) { return base + size_t(g) * wrb; });
}

void gemm_tile_q8_0_amx(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act, size_t arb, int64_t mr,
                        float* y, int64_t ys) {
  if (mr < 16 || !amx_usable()) return gemm_tile_q8_0_avx512(k, w, wrb, nr, act, arb, mr, y, ys);
  const int64_t nb = k / kQK;
  const size_t gbytes = size_t((nb + 1) / 2) * kPairBytes;
  thread_local std::vector<uint8_t> scratch, zero;
  if (scratch.size() < gbytes + 64) scratch.resize(gbytes + 64);
  if (zero.size() < wrb) zero.assign(wrb, 0);
  uint8_t* grp = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  const auto* base = static_cast<const uint8_t*>(w);
  run_amx<true>(k, nr, static_cast<const uint8_t*>(act), arb, mr, y, ys, [&](int64_t g) {
    pack_group_signed(nb, std::min<int64_t>(16, nr - 16 * g), base + size_t(16 * g) * wrb, wrb, zero.data(), grp);
    return static_cast<const uint8_t*>(grp);
  });
}

namespace {

constexpr GemmTable make_table(bool rows16) {
  GemmTable t{};
  for (auto& e : t)
    e = {nullptr, nullptr, rows16 ? "no AMX rows16 kernel for this format" : "no AMX kernel for this format", 1, false};
  t[static_cast<uint32_t>(DType::Q8_0)] = {rows16 ? gemm_tile_q8_0_rows16_amx : gemm_tile_q8_0_amx,
                                           rows16 ? "amx_int8/q8_0/rows16" : "amx_int8/q8_0", nullptr, kQK, true};
  // The nibble formats (above), Q4_K, Q5_K, Q6_K (gemm_q4_k_amx.cpp, gemm_q6_k_amx.cpp): Rows16 only; the
  // runtime repacks them to Rows16 on AVX-512 machines, so the GGUF layout keeps its AVX-512 tile.
  if (rows16) {
    t[static_cast<uint32_t>(DType::Q4_0)] = {gemm_tile_q4_0_rows16_amx, "amx_int8/q4_0/rows16", nullptr, kQK, true};
    t[static_cast<uint32_t>(DType::Q5_0)] = {gemm_tile_q5_0_rows16_amx, "amx_int8/q5_0/rows16", nullptr, kQK, true};
    t[static_cast<uint32_t>(DType::Q4_1)] = {gemm_tile_q4_1_rows16_amx, "amx_int8/q4_1/rows16", nullptr, kQK, true};
    t[static_cast<uint32_t>(DType::Q5_1)] = {gemm_tile_q5_1_rows16_amx, "amx_int8/q5_1/rows16", nullptr, kQK, true};
    t[static_cast<uint32_t>(DType::Q4_K)] = {gemm_tile_q4_K_rows16_amx, "amx_int8/q4_K/rows16", nullptr, kQKK, true};
    t[static_cast<uint32_t>(DType::Q5_K)] = {gemm_tile_q5_K_rows16_amx, "amx_int8/q5_K/rows16", nullptr, kQKK, true};
    t[static_cast<uint32_t>(DType::Q6_K)] = {gemm_tile_q6_K_rows16_amx, "amx_int8/q6_K/rows16", nullptr, kQKK, true};
    t[static_cast<uint32_t>(DType::Q4_K)].rows_per_call = 256;
    t[static_cast<uint32_t>(DType::Q5_K)].rows_per_call = 256;
    t[static_cast<uint32_t>(DType::Q6_K)].rows_per_call = 256;
  }
  // BF16: GGUF rows as the A operand (gemm_bf16_amx.cpp); k in whole 32-element tile steps.
  if (!rows16) t[static_cast<uint32_t>(DType::BF16)] = {gemm_tile_bf16_amx, "amx_bf16/bf16", nullptr, 32, false};
  return t;
}

}  // namespace

constinit const GemmTable kGemmAmx = make_table(false);
constinit const GemmTable kGemmRows16Amx = make_table(true);

}  // namespace hexe::cpu

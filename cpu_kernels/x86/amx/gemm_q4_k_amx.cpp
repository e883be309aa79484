// AMX-INT8 tile for Q4_K weights in the Rows16 layout x Q8_K activations in prefill (m >= 16
// activation rows). Below 16 rows it hands over to the AVX-512 VNNI Rows16 tile.
//
// Rows16 Q4_K (repack.h), per 16-row group and 256-column super-block: the 512 bytes of sub-block
// pair p (8 rows c of 64 bytes, [c*64 + r*4 + i] = GGUF byte qs[32p + 4c + i] of row r) are a VNNI
// B tile (K = 32, N = 16 weight rows) for sub-block 2p after & 0x0F and for 2p+1 after >> 4 & 0x0F.
// Per 16-row group the nibbles are extracted once (AVX-512 AND/shift) into a thread_local scratch
// of 8 x 512 bytes per super-block, with the group's per-super-block scales as floats, d/dmin as
// floats and the mins widened to int16 pairs; every 16-row activation tile then reuses them.
//
// Per super-block and sub-block j:
//   A  (tmm0/tmm4): 16 activation rows x 32 int8 at qs + 32 j of each row's BlockQ8_K
//                   (stride = activation row bytes): no activation repack.
//   B  (tmm1/tmm5): the nibble tile of sub-block j (unsigned 0..15).
//   C  (tmm3/tmm6): 16 x 16 int32, zeroed per sub-block: TDPBSUD gives exactly the reference's
//                   per-sub-block sum of q * a.
// The C tile goes through a 1 KiB buffer to AVX-512: sf[t] += float(C[t]) * sc[j] (16 lanes = 16
// weight rows); at the end of the super-block y[t] += d_a[t] * (d_w * sf[t] - dmin_w * summ[t]),
// summ = sum_j m[j] * (bsum[2j] + bsum[2j+1]) through vpdpwssd on int16 pairs (exact).
//
// Ragged edges as the Q8_0 AMX tile: m not a multiple of 16: the last row tile is the last 16
// rows (overlapping; only its new rows are stored); n not a multiple of 16: the group's padding
// rows are zero in Rows16 and their outputs are masked off.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/amx/amx_tiles.h"

namespace hexe::cpu {
namespace {

constexpr size_t kSbBytes = 2368;                 // Rows16 Q4_K: one super-block of 16 rows
constexpr size_t kActSb = sizeof(BlockQ8_K);      // 292
constexpr size_t kActQs = offsetof(BlockQ8_K, qs);  // 4
constexpr size_t kNibSb = 8 * 512;                // extracted nibble tiles per super-block

struct alignas(64) SbMeta {
  float sc[8][16];     // scale of sub-block j, per weight row
  float d[16];         // d_w per weight row
  float dmin[16];      // dmin_w per weight row
  int16_t mins[4][32];  // per pair p: [r*2 + h] = min of sub-block 2p+h of row r
};
static_assert(sizeof(SbMeta) == 896);


// One 16-row group (nb super-blocks at grp) into nibble tiles and per-super-block metadata.
void prepare_group(int64_t nb, const uint8_t* grp, uint8_t* nib, SbMeta* meta) {
  const __m512i m_lo = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = grp + size_t(b) * kSbBytes;
    uint8_t* n = nib + size_t(b) * kNibSb;
    for (int p = 0; p < 4; ++p)
      for (int c = 0; c < 8; ++c) {
        const __m512i v = _mm512_loadu_si512(o + 320 + p * 512 + c * 64);
        _mm512_store_si512(n + (2 * p) * 512 + c * 64, _mm512_and_si512(v, m_lo));
        _mm512_store_si512(n + (2 * p + 1) * 512 + c * 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), m_lo));
      }
    SbMeta& m = meta[b];
    for (int j = 0; j < 8; ++j)
      _mm512_store_ps(m.sc[j], _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(o + 64 + j * 16)))));
    _mm512_store_ps(m.d, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o))));
    _mm512_store_ps(m.dmin, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + 32))));
    for (int p = 0; p < 4; ++p)
      _mm512_store_si512(m.mins[p], _mm512_cvtepu8_epi16(
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + 192 + p * 32))));
  }
}

// One 16-row activation tile (rows at act, arb apart; d_a at da[r * nb + b], sub-block pair sums
// at pairs[(r * nb + b) * 4 + p]) against one prepared group; stores rows [row_from, 16) x
// [0, cols) of y. Even and odd sub-blocks use separate tiles and buffer halves so the TMUL work
// of one overlaps the other's epilogue (as the Q8_0 tile; a variant lagging the epilogue by a
// whole super-block measured no faster).
void tile_16x16(int64_t nb, const uint8_t* nib, const SbMeta* meta, const uint8_t* act, size_t arb,
                const float* da, const int32_t* pairs, float* y, int64_t ys, int row_from, int cols,
                int32_t* buf, float* accbuf) {
  for (int r = 0; r < 16; ++r) _mm512_store_ps(accbuf + 16 * r, _mm512_setzero_ps());
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* a = act + size_t(b) * kActSb + kActQs;
    const uint8_t* n = nib + size_t(b) * kNibSb;
    const SbMeta& mt = meta[b];
    __m512 sf[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) sf[r] = _mm512_setzero_ps();
    for (int p = 0; p < 4; ++p) {
      _tile_zero(3);
      _tile_loadd(0, a + 64 * p, long(arb));
      _tile_loadd(1, n + (2 * p) * 512, 64);
      _tile_dpbsud(3, 0, 1);
      _tile_zero(6);
      _tile_loadd(4, a + 64 * p + 32, long(arb));
      _tile_loadd(5, n + (2 * p + 1) * 512, 64);
      _tile_dpbsud(6, 4, 5);
      _tile_stored(3, buf, 64);
      const __m512 s0 = _mm512_load_ps(mt.sc[2 * p]);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r)
        sf[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(buf + 16 * r)), s0, sf[r]);
      _tile_stored(6, buf + 256, 64);
      const __m512 s1 = _mm512_load_ps(mt.sc[2 * p + 1]);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r)
        sf[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(buf + 256 + 16 * r)), s1, sf[r]);
    }
    const __m512 d = _mm512_load_ps(mt.d), dmin = _mm512_load_ps(mt.dmin);
    const __m512i m0 = _mm512_load_si512(mt.mins[0]), m1 = _mm512_load_si512(mt.mins[1]);
    const __m512i m2 = _mm512_load_si512(mt.mins[2]), m3 = _mm512_load_si512(mt.mins[3]);
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      const int32_t* pr = pairs + (r * nb + b) * 4;
      __m512i mn = _mm512_dpwssd_epi32(_mm512_setzero_si512(), m0, _mm512_set1_epi32(pr[0]));
      mn = _mm512_dpwssd_epi32(mn, m1, _mm512_set1_epi32(pr[1]));
      mn = _mm512_dpwssd_epi32(mn, m2, _mm512_set1_epi32(pr[2]));
      mn = _mm512_dpwssd_epi32(mn, m3, _mm512_set1_epi32(pr[3]));
      const __m512 dar = _mm512_set1_ps(da[r * nb + b]);
      __m512 acc = _mm512_load_ps(accbuf + 16 * r);
      acc = _mm512_fmadd_ps(sf[r], _mm512_mul_ps(d, dar), acc);
      acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mn), _mm512_mul_ps(dmin, dar), acc);
      _mm512_store_ps(accbuf + 16 * r, acc);
    }
  }
  const __mmask16 mask = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  for (int r = row_from; r < 16; ++r) _mm512_mask_storeu_ps(y + r * ys, mask, _mm512_load_ps(accbuf + 16 * r));
}

template <class T>
T* aligned64(std::vector<uint8_t>& v, size_t bytes) {
  if (v.size() < bytes + 64) v.resize(bytes + 64);
  return reinterpret_cast<T*>(v.data() + (64 - reinterpret_cast<uintptr_t>(v.data()) % 64) % 64);
}

}  // namespace

void gemm_tile_q4_K_rows16_amx(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                               int64_t mr, float* y, int64_t ys) {
  if (mr < 16 || !amx_usable()) return gemm_tile_q4_K_rows16_avx512(k, w, gstride, nr, act, arb, mr, y, ys);
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
  thread_local std::vector<uint8_t> nib_store, meta_store;
  uint8_t* nib = aligned64<uint8_t>(nib_store, size_t(nb) * kNibSb);
  SbMeta* meta = aligned64<SbMeta>(meta_store, size_t(nb) * sizeof(SbMeta));
  alignas(64) int32_t buf[512];
  alignas(64) float accbuf[256];
  amx::load_tile_config(/*with_constant_b=*/false);
  const int64_t n_mt = (mr + 15) / 16;
  const int64_t n_groups = (nr + 15) / 16;
  for (int64_t g = 0; g < n_groups; ++g) {
    prepare_group(nb, w8 + size_t(g) * gstride, nib, meta);
    const int cols = int(std::min<int64_t>(16, nr - 16 * g));
    for (int64_t t = 0; t < n_mt; ++t) {
      const int64_t m0 = std::min(16 * t, mr - 16);
      const int row_from = int(16 * t - m0);  // rows already stored by the previous tile
      tile_16x16(nb, nib, meta, a8 + size_t(m0) * arb, arb, da_buf.data() + m0 * nb, pair_buf.data() + m0 * nb * 4,
                 y + m0 * ys + 16 * g, ys, row_from, cols, buf, accbuf);
    }
  }
  _tile_release();
}

}  // namespace hexe::cpu

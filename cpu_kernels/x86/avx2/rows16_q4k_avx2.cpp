// AVX2 tiles for Q4_K weights in the Rows16 layout (repack.h), the layout the AVX-512 VNNI tier
// decodes from. Each 64-byte line holds 16 rows x 4 columns of two sub-blocks (low nibbles:
// sub-block 2p, high: 2p+1); a 32-byte half is 8 rows. One broadcast of 4 activation bytes
// meets 8 rows in one vpmaddubsw, and the 16-bit sums of a sub-block's 8 lines stay in 16 bits
// (8 x 2 x 15 x 128 = 30720 < 32768) until one vpmaddwd multiplies them by the rows' scales. On
// the GGUF rows the AVX2 tile needs a vpmaddwd per 32 bytes and unpacks scales per row.
// The tile reads four runs of the matrix's groups in turns of one sub-block pair
// (rows16_streams.h): one core's stream from DRAM is bound by its prefetchers' reach per stream.
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/q8k_pairs.h"
#include "cpu_kernels/x86/rows16_streams.h"
#include "cpu_kernels/x86/avx2/rows16_avx2.h"

namespace hexe::cpu {
namespace {

using rows16_avx2::bcast4;

// 128 six-bit values of a Q4_K Rows16 super-block (repack.h: low nibbles at lo, values u and
// u+64 in byte u; top bits at hi, values u, u+32, u+64, u+96 in byte u) as bytes: s[q] holds
// values 32q .. 32q+31. The top bits move to bits 4-5 with 16-bit shifts; the bits a shift
// carries in from the neighbouring byte fall outside the mask.
inline void unpack_six_bit(const uint8_t* lo, const uint8_t* hi, __m256i s[4]) {
  const __m256i nib = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
  const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo));
  const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo + 32));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi));
  s[0] = _mm256_or_si256(_mm256_and_si256(l0, nib), _mm256_and_si256(_mm256_slli_epi16(h, 4), top));
  s[1] = _mm256_or_si256(_mm256_and_si256(l1, nib), _mm256_and_si256(_mm256_slli_epi16(h, 2), top));
  s[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), nib), _mm256_and_si256(h, top));
  s[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), nib), _mm256_and_si256(_mm256_srli_epi16(h, 2), top));
}

// The scales and mins of the super-block at sb, in the orders the tile reads them:
// sc[p*64 + h*32 + e*16 + 2i + {0,1}] = scale of sub-block 2p+e, row 8h+i (each byte twice, so
// one vpmovzxbw makes the 16-bit multipliers of a half's vpmaddwd), and mn[v] = M[v] (v = p*32 +
// r*2 + e: sub-block 2p+e, row r; the rows of half h are bytes p*32 + 16h ..).
inline void unpack_scales(const uint8_t* sb, uint8_t* sc, uint8_t* mn) {
  __m256i s[4], m[4];
  unpack_six_bit(sb + 64, sb + 192, s);
  unpack_six_bit(sb + 128, sb + 224, m);
  for (int p = 0; p < 4; ++p) {
    // s[p]: sub-block 2p in the low 128-bit lane, 2p+1 in the high one; unpacking a vector with
    // itself doubles rows 0..7 (lo) and 8..15 (hi) of each.
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc + p * 64), _mm256_unpacklo_epi8(s[p], s[p]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc + p * 64 + 32), _mm256_unpackhi_epi8(s[p], s[p]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(mn + p * 32), m[p]);
  }
}

inline __m256i zx16(const uint8_t* p) {
  return _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}

// Sub-block pair p of the super-block at o (block b of the activation rows) against R activation
// rows: isum[h][r] += the 8 rows' scaled sums of sub-blocks 2p and 2p + 1 (sc: unpack_scales').
template <int R>
inline void pair_sums(const uint8_t* o, int p, const BlockQ8_K* const* a, int64_t b, const uint8_t* sc, int pf,
                      __m256i (&isum)[2][R]) {
  const __m256i m_lo = _mm256_set1_epi8(0x0F);
  const uint8_t* pair = o + kQ4KRows16Qs + p * 512;
  if (pf)
    for (int c = 0; c < 512; c += 64) _mm_prefetch(reinterpret_cast<const char*>(pair + c + pf), _MM_HINT_T0);
  // 16-bit sums of sub-blocks 2p (l) and 2p+1 (h) per half and row, two lanes a row.
  __m256i il[2][R], ih[2][R];
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < R; ++r) il[h][r] = ih[h][r] = _mm256_setzero_si256();
  for (int c = 0; c < 8; ++c) {
    __m256i al[R], ah[R];
    for (int r = 0; r < R; ++r) {
      const int8_t* aq = a[r][b].qs + 64 * p + 4 * c;
      al[r] = bcast4(aq), ah[r] = bcast4(aq + 32);
    }
    for (int h = 0; h < 2; ++h) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair + c * 64 + h * 32));
      asm("" : "+x"(v));  // one load: GCC would otherwise fold it into both the AND and the shift
      const __m256i lo = _mm256_and_si256(v, m_lo);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m_lo);
      for (int r = 0; r < R; ++r) {
        il[h][r] = _mm256_add_epi16(il[h][r], _mm256_maddubs_epi16(lo, al[r]));
        ih[h][r] = _mm256_add_epi16(ih[h][r], _mm256_maddubs_epi16(hi, ah[r]));
        // Keeps the sums running: GCC otherwise reassociates them into a tree over the
        // unrolled lines, keeps all 32 products of a pair live and spills them to the stack.
        asm("" : "+x"(il[h][r]), "+x"(ih[h][r]));
      }
    }
  }
  for (int h = 0; h < 2; ++h) {
    const __m256i sl = zx16(sc + p * 64 + h * 32), sh = zx16(sc + p * 64 + h * 32 + 16);
    for (int r = 0; r < R; ++r)
      isum[h][r] = _mm256_add_epi32(isum[h][r], _mm256_add_epi32(_mm256_madd_epi16(il[h][r], sl),
                                                                  _mm256_madd_epi16(ih[h][r], sh)));
  }
}

// The super-block at o done: acc[h][r] += d * isum - dmin * (mins . activation sums).
template <int R>
inline void block_done(const uint8_t* o, const uint8_t* mn, const BlockQ8_K* const* a, const int32_t* const* ap,
                       int64_t b, const __m256i (&isum)[2][R], __m256 (&acc)[2][R]) {
  for (int h = 0; h < 2; ++h) {
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o + h * 16)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o + 32 + h * 16)));
    for (int r = 0; r < R; ++r) {
      __m256i imin = _mm256_setzero_si256();
      for (int p = 0; p < 4; ++p)
        imin = _mm256_add_epi32(imin, _mm256_madd_epi16(zx16(mn + p * 32 + h * 16), _mm256_set1_epi32(ap[r][b * 4 + p])));
      const __m256 da = _mm256_set1_ps(a[r][b].d);
      acc[h][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[h][r]), _mm256_mul_ps(d, da), acc[h][r]);
      acc[h][r] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_mul_ps(dmin, da), acc[h][r]);
    }
  }
}

// R activation rows (r0.. of the walk's run) against the walk's groups, read in turns of one
// sub-block pair (512 bytes) per group: y[r * ys + j] for j < n of each group.
template <int R>
void groups(int64_t nb, const Rows16Streams& st, const BlockQ8_K* const* a, const int32_t* const* ap, int r0,
            int64_t ys, int pf) {
  constexpr int S = kRows16Streams;
  const int ns = st.count;
  __m256 acc[S][2][R];
  for (int s = 0; s < S; ++s)
    for (int h = 0; h < 2; ++h)
      for (int r = 0; r < R; ++r) acc[s][h][r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    alignas(32) uint8_t sc[S][256], mn[S][128];
    __m256i isum[S][2][R];
    for (int s = 0; s < ns; ++s) {
      unpack_scales(st.g[s] + size_t(b) * kQ4KRows16Bytes, sc[s], mn[s]);
      for (int h = 0; h < 2; ++h)
        for (int r = 0; r < R; ++r) isum[s][h][r] = _mm256_setzero_si256();
    }
    for (int p = 0; p < 4; ++p)
      for (int s = 0; s < ns; ++s) pair_sums<R>(st.g[s] + size_t(b) * kQ4KRows16Bytes, p, a, b, sc[s], pf, isum[s]);
    for (int s = 0; s < ns; ++s) block_done<R>(st.g[s] + size_t(b) * kQ4KRows16Bytes, mn[s], a, ap, b, isum[s], acc[s]);
  }
  for (int s = 0; s < ns; ++s)
    for (int r = 0; r < R; ++r) rows16_avx2::store_row(acc[s][0][r], acc[s][1][r], st.y[s] + (r0 + r) * ys, st.n[s]);
}

}  // namespace

void gemm_tile_q4_K_rows16_avx2(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                                int64_t mr, float* y, int64_t ys) {
  const int64_t nb = k / kQKK;
  const int pf = decode_prefetch_bytes(kAvx2Rows16Q4KPrefetchBytes, PrefetchOnAmd::On);
  const int32_t* pairs = q8k_rows_pairs(act, arb, mr, nb);
  rows16_walk_streams(mr, nr, static_cast<const uint8_t*>(w), gstride, y, ys,
                      [&](auto rows, int64_t i0, const Rows16Streams& st) {
                        const Q8KRows<decltype(rows)::value> q(act, arb, pairs, nb, i0);
                        rows16_avx2::in_pairs<decltype(rows)::value>([&](auto rr, int r0) {
                          groups<decltype(rr)::value>(nb, st, q.a + r0, q.ap + r0, r0, ys, pf);
                        });
                      });
}

}  // namespace hexe::cpu

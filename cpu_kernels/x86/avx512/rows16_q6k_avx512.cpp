// AVX-512 VNNI decode tile for Q6_K weights in the Rows16 layout (repack.h). Per super-block and
// 16 rows, three 64-byte loads (two of low-bit nibbles, one of 2-bit high parts, the GGUF bytes
// moved) give the unsigned 6-bit levels of four 4-column sets: each set is one shift and one
// bit-select (vpternlogd) away from a vpdpbusd operand, so the stream stays 6.6 bits a weight.
// The -32 offset meets the activation's 16-sums (bsums) once per sub-block, before the int8
// scale, so the super-block's integer sum is the GGUF reference's exactly; the float step after it
// is the reference's too (mul, mul, add; no FMA), so the tile reproduces dot_q6_k bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/avx512/dpbusd_bcast.h"
#include "cpu_kernels/x86/rows16_walk.h"

namespace hexe::cpu {
namespace {

constexpr size_t kBlockBytes = kQ6KRows16Bytes;
// Software prefetch: each line into L1 (T0) this many bytes ahead of the chunk being read, and
// into L2 (T2) twice as far. On the DRAM-bound decode benchmark (qwen3-30b-a3b, q6_k, 2 threads)
// the L1 distance alone at 0 / 512 / 768 / 1024 / 1536 / 2048 gave ratios 0.55-0.64 / 0.81-0.84 /
// 0.80-0.84 / 0.82-0.96 / 0.82-0.85 / 0.68-0.70; the L2 one on top streamed 8-10% faster
// (1 KiB + 2 KiB against 1 KiB alone, alternating 48 MB passes in one process: 18.3-20.5
// against 16.1-18.8 GB/s; 3 KiB in L2 the same, 4 KiB a little less, 6-8 KiB no gain).
constexpr int kPrefetchBytes = 1024;
// vpternlogd: bits of the first operand where the third is 1, of the second elsewhere.
constexpr int kSelect = 0xE4;

// Per activation row and block: 32 x the 16 sub-block sums, the -32 offset of each sub-block.
void act_bias(const BlockQ8_K* a, int64_t nb, int32_t* out) {
  for (int64_t b = 0; b < nb; ++b)
    for (int j = 0; j < 16; ++j) out[b * 16 + j] = 32 * int32_t(a[b].bsums[j]);
}

// The four sets of one (h, c): q[t] holds the levels of columns 128h + 32t + 4c + i, row r in
// lane r. The select keeps the nibble from the low 4 bits and the 2-bit part from bits 4..5;
// masking qh to fields 0/2 (0x33) or 1/3 (0xCC) first leaves zeros in bits 6..7 after the shift
// (the 16-bit shifts carry bits across bytes only into the nibble half, which the select drops).
inline void levels(const uint8_t* v, __m512i m4, __m512i m02, __m512i m13, __m512i q[4]) {
  const __m512i l0 = _mm512_loadu_si512(v), l1 = _mm512_loadu_si512(v + 64);
  const __m512i qh = _mm512_loadu_si512(v + 128);
  const __m512i h02 = _mm512_and_si512(qh, m02), h13 = _mm512_and_si512(qh, m13);
  q[0] = _mm512_ternarylogic_epi32(l0, _mm512_slli_epi16(h02, 4), m4, kSelect);
  q[1] = _mm512_ternarylogic_epi32(l1, _mm512_slli_epi16(h13, 2), m4, kSelect);
  q[2] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l0, 4), h02, m4, kSelect);
  q[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l1, 4), _mm512_srli_epi16(h13, 2), m4, kSelect);
}

template <int R>
void group(int64_t nb, const uint8_t* g, const BlockQ8_K* const* a, const int32_t* const* ab, float* y,
           int64_t ys, __mmask16 valid, int pf) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m02 = _mm512_set1_epi8(0x33), m13 = _mm512_set1_epi8(char(0xCC));
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = g + size_t(b) * kBlockBytes;
    __m512i isum[R];
    for (int r = 0; r < R; ++r) isum[r] = _mm512_setzero_si512();
    // Chunk (h, s): c = 4s..4s+3, i.e. sub-block 8h + 2t + s of each set t.
    for (int h = 0; h < 2; ++h)
      for (int s = 0; s < 2; ++s) {
        // The chunk's triples, then its scales (sub-block 8h + 2t + s of each set t): the
        // super-block is laid out in the order this loop reads it, d last (repack.h).
        const uint8_t* qb = o + q6k_rows16_chunk(h, s);
        if (pf)  // the last chunk also covers d
          for (const uint8_t* p = qb; p < qb + kQ6KRows16Chunk + (h & s ? 64 : 0); p += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(p + pf), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(p + 2 * pf), _MM_HINT_T2);
          }
        __m512i dot[R][4];
        for (int r = 0; r < R; ++r)
          for (int t = 0; t < 4; ++t) dot[r][t] = _mm512_setzero_si512();
        for (int cc = 0; cc < 4; ++cc) {
          __m512i q[4];
          levels(qb + cc * kQ6KRows16Triple, m4, m02, m13, q);
          const int col = 128 * h + 4 * (4 * s + cc);
          for (int r = 0; r < R; ++r)
            for (int t = 0; t < 4; ++t)
              // bcast4, not dpbusd_bcast: the folded form read 0.655 against 0.708 in moe-layer
              // qwen3-30b-a3b q6_k decode at the high bandwidth level (0.921 / 0.940 at the low
              // one; builds alternating on the Zen 4 VM), and end to end no better.
              dot[r][t] = _mm512_dpbusd_epi32(dot[r][t], q[t], bcast4(a[r][b].qs + col + 32 * t));
        }
        for (int t = 0; t < 4; ++t) {
          const int j = 8 * h + 2 * t + s;
          const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o + q6k_rows16_scales(j))));
          for (int r = 0; r < R; ++r) {
            const __m512i sj = _mm512_sub_epi32(dot[r][t], _mm512_set1_epi32(ab[r][b * 16 + j]));
            isum[r] = _mm512_add_epi32(isum[r], _mm512_mullo_epi32(sj, sc));
          }
        }
      }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + kQ6KRows16D)));
    for (int r = 0; r < R; ++r) {
      // (da * d) * sumi + acc, rounded step by step as the reference (the _round forms are not
      // contracted into an FMA by the compiler).
      const __m512 dd = _mm512_mul_round_ps(_mm512_set1_ps(a[r][b].d), d, _MM_FROUND_CUR_DIRECTION);
      const __m512 t = _mm512_mul_round_ps(dd, _mm512_cvtepi32_ps(isum[r]), _MM_FROUND_CUR_DIRECTION);
      acc[r] = _mm512_add_round_ps(acc[r], t, _MM_FROUND_CUR_DIRECTION);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + r * ys, valid, acc[r]);
}

}  // namespace

void gemm_tile_q6_K_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  const int64_t nb = k / kQKK;
  const int pf = decode_prefetch_bytes(kPrefetchBytes);
  thread_local std::vector<int32_t> bias;
  if (bias.size() < size_t(mr * nb * 16)) bias.resize(size_t(mr * nb * 16));
  for (int64_t i = 0; i < mr; ++i)
    act_bias(reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + size_t(i) * arb), nb,
             bias.data() + i * nb * 16);
  rows16_walk(mr, nr, static_cast<const uint8_t*>(w), gstride, y, ys,
              [&](auto rows, int64_t i0, const uint8_t* g, float* yo, int n) {
                const __mmask16 valid = __mmask16((1u << n) - 1);
                constexpr int R = decltype(rows)::value;
                const BlockQ8_K* a[R];
                const int32_t* ab[R];
                for (int r = 0; r < R; ++r) {
                  a[r] = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + size_t(i0 + r) * arb);
                  ab[r] = bias.data() + (i0 + r) * nb * 16;
                }
                group<R>(nb, g, a, ab, yo, ys, valid, pf);
              });
}

}  // namespace hexe::cpu

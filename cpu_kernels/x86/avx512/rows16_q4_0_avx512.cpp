// AVX-512 VNNI decode tile for Q4_0 weights in the Rows16 layout (repack.h): per 32-block and 16
// rows, four 64-byte loads of nibbles (16 rows x 4 bytes each), one AND per nibble half into
// vpdpbusd against the activation's 4 bytes broadcast (the high half kept in place, i.e. times 16,
// and shifted back once per block, exact), the -8 offset met by the activation block's sum, one
// f16 -> f32 scale vector and one FMA; each output lane is one weight row. The GGUF-layout tile
// reads one row's 18-byte blocks at a time and computes at 9 GB/s a core, under the stream.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/avx512/rows16_walk.h"

namespace hexe::cpu {
namespace {

constexpr size_t kPairBytes = 576;
// Software prefetch of each pair: into L1 (T0) this many bytes ahead, into L2 (T2) twice as far
// (the other Rows16 tiles' scheme; their measured distances in rows16_q8_0_avx512.cpp).
constexpr int kPrefetchBytes = 1024;

// Per activation row and block: -8 * sum(a) (the offset of the levels) and the block's scale.
struct ActQ4 {
  int32_t corr;
  float d;
};

void act_info(const BlockQ8_0* a, int64_t nb, ActQ4* out) {
  for (int64_t b = 0; b < nb; ++b) {
    int32_t sum = 0;
    for (int j = 0; j < kQK; ++j) sum += a[b].qs[j];
    out[b] = {-8 * sum, _cvtsh_ss(a[b].d)};
  }
}

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// y[r * ys + lane] for R activation rows and the 16 rows of the group at g (lanes < valid).
template <int R>
void group(int64_t nb, const uint8_t* g, const BlockQ8_0* const* a, const ActQ4* const* ai, float* y,
           int64_t ys, __mmask16 valid, int pf) {
  const __m512i m_lo = _mm512_set1_epi8(0x0F), m_hi = _mm512_set1_epi8(char(0xF0));
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = g + size_t(b >> 1) * kPairBytes;
    const uint8_t* q = pair + (b & 1) * 256;
    if (pf && !(b & 1))
      for (int c = 0; c < int(kPairBytes); c += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(pair + pf + c), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pair + 2 * pf + c), _MM_HINT_T2);
      }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair + 512 + (b & 1) * 32)));
    __m512i lo[4], hi[4];
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_loadu_si512(q + c * 64);
      lo[c] = _mm512_and_si512(v, m_lo);
      hi[c] = _mm512_and_si512(v, m_hi);
    }
    for (int r = 0; r < R; ++r) {
      const int8_t* aq = a[r][b].qs;
      __m512i sl = _mm512_set1_epi32(ai[r][b].corr), sh = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        sl = _mm512_dpbusd_epi32(sl, lo[c], bcast4(aq + 4 * c));
        sh = _mm512_dpbusd_epi32(sh, hi[c], bcast4(aq + 16 + 4 * c));
      }
      const __m512 s = _mm512_cvtepi32_ps(_mm512_add_epi32(sl, _mm512_srai_epi32(sh, 4)));
      acc[r] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw, _mm512_set1_ps(ai[r][b].d)), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + r * ys, valid, acc[r]);
}

}  // namespace

void gemm_tile_q4_0_rows16_avx512(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act,
                                  size_t arb, int64_t mr, float* y, int64_t ys) {
  const int64_t nb = k / kQK;
  const int pf = decode_prefetch_bytes(kPrefetchBytes);
  thread_local std::vector<ActQ4> info;
  if (info.size() < size_t(mr * nb)) info.resize(size_t(mr * nb));
  for (int64_t i = 0; i < mr; ++i)
    act_info(reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(act) + size_t(i) * arb), nb,
             info.data() + i * nb);
  rows16_walk(mr, nr, static_cast<const uint8_t*>(w), gstride, y, ys,
              [&](auto rows, int64_t i0, const uint8_t* g, float* yo, __mmask16 valid) {
                constexpr int R = decltype(rows)::value;
                const BlockQ8_0* a[R];
                const ActQ4* ai[R];
                for (int r = 0; r < R; ++r) {
                  a[r] = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(act) + size_t(i0 + r) * arb);
                  ai[r] = info.data() + (i0 + r) * nb;
                }
                group<R>(nb, g, a, ai, yo, ys, valid, pf);
              });
}

}  // namespace hexe::cpu

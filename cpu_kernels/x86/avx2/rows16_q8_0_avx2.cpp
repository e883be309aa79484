// AVX2 tiles for Q8_0 weights in the Rows16 layout (repack.h: per block, 8 lines of 16 rows x 4
// columns, the levels stored XOR 0x80). A 32-byte half line is 8 rows; one broadcast of 4
// activation bytes meets them in one vpmaddubsw through the sign trick (|w| as the unsigned
// operand, the activation negated where w < 0: |w| <= 128 and |a| <= 127 keep a pair of
// products below 32768), one vpmaddwd widens the 8 rows' pairs to 32 bits.
#include <immintrin.h>

#include <cstdint>

#include "cpu_kernels/blocks.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/x86/avx2/rows16_avx2.h"
#include "cpu_kernels/x86/rows16_walk.h"

namespace hexe::cpu {
namespace {

using rows16_avx2::bcast4;

constexpr size_t kPairBytes = 1088;  // two blocks of 16 rows: 2 x 512 level bytes, 2 x 32 bytes of d

// R activation rows against the 16-row group at g: y[r * ys + j] for j < n.
template <int R>
void group(int64_t nb, const uint8_t* g, const BlockQ8_0* const* a, float* y, int64_t ys, int n, int pf) {
  const __m256i flip = _mm256_set1_epi8(char(0x80)), ones = _mm256_set1_epi16(1);
  __m256 acc[2][R];
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < R; ++r) acc[h][r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pair = g + size_t(b / 2) * kPairBytes;
    const uint8_t* q = pair + size_t(b % 2) * 512;
    if (pf)
      for (int c = 0; c < 512; c += 64) _mm_prefetch(reinterpret_cast<const char*>(q + c + pf), _MM_HINT_T0);
    __m256i isum[2][R];
    for (int h = 0; h < 2; ++h)
      for (int r = 0; r < R; ++r) isum[h][r] = _mm256_setzero_si256();
    for (int c = 0; c < 8; ++c) {
      __m256i av[R];
      for (int r = 0; r < R; ++r) av[r] = bcast4(a[r][b].qs + 4 * c);
      for (int h = 0; h < 2; ++h) {
        const __m256i w = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + c * 64 + h * 32)), flip);
        const __m256i wabs = _mm256_abs_epi8(w);
        for (int r = 0; r < R; ++r) {
          const __m256i pairs = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(av[r], w));
          isum[h][r] = _mm256_add_epi32(isum[h][r], _mm256_madd_epi16(pairs, ones));
          asm("" : "+x"(isum[h][r]));  // running sums (GCC would reassociate them and spill)
        }
      }
    }
    const uint8_t* d = pair + 1024 + size_t(b % 2) * 32;
    for (int h = 0; h < 2; ++h) {
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + h * 16)));
      for (int r = 0; r < R; ++r) {
        const __m256 da = _mm256_set1_ps(_cvtsh_ss(a[r][b].d));
        acc[h][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[h][r]), _mm256_mul_ps(dw, da), acc[h][r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) rows16_avx2::store_row(acc[0][r], acc[1][r], y + r * ys, n);
}

}  // namespace

void gemm_tile_q8_0_rows16_avx2(int64_t k, const void* w, size_t gstride, int64_t nr, const void* act, size_t arb,
                                int64_t mr, float* y, int64_t ys) {
  const int64_t nb = k / kQK;
  const int pf = decode_prefetch_bytes(kAvx2Rows16PrefetchBytes, PrefetchOnAmd::On);
  rows16_walk(mr, nr, static_cast<const uint8_t*>(w), gstride, y, ys,
              [&](auto rows, int64_t i0, const uint8_t* g, float* yo, int n) {
                constexpr int R = decltype(rows)::value;
                const BlockQ8_0* a[R];
                for (int r = 0; r < R; ++r)
                  a[r] = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(act) + size_t(i0 + r) * arb);
                rows16_avx2::in_pairs<R>([&](auto rr, int r0) {
                  group<decltype(rr)::value>(nb, g, a + r0, yo + r0 * ys, ys, n, pf);
                });
              });
}

}  // namespace hexe::cpu

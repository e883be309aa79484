// AVX-512 Q4_K x Q8_K tiles for few activation rows (decode): 512-bit vectors over two
// sub-blocks at once, scales applied as int16 through vpdpwssd (no 32-bit multiplies), and up to
// 4 weight rows sharing each activation load. With 4+ activation rows the 256-bit tile (which
// unpacks each weight block once for 4 activation rows) is used instead.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/qgemm256.h"

namespace hexe::cpu {
namespace {

struct DotVnni256 {
  static __m256i dot(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
};

// The 12 packed scale bytes -> sc[0..8) then m[0..8) (GGML's get_scale_min_k4, all 8 at once).
inline void unpack_scales(const uint8_t* q, uint32_t out[4]) {
  constexpr uint32_t kM1 = 0x3f3f3f3f, kM2 = 0x0f0f0f0f, kM3 = 0x03030303;
  uint32_t u[3];
  std::memcpy(u, q, 12);
  out[0] = u[0] & kM1;
  out[1] = (u[2] & kM2) | (((u[0] >> 6) & kM3) << 4);
  out[2] = u[1] & kM1;
  out[3] = ((u[2] >> 4) & kM2) | (((u[1] >> 6) & kM3) << 4);
}

// Lanes 0-15 take sc[a], lanes 16-31 sc[b] for the four (low|high nibble) x (first|second half)
// vectors: (0,2), (1,3), (4,6), (5,7).
inline __m512i scale_index(int a, int b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(short(a))), _mm256_set1_epi16(short(b)), 1);
}

inline __m512i pair256(const int8_t* lo, const int8_t* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi)), 1);
}

// y[r * w_step] = dot(weight row r, activation row) for r < R.
template <int R>
void q4k_rows(int64_t nb, const uint8_t* w, size_t wrb, const BlockQ8_K* a, float* y, int64_t y_step) {
  const __m512i idx0 = scale_index(0, 2), idx1 = scale_index(1, 3), idx2 = scale_index(4, 6),
                idx3 = scale_index(5, 7);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  __m128 accm[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps(), accm[r] = _mm_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K& ab = a[b];
    const __m512i a0 = pair256(ab.qs, ab.qs + 64), a1 = pair256(ab.qs + 32, ab.qs + 96);
    const __m512i a2 = pair256(ab.qs + 128, ab.qs + 192), a3 = pair256(ab.qs + 160, ab.qs + 224);
    const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(ab.bsums + 8)));
    for (int r = 0; r < R; ++r) {
      const auto& blk = *reinterpret_cast<const BlockQ4_K*>(w + size_t(r) * wrb + size_t(b) * sizeof(BlockQ4_K));
      if (b + 4 < nb) _mm_prefetch(reinterpret_cast<const char*>(&blk + 4), _MM_HINT_T0);
      uint32_t sm[4];
      unpack_scales(blk.scales, sm);
      const __m128i sc8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sm[0]) | int64_t(sm[1]) << 32));
      const __m128i mn8 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sm[2]) | int64_t(sm[3]) << 32));
      const __m512i sc = _mm512_castsi128_si512(sc8);
      const __m512i q0 = _mm512_loadu_si512(blk.qs), q1 = _mm512_loadu_si512(blk.qs + 64);
      __m512i isum = _mm512_dpwssd_epi32(_mm512_setzero_si512(),
                                         _mm512_maddubs_epi16(_mm512_and_si512(q0, m4), a0),
                                         _mm512_permutexvar_epi16(idx0, sc));
      isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(q0, 4), m4), a1),
                                 _mm512_permutexvar_epi16(idx1, sc));
      isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(_mm512_and_si512(q1, m4), a2),
                                 _mm512_permutexvar_epi16(idx2, sc));
      isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(q1, 4), m4), a3),
                                 _mm512_permutexvar_epi16(idx3, sc));
      const float da = ab.d * f16(blk.d);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(da), acc[r]);
      accm[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mn8, bs)), _mm_set1_ps(ab.d * f16(blk.dmin)), accm[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    __m128 m = accm[r];
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    y[r * y_step] = _mm512_reduce_add_ps(acc[r]) - _mm_cvtss_f32(m);
  }
}

}  // namespace

void gemm_tile_q4_K_avx512(int64_t k, const void* w, size_t wrb, int64_t nr, const void* act,
                           size_t arb, int64_t mr, float* y, int64_t ys) {
  if (mr >= 4) {
    tile_loop<K4Rows, KQ4, DotVnni256, kQKK>(k, w, wrb, nr, act, arb, mr, y, ys);
    return;
  }
  const int64_t nb = k / kQKK;
  const auto* w8 = static_cast<const uint8_t*>(w);
  for (int64_t i = 0; i < mr; ++i) {
    const auto* a = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(act) + size_t(i) * arb);
    float* yi = y + i * ys;
    int64_t j = 0;
    for (; j + 4 <= nr; j += 4) q4k_rows<4>(nb, w8 + size_t(j) * wrb, wrb, a, yi + j, 1);
    switch (nr - j) {
      case 3: q4k_rows<3>(nb, w8 + size_t(j) * wrb, wrb, a, yi + j, 1); break;
      case 2: q4k_rows<2>(nb, w8 + size_t(j) * wrb, wrb, a, yi + j, 1); break;
      case 1: q4k_rows<1>(nb, w8 + size_t(j) * wrb, wrb, a, yi + j, 1); break;
      default: break;
    }
  }
}

}  // namespace hexe::cpu

// AVX2 tiles for the quantised formats (u8 x s8 products through maddubs + madd) and the AVX2
// row of the kernel table.
#include <immintrin.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/qgemm256.h"

namespace hexe::cpu {
namespace {

// The AVX2 policy of qgemm256.h. No saturation in maddubs: a pair of products stays within
// 2 x 128 x 127 < 32768 (|q| <= 128 in the legacy formats' sign trick, levels <= 63 in the
// K-quants). A scale (i16) multiplies the pair sums inside the madd that adds them.
struct DotAvx2 {
  using Scale = __m256i;
  static constexpr int kDecodePrefetchBytes = kAvx2DecodePrefetchBytes;
  static __m256i dot(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
  // Eight 16-bit lanes in both halves, then one byte shuffle per scale (element j = bytes 2j, 2j+1).
  static void scales8(const uint8_t* sc, Scale* out) {
    uint64_t v;
    std::memcpy(&v, sc, 8);
    const __m256i both = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(v))));
    for (int j = 0; j < 8; ++j) out[j] = _mm256_shuffle_epi8(both, _mm256_set1_epi16(int16_t(0x0100 + 0x0202 * j)));
  }
  // Eight scales of one half in both 128-bit lanes, then one shuffle per pair: lane 0 takes
  // element 2t, lane 1 element 2t + 1.
  static void scale_pairs16(const int8_t* sc, Scale* out) {
    const __m256i all = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i halves[2] = {_mm256_broadcastsi128_si256(_mm256_castsi256_si128(all)),
                               _mm256_broadcastsi128_si256(_mm256_extracti128_si256(all, 1))};
    for (int h = 0; h < 2; ++h) {
      const __m256i half = halves[h];
      for (int t = 0; t < 4; ++t)
        out[4 * h + t] = _mm256_shuffle_epi8(half, _mm256_set_m128i(_mm_set1_epi16(int16_t(0x0100 + 0x0202 * (2 * t + 1))),
                                                                    _mm_set1_epi16(int16_t(0x0100 + 0x0202 * (2 * t)))));
    }
  }
  static __m256i dot_scaled(__m256i u, __m256i s, Scale sc) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc); }
};

constexpr void set(GemmTable& t, DType w, GemmTileFn fn,
                   const char* name) {
  t[static_cast<uint32_t>(w)] = {fn, name, nullptr, int64_t(detail::kDTypeTable[static_cast<uint32_t>(w)].block_elems), false};
}

constexpr GemmTable make_table() {
  GemmTable t{};
  for (auto& e : t) e = {nullptr, nullptr, "no AVX2 kernel for this format", 1, false};
  set(t, DType::F32, gemm_tile_f32_avx2, "avx2/f32");
  set(t, DType::F16, gemm_tile_f16_avx2, "avx2/f16");
  set(t, DType::BF16, gemm_tile_bf16_avx2, "avx2/bf16");
  set(t, DType::Q4_0, tile_loop<LegacyRows, LQ4_0, DotAvx2, kQK>, "avx2/q4_0");
  set(t, DType::Q4_1, tile_loop<LegacyRows, LQ4_1, DotAvx2, kQK>, "avx2/q4_1");
  set(t, DType::Q5_0, tile_loop<LegacyRows, LQ5_0, DotAvx2, kQK>, "avx2/q5_0");
  set(t, DType::Q5_1, tile_loop<LegacyRows, LQ5_1, DotAvx2, kQK>, "avx2/q5_1");
  set(t, DType::Q8_0, tile_loop<LegacyRows, LQ8_0, DotAvx2, kQK>, "avx2/q8_0");
  set(t, DType::Q4_K, tile_loop<K4Rows, KQ4, DotAvx2, kQKK>, "avx2/q4_K");
  set(t, DType::Q5_K, tile_loop<K4Rows, KQ5, DotAvx2, kQKK>, "avx2/q5_K");
  set(t, DType::Q6_K, tile_loop<K6Rows, KQ6, DotAvx2, kQKK>, "avx2/q6_K");
  return t;
}

constexpr GemmTable make_rows16_table() {
  GemmTable t{};
  for (auto& e : t) e = {nullptr, nullptr, "no AVX2 rows16 kernel for this format", 1, false};
  set(t, DType::Q8_0, gemm_tile_q8_0_rows16_avx2, "avx2/q8_0/rows16");
  set(t, DType::Q4_0, gemm_tile_q4_0_rows16_avx2, "avx2/q4_0/rows16");
  set(t, DType::Q4_1, gemm_tile_q4_1_rows16_avx2, "avx2/q4_1/rows16");
  set(t, DType::Q4_K, gemm_tile_q4_K_rows16_avx2, "avx2/q4_K/rows16");
  return t;
}

}  // namespace

constinit const GemmTable kGemmAvx2 = make_table();
constinit const GemmTable kGemmRows16Avx2 = make_rows16_table();

}  // namespace hexe::cpu

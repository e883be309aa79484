// AVX2 tiles for the quantised formats (u8 x s8 products through maddubs + madd) and the AVX2
// row of the kernel table.
#include <immintrin.h>

#include <array>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/qgemm256.h"

namespace hexe::cpu {
namespace {

// No intermediate saturation: operands stay below 128 x 127 x 2 per i16 pair.
struct DotAvx2 {
  static __m256i dot(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
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

}  // namespace

constinit const GemmTable kGemmAvx2 = make_table();

}  // namespace hexe::cpu

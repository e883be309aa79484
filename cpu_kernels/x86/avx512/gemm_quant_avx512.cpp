// AVX-512 VNNI tiles for the quantised formats (u8 x s8 products through vpdpbusd on 256-bit
// vectors) and the AVX-512 row of the kernel table.
#include <immintrin.h>

#include <array>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/x86/avx512/decode_rows.h"

namespace hexe::cpu {
namespace {


constexpr void set(GemmTable& t, DType w, GemmTileFn fn,
                   const char* name) {
  t[static_cast<uint32_t>(w)] = {fn, name, nullptr, int64_t(detail::kDTypeTable[static_cast<uint32_t>(w)].block_elems), detail::kDTypeTable[static_cast<uint32_t>(w)].block_elems > 1};
}

constexpr GemmTable make_table() {
  GemmTable t{};
  for (auto& e : t) e = {nullptr, nullptr, "no AVX-512 kernel for this format", 1, false};
  set(t, DType::F32, gemm_tile_f32_avx512, "avx512/f32");
  set(t, DType::F16, gemm_tile_f16_avx512, "avx512/f16");
  set(t, DType::BF16, gemm_tile_bf16_avx512, "avx512/bf16");
  set(t, DType::Q4_0, tile_loop<LegacyRows, LQ4_0, DotVnni256, kQK>, "avx512_vnni/q4_0");
  set(t, DType::Q4_1, tile_loop<LegacyRows, LQ4_1, DotVnni256, kQK>, "avx512_vnni/q4_1");
  set(t, DType::Q5_0, tile_loop<LegacyRows, LQ5_0, DotVnni256, kQK>, "avx512_vnni/q5_0");
  set(t, DType::Q5_1, tile_loop<LegacyRows, LQ5_1, DotVnni256, kQK>, "avx512_vnni/q5_1");
  set(t, DType::Q8_0, gemm_tile_q8_0_avx512, "avx512_vnni/q8_0");
  set(t, DType::Q4_K, gemm_tile_q4_K_avx512, "avx512_vnni/q4_K");
  set(t, DType::Q5_K, gemm_tile_q5_K_avx512, "avx512_vnni/q5_K");
  set(t, DType::Q6_K, gemm_tile_q6_K_avx512, "avx512_vnni/q6_K");
  return t;
}

// Entries that replace make_table()'s on AMD CPUs with AVX512_BF16 (dispatch.cpp says why).
constexpr GemmTable make_bf16_table() {
  GemmTable t{};
  for (auto& e : t) e = {nullptr, nullptr, "no AVX512_BF16 kernel for this format", 1, false};
  set(t, DType::BF16, gemm_tile_bf16_dp_avx512, "avx512_bf16/bf16");
  return t;
}

constexpr GemmTable make_rows16_table() {
  GemmTable t{};
  for (auto& e : t) e = {nullptr, nullptr, "no AVX-512 rows16 kernel for this format", 1, false};
  set(t, DType::Q8_0, gemm_tile_q8_0_rows16_avx512, "avx512_vnni/q8_0/rows16");
  set(t, DType::Q4_0, gemm_tile_q4_0_rows16_avx512, "avx512_vnni/q4_0/rows16");
  set(t, DType::Q4_1, gemm_tile_q4_1_rows16_avx512, "avx512_vnni/q4_1/rows16");
  set(t, DType::Q5_0, gemm_tile_q5_0_rows16_avx512, "avx512_vnni/q5_0/rows16");
  set(t, DType::Q5_1, gemm_tile_q5_1_rows16_avx512, "avx512_vnni/q5_1/rows16");
  set(t, DType::Q4_K, gemm_tile_q4_K_rows16_avx512, "avx512_vnni/q4_K/rows16");
  set(t, DType::Q5_K, gemm_tile_q5_K_rows16_avx512, "avx512_vnni/q5_K/rows16");
  set(t, DType::Q6_K, gemm_tile_q6_K_rows16_avx512, "avx512_vnni/q6_K/rows16");
  return t;
}

}  // namespace

constinit const GemmTable kGemmAvx512 = make_table();
constinit const GemmTable kGemmAvx512Bf16 = make_bf16_table();
constinit const GemmTable kGemmRows16Avx512 = make_rows16_table();
#ifdef HEXE_AVX512_EMULATED  // this build of the tier runs on SIMDe (emulated_avx512.h)
constinit const bool kAvx512Emulated = true;
#else
constinit const bool kAvx512Emulated = false;
#endif

}  // namespace hexe::cpu

// Internal: the per-format kernel traits table (one entry per weight format and ISA tier) that
// the matmul/MoE fronts dispatch through. Filled once at start-up from the ISA files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "cpu_kernels/format.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/repack.h"

namespace hexe::cpu {

// y[i * y_stride + j] = dot(activation row i, weight row j) for i < mr, j < nr.
// w: nr rows, w_row_bytes apart, of k elements in the weight format. act: mr rows, act_row_bytes
// apart, in the format's paired activation format (float rows for F32/F16/BF16 weights, Q8_0
// rows for the 32-element formats, Q8_K rows for the K-quants). Kernels reuse each unpacked weight
// block across up to 4 activation rows.
using GemmTileFn = void (*)(int64_t k, const void* w, size_t w_row_bytes, int64_t nr,
                            const void* act, size_t act_row_bytes, int64_t mr, float* y,
                            int64_t y_stride);

struct GemmKernel {
  GemmTileFn fn = nullptr;
  const char* name = nullptr;     // "avx512_vnni/q4_K": the variant, printed by HEXE_LOG=dispatch
  const char* decline = nullptr;  // when fn is null: why this tier has no kernel for the format
  int64_t k_multiple = 1;         // the kernel needs k % k_multiple == 0
  bool needs_vnni = false;        // uses vpdpbusd: usable only when AVX512_VNNI is present
  Isa tier = Isa::Scalar;         // the table's tier (set by the dispatch table)
  // Activation rows a caller hands over per call at most. Most tiles reuse weights 4 rows at a
  // time and gain nothing from more; the AMX K-quant tiles (Q4_K, Q6_K) prepare each weight
  // super-block once per call for all its row tiles, so they take bigger calls.
  int64_t rows_per_call = 64;
};

using GemmTable = std::array<GemmKernel, detail::kDTypeCount>;

// The activation format a weight format's dot products consume (F32 = float rows).
inline DType paired_activation(DType w) {
  switch (w) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
      return DType::Q8_0;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return DType::Q8_K;
    default:
      return DType::F32;
  }
}

// Per-tier tables indexed by DType id. The ISA tables are constant-initialised data (constinit),
// so building the dispatch table never executes code compiled for an ISA the CPU may lack.
GemmKernel gemm_kernel_ref(DType w);
extern const GemmTable kGemmAvx2;
extern const GemmTable kGemmAvx512;

// Float-weight tiles of the ISA files (referenced by the tables).
void gemm_tile_f32_avx2(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_f16_avx2(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_bf16_avx2(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_f32_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_f16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_bf16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
// BF16 through vdpbf16ps (AVX512_BF16) below 4 activation rows, the widening tile above; the
// dispatch table takes it in place of the widening tile on AMD CPUs with AVX512_BF16 (where it
// was measured faster; see dispatch.cpp).
void gemm_tile_bf16_dp_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
extern const GemmTable kGemmAvx512Bf16;
// Q4_K and Q5_K with 512-bit decode tiles (fewer than 4 activation rows), else the 256-bit VNNI tile.
void gemm_tile_q4_K_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q5_K_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
// Q6_K likewise: one weight row at a time below 4 activation rows.
void gemm_tile_q6_K_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
// Q8_0 likewise: 4 weight rows per activation load below 4 activation rows.
void gemm_tile_q8_0_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);

// Rows16 layout (repack.h): the same tile signature with w at a 16-row group and w_row_bytes the
// group stride; nr may end inside a group (outputs of the padding rows are not written). The
// scalar twins (ref/rows16_ref.cpp) serve the tiers without a SIMD Rows16 tile for the format.
GemmKernel gemm_kernel_rows16_ref(DType w);
extern const GemmTable kGemmRows16Avx512;
// True in the build of the AVX-512 files that runs on SIMDe (tests only: x86/avx512/emulated_avx512.h):
// cpu_features() then reports AVX-512 on AVX2 CPUs.
extern const bool kAvx512Emulated;
void gemm_tile_q8_0_rows16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_0_rows16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_1_rows16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q5_0_rows16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q5_1_rows16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_K_rows16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q5_K_rows16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q6_K_rows16_avx512(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
// The AVX2 tier's Rows16 tiles (the formats whose GGUF-layout AVX2 tile computes below a core's
// DRAM share; the others decline, and the engine keeps their GGUF rows).
extern const GemmTable kGemmRows16Avx2;
void gemm_tile_q8_0_rows16_avx2(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_0_rows16_avx2(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_1_rows16_avx2(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_K_rows16_avx2(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
// Bytes ahead of the weight stream a decode tile prefetches (0: none): HEXE_PREFETCH when set (a
// diagnostic for measuring it), else the tile's own measured default, on AMD CPUs only where the
// tile says so: the AVX-512 tiles' prefetch slowed their stream on Zen 4, the AVX2 tiles' kept
// them fed on Zen 3 (dispatch.cpp).
enum class PrefetchOnAmd { Off, On };
int decode_prefetch_bytes(int tile_default, PrefetchOnAmd amd = PrefetchOnAmd::Off);
// The AVX2 tiles' distance (quantised and float): flat from 2 to 12 KiB on the Zen 3 VM
// (`moe-layer --quant q4_k --tokens 1`, ratio 0.79-0.83 at each, 0.66 without).
inline constexpr int kAvx2DecodePrefetchBytes = 4096;
// The AVX2 Rows16 tiles', into L1 only: on the same VM (qwen3-30b-a3b, 2 threads, 10 rounds
// alternating) q4_k 0.84 / 0.86 / 0.87 / 0.80 and q8_0 0.84 / 0.91 / 0.82 / 0.78 at 768 B / 1 /
// 1.5 / 4 KiB; an L2 prefetch 4 KiB ahead on top of 1 KiB, as the AVX-512 tiles take, 0.78 and 0.83.
inline constexpr int kAvx2Rows16PrefetchBytes = 1024;
// The Q4_K one reads four streams in turns (rows16_streams.h), and the hardware prefetchers then
// keep up alone: one thread from DRAM (bench_tile --layout rows16 --kib 262144 --type q4_K, three
// rounds alternating) 11.6-16.1 GB/s without, 8.6-11.3 with 1 KiB, 7.6-10.8 with 512 B. (Q8_0 read
// that way, with 1 KiB, fell from 0.84 to 0.76 in moe-layer decode on two threads: it stays one
// stream.)
inline constexpr int kAvx2Rows16Q4KPrefetchBytes = 0;

// The AMX tier (x86/amx/): Q8_0 (GGUF and Rows16) and Q4_0/Q4_1/Q5_0/Q5_1, Q4_K, Q5_K, Q6_K (Rows16 only)
// through AMX-INT8 tiles
// and BF16 (GGUF) through AMX-BF16 tiles for m >= 16 activation rows (prefill), the AVX-512
// tiles below that; every other format and layout declines (the Avx512 tier serves it).
extern const GemmTable kGemmAmx;
extern const GemmTable kGemmRows16Amx;
void gemm_tile_q8_0_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q8_0_rows16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_0_rows16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_1_rows16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q5_1_rows16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q5_K_rows16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q5_0_rows16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q4_K_rows16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
void gemm_tile_q6_K_rows16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);
// BF16 (GGUF rows) through AMX-BF16 tiles for m >= 16, the AVX-512 tile below; numerically the
// AVX-512 tile's f32 products (the activations enter as three bf16 parts).
void gemm_tile_bf16_amx(int64_t, const void*, size_t, int64_t, const void*, size_t, int64_t, float*, int64_t);

// Scalar integer dot of one weight row with one activation row (the scalar tier; exact in the
// integer part, so SIMD tiers may differ from it only by float summation order).
float vec_dot_ref(DType w, int64_t k, const void* w_row, const void* act_row);

}  // namespace hexe::cpu

namespace hexe::cpu {
// The best kernel for (w, k) with tiers up to max_tier (and the hardware); null when none.
// Logs the choice once per (format, tier, k) when HEXE_LOG=dispatch.
const GemmKernel* select_gemm(DType w, int64_t k, Isa max_tier, WeightLayout layout = WeightLayout::Gguf);
// The same without the log: for comparing candidates (the MoE layer weighs both layouts and logs
// only the one it runs).
const GemmKernel* find_gemm(DType w, int64_t k, Isa max_tier, WeightLayout layout = WeightLayout::Gguf);
}  // namespace hexe::cpu

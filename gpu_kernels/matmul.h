// GPU matrix multiply with GGML-format weights: y[m][n] = dot(x[m][:], W[n][:]). GEMV for decode
// (m <= 8), dequantise-to-F16/BF16 + cuBLAS for prefill; plus whole-row dequantisation.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "cpu_kernels/format.h"
#include "gpu_kernels/ops.h"
#include "gpu_kernels/status.h"

namespace hexe::gpu {

// All pointers are device pointers. Same meaning as cpu::MatmulParams.
struct MatmulParams {
  const void* w = nullptr;   // n rows of k elements of w_type, rows contiguous (row_bytes(w_type,k));
                             // 16-byte aligned (cudaMalloc and GGUF's 32-byte alignment give it)
  DType w_type = DType::F32;
  int64_t n = 0;             // output features
  int64_t k = 0;             // input features, a multiple of w_type's block size
  const float* x = nullptr;  // m rows of k floats, row stride x_stride (floats)
  int64_t m = 0;
  int64_t x_stride = 0;
  float* y = nullptr;        // m rows of n floats, row stride y_stride (floats); overwritten
  int64_t y_stride = 0;
  // y += x . W^T instead of y = x . W^T (a residual added in the same launch). The GEMV reads
  // each y element once and adds its dot in one float addition: add(y, gemv) bit for bit; the
  // GEMM is cuBLAS's beta = 1.
  bool accumulate = false;
};

// Weight types with a GPU reader: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
bool supports_weight_type(DType t);

inline constexpr int64_t kGemvMaxTokens = 8;

// GEMV, m in 1..kGemvMaxTokens. Weight types with gemv_quantizes_activation(): x is quantised on
// the GPU like the CPU engine does (cpu::quantize_row to Q8_K for Q4_K/Q5_K/Q6_K, Q8_0 for
// Q4_0/Q8_0; byte-identical) and each row's dot is cpu::vec_dot_ref's integer arithmetic per
// block with float scaling (float summation order differs). Other types dequantise the weights
// to floats (bit-identical to cpu::dequantize_row) and dot with float x. Two weight rows per warp;
// F32/F16/BF16 matrices with few rows (under 16 per SM) take a block per 1-2 rows instead.
Status gemv(const MatmulParams& p, cudaStream_t stream);

// rms_norm(norm) then gemv(p) on its output, in one launch where it can (F32/F16/BF16 weights with
// few rows, as MoE routers have; m <= kGemvMaxTokens; norm.dst not norm.src): every block
// normalises the rows itself and dots the normed values; norm.dst (and norm.copy) get the normed
// rows. Bit for bit the two calls' results, which it makes otherwise. p.x is not read (the rows
// come from norm.src); p.m and p.k must be norm.rows and norm.n.
Status rms_norm_gemv(const RmsNormParams& norm, const MatmulParams& p, cudaStream_t stream);

// True for Q4_0, Q8_0, Q4_K, Q5_K, Q6_K: gemv quantises the activations (above). Exception: a k
// so large that one token's quantised row exceeds the device's shared memory (k > ~80000) takes
// the float path.
bool gemv_quantizes_activation(DType t);

// Several GEMVs of one weight type and k in one call: a layer's routed experts in decode, each
// over its own tokens, an attention layer's q, k and v projections of the same input, or an MLA
// layer's per-head k_b/v_b products. One launch for every weight type, each entry with the kernel
// gemv() would pick for it alone; entry by entry where those picks differ, or where the widest
// entry's quantised activations exceed the shared-memory budget. Entry i
// computes y_i[m_i][n_i] = x_i[m_i][k] . W_i^T with m_i in 1..kGemvMaxTokens, rows x_stride /
// y_stride_i floats apart. Each entry's result is what gemv() gives for it alone.
inline constexpr int kGemvBatchMax = 32;
struct GemvBatchEntry {
  const void* w = nullptr;
  const float* x = nullptr;
  float* y = nullptr;
  int64_t m = 0;
  int64_t n = 0;         // this entry's output features; 0: the batch's n
  int64_t y_stride = 0;  // 0: the batch's y_stride
};
struct GemvBatch {
  DType w_type = DType::F32;
  int64_t n = 0, k = 0, x_stride = 0, y_stride = 0;
  int count = 0;
  GemvBatchEntry e[kGemvBatchMax];
};
Status gemv_batched(const GemvBatch& b, cudaStream_t stream);

// Scratch and library handle of the GEMM path, owned by the caller (one per stream).
struct GemmContext {
  cublasHandle_t cublas = nullptr;  // the call sets its stream to `stream`
  void* workspace = nullptr;        // device memory, >= gemm_workspace_bytes(p, 1) bytes
  size_t workspace_bytes = 0;
};

// Workspace the GEMM path needs for p when dequantising `tile_rows` weight rows at a time
// (x converted to 16-bit: m*k*2, plus tile_rows*k*2 for the weight tile; F32 weights need none).
// More workspace means fewer, larger cuBLAS calls; gemm() uses as many rows as fit.
size_t gemm_workspace_bytes(const MatmulParams& p, int64_t tile_rows);

// Any m: x is rounded to F16 (BF16 for BF16 weights), the weights are dequantised to F16 tile by
// tile (F16/BF16 weights are used in place), and cuBLAS multiplies with F32 accumulation.
// F32 weights run a plain F32 GEMM (no TF32).
Status gemm(const MatmulParams& p, const GemmContext& ctx, cudaStream_t stream);

// gemv for m <= kGemvMaxTokens, gemm otherwise.
Status matmul(const MatmulParams& p, const GemmContext& ctx, cudaStream_t stream);

// Dequantises `rows` rows of k elements (row_bytes(type, k) apart) to F32, F16 or BF16 rows of
// k elements (dst_type picks; dst row stride dst_stride elements). F32 output equals
// cpu::dequantize_row bit for bit.
Status dequantize_rows(DType type, const void* src, int64_t rows, int64_t k, DType dst_type,
                       void* dst, int64_t dst_stride, cudaStream_t stream);

}  // namespace hexe::gpu

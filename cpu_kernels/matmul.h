// Matrix multiply with quantised weights: y[m][n] = dot(x[m][:], W[n][:]), dispatched by ISA.
#pragma once

#include <cstdint>
#include <span>

#include "cpu_kernels/format.h"
#include "cpu_kernels/repack.h"
#include "cpu_kernels/thread_pool.h"

namespace hexe::cpu {

struct MatmulParams {
  const void* w = nullptr;   // n rows of k elements of w_type, rows contiguous (row_bytes(w_type,k))
  DType w_type = DType::F32;
  // Rows16: w is repack_for_decode's copy (groups rows16_group_bytes(w_type, k) apart).
  WeightLayout w_layout = WeightLayout::Gguf;
  int64_t n = 0;             // output features
  int64_t k = 0;             // input features (a multiple of w_type's block size)
  const float* x = nullptr;  // m rows of k floats, row stride x_stride (floats)
  int64_t m = 0;
  int64_t x_stride = 0;
  float* y = nullptr;        // m rows of n floats, row stride y_stride (floats); overwritten
  int64_t y_stride = 0;
};

// Splits the work over the pool's threads. Never throws; shapes are the caller's contract.
void matmul(const MatmulParams& p, ThreadPool& pool);

// The same on the calling thread only, for callers that split work themselves (MoE, attention).
void matmul_serial(const MatmulParams& p);

// Several matmuls in one pool dispatch (an attention layer's q, k and v projections of one
// input; an FFN's gate and up): their work items in one list, split over the threads as one
// matmul's are, so a short matrix costs no dispatch and no tail of its own. Each y is exactly
// what matmul() gives. The ps must not write each other's inputs.
void matmul_many(std::span<const MatmulParams> ps, ThreadPool& pool);

// The scalar reference (dequantise each row, dot in double-free float order). Tests only.
void matmul_ref(const MatmulParams& p);

}  // namespace hexe::cpu

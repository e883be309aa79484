// Row plumbing of the forward pass on the GPU: residual adds, bias adds, gathering and weighted
// scattering of token rows (the MoE's per-expert batches) and storing K/V rows into the paged F16
// cache. Device pointers, a stream; a Status comes back.
#pragma once

#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "gpu_kernels/status.h"

namespace hexe::gpu {

// x[i] += y[i] for i < n.
Status add(float* x, const float* y, int64_t n, cudaStream_t stream);

// x[r][i] += bias[i] for `rows` rows of n floats (row stride n).
Status add_bias(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t stream);

// dst[i][:] = src[rows[i]][:] for i < n_rows; rows of `width` floats, strides in floats.
Status gather_rows(const float* src, int64_t src_stride, const int32_t* rows, int64_t n_rows, int64_t width,
                   float* dst, int64_t dst_stride, cudaStream_t stream);

// dst[rows[i]][:] += weights[i] * src[i][:] for i < n_rows. `rows` must not repeat within a call
// (one expert sees a token once), so no two threads add to one element.
Status scatter_add_weighted(const float* src, int64_t src_stride, const int32_t* rows, const float* weights,
                            int64_t n_rows, int64_t width, float* dst, int64_t dst_stride, cudaStream_t stream);

// dst[t][:] += sum over j < k, in j order, of weights[e] * src[e][:] with e = entries[t * k + j]
// (entries < 0 are skipped), for t < n_tokens: each token's routed experts' rows combined where
// one call covers many experts and a token appears in several of them (decode, batched experts).
Status combine_rows_weighted(const float* src, int64_t src_stride, const int32_t* entries, const float* weights,
                             int64_t n_tokens, int k, int64_t width, float* dst, int64_t dst_stride,
                             cudaStream_t stream);

// Stores token t's row (`width` floats at src + t * src_stride) as halves into its cache slot:
// page pages[page_start[t] + pos[t] / page_tokens], row pos[t] % page_tokens, rows `width` apart.
// `pages`, `page_start` (null: all 0) and `pos` are device arrays, as gpu::AttentionParams reads them.
Status store_kv_rows(const float* src, int64_t src_stride, int64_t n_tokens, int64_t width,
                     __half* const* pages, const int32_t* page_start, const int32_t* pos, int page_tokens,
                     cudaStream_t stream);

}  // namespace hexe::gpu

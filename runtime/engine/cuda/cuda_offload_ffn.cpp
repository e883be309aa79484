// FFNs of the GPU layers (see cuda_offload.h): the dense FFN, shared experts, and the MoE layer's
// two GPU halves around the hand-off, with routed experts resident on the GPU or streamed in.
#include "runtime/engine/cuda/cuda_offload.h"

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gpu_kernels/ops.h"
#include "gpu_kernels/rows.h"
#include "runtime/engine/cuda/cuda_check.h"

namespace hexe::gpu_offload {

void CudaOffload::dense_ffn(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  const int64_t E = s_.n_embd, F = d.ffn_gate.n_out;
  gpu_check(gpu::rms_norm({x_, d.ffn_norm, h_, T, E, s_.rms_eps}, st_));
  matmul(d.ffn_gate, h_, T, gate_);
  matmul(d.ffn_up, h_, T, up_);
  gpu_check(gpu::swiglu(gate_, up_, gate_, T * F, st_));
  matmul(d.ffn_down, gate_, T, tmp_);
  gpu_check(gpu::add(x_, tmp_, T * E, st_));
}

void CudaOffload::shared_experts(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  if (!d.shexp_gate) return;
  const int64_t F = d.shexp_gate.n_out;
  matmul(d.shexp_gate, h_, T, gate_);
  matmul(d.shexp_up, h_, T, up_);
  gpu_check(gpu::swiglu(gate_, up_, gate_, T * F, st_));
  matmul(d.shexp_down, gate_, T, shared_);
}

// The host's routing (ids_/weights_) as per-expert lists of (token row, weight), packed expert after
// expert into route_pin_ and uploaded; count[e]..count[e+1] is expert e's range.
void CudaOffload::pack_routes(int64_t T, int64_t k, int n_exp, std::vector<int64_t>& count) {
  count.assign(n_exp + 1, 0);
  for (int64_t i = 0; i < T * k; ++i) ++count[ids_[i] + 1];
  for (int e = 0; e < n_exp; ++e) count[e + 1] += count[e];
  int32_t* rows = route_pin_.data<int32_t>();
  float* w = reinterpret_cast<float*>(rows + T * k);
  std::vector<int64_t> fill(count.begin(), count.end() - 1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < k; ++j) {
      const int e = ids_[t * k + j];
      rows[fill[e]] = int32_t(t);
      w[fill[e]++] = weights_[t * k + j];
    }
  h2d(route_rows_, rows, size_t(T * k) * 4);
  h2d(route_w_, w, size_t(T * k) * 4);
  cuda_check(cudaMemsetAsync(y_, 0, size_t(T * s_.n_embd) * sizeof(float), st_), "cudaMemsetAsync");
}

// One expert over its n routed tokens (entries [r0, r0 + n) of the packed routes): their rows of
// h gathered, gate/up, SwiGLU, down, added into y_ with their routing weights.
void CudaOffload::run_expert(const DevExpert& ex, int64_t r0, int64_t n) {
  const int64_t E = s_.n_embd, F = ex.gate.n_out;
  gpu_check(gpu::gather_rows(h_, E, route_rows_ + r0, n, E, xe_, E, st_));
  matmul(ex.gate, xe_, n, gate_);
  matmul(ex.up, xe_, n, up_);
  gpu_check(gpu::swiglu(gate_, up_, gate_, n * F, st_));
  matmul(ex.down, gate_, n, ye_);
  gpu_check(gpu::scatter_add_weighted(ye_, E, route_rows_ + r0, route_w_ + r0, n, E, y_, E, st_));
}

// Routed experts resident on the GPU, each used one run over its tokens (ids_/weights_ hold the
// host's routing).
void CudaOffload::experts_on_gpu(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  std::vector<int64_t> count;
  pack_routes(T, s_.n_expert_used, int(d.experts.size()), count);
  for (int e = 0; e < int(d.experts.size()); ++e)
    if (count[e + 1] > count[e]) run_expert(d.experts[e], count[e], count[e + 1] - count[e]);
}

// Strategy stream: the experts this pass uses are copied from host memory in chunks of
// stream_chunk through two staging buffers on copy_st_, chunk j+1's copy under chunk j's
// compute (events order the reuse of a buffer), then computed as experts_on_gpu does.
void CudaOffload::stream_experts(int l, int64_t T) {
  const LayerWeights& lw = model_.layers[l];
  const int64_t E = s_.n_embd, F = lw.n_ff_exp;
  const int n_exp = int(lw.experts.size());
  std::vector<int64_t> count;
  pack_routes(T, s_.n_expert_used, n_exp, count);
  std::vector<int> used;
  for (int e = 0; e < n_exp; ++e)
    if (count[e + 1] > count[e]) used.push_back(e);
  const uint64_t gb = row_bytes(lw.gate_type, E) * F, ub = row_bytes(lw.up_type, E) * F,
                 db = row_bytes(lw.down_type, F) * E;
  // Each matrix starts at a 256-byte boundary of its slot (the GPU readers want 16).
  const uint64_t ga = round_up(gb), ua = round_up(ub), slot = staged_expert_bytes(lw, E);
  const size_t chunk = size_t(std::max(1, cfg_.stream_chunk));
  for (size_t c0 = 0, j = 0; c0 < used.size(); c0 += chunk, ++j) {
    const int b = int(j % 2);
    const size_t n_in = std::min(chunk, used.size() - c0);
    auto* base = static_cast<uint8_t*>(staging_[b]);
    // The copy waits until the compute that last read this buffer is done.
    cuda_check(cudaStreamWaitEvent(copy_st_, consumed_[b], 0), "cudaStreamWaitEvent");
    for (size_t i = 0; i < n_in; ++i) {
      const auto& ex = lw.experts[used[c0 + i]];
      uint8_t* dst = base + i * slot;
      if (registered_) {
        cuda_check(cudaMemcpyAsync(dst, ex.gate, gb, cudaMemcpyHostToDevice, copy_st_), "cudaMemcpyAsync");
        cuda_check(cudaMemcpyAsync(dst + ga, ex.up, ub, cudaMemcpyHostToDevice, copy_st_), "cudaMemcpyAsync");
        cuda_check(cudaMemcpyAsync(dst + ga + ua, ex.down, db, cudaMemcpyHostToDevice, copy_st_), "cudaMemcpyAsync");
      } else {
        // Unregistered sources: staged (and ordered) on the compute stream.
        dev_.copy_to_device(dst, ex.gate, gb);
        dev_.copy_to_device(dst + ga, ex.up, ub);
        dev_.copy_to_device(dst + ga + ua, ex.down, db);
      }
      stats_.h2d_bytes += gb + ub + db;
    }
    cuda_check(cudaEventRecord(uploaded_[b], copy_st_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(st_, uploaded_[b], 0), "cudaStreamWaitEvent");
    for (size_t i = 0; i < n_in; ++i) {
      const int e = used[c0 + i];
      const uint8_t* w = base + i * slot;
      const DevExpert staged{{w, lw.gate_type, E, F}, {w + ga, lw.up_type, E, F}, {w + ga + ua, lw.down_type, F, E}};
      run_expert(staged, count[e], count[e + 1] - count[e]);
    }
    cuda_check(cudaEventRecord(consumed_[b], st_), "cudaEventRecord");
  }
}

// The GPU half of an MoE layer before the hand-off: norm, router, and the router logits (and, for
// CPU experts, the normed input h) into pinned host memory.
void CudaOffload::moe_head(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  const int64_t E = s_.n_embd, n_exp = s_.n_expert;
  gpu_check(gpu::rms_norm({x_, d.ffn_norm, h_, T, E, s_.rms_eps}, st_));
  matmul(d.router, h_, T, router_);
  d2h(logits_pin_.data(), router_, size_t(T * n_exp) * sizeof(float));
  if (!experts_here(l, T)) d2h(h_pin_.data(), h_, size_t(T * E) * sizeof(float));
}

// After the hand-off: the routed experts' sum (from the CPU, or computed here) and the shared
// experts' output added to the residual stream.
void CudaOffload::moe_tail(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  const int64_t E = s_.n_embd;
  if (experts_here(l, T)) {
    if (d.experts_on_gpu) experts_on_gpu(l, T);
    else stream_experts(l, T);
    shared_experts(l, T);
  } else {
    h2d(y_, y_pin_.data(), size_t(T * E) * sizeof(float));
  }
  gpu_check(gpu::add(x_, y_, T * E, st_));
  if (d.shexp_gate) gpu_check(gpu::add(x_, shared_, T * E, st_));
}

}  // namespace hexe::gpu_offload

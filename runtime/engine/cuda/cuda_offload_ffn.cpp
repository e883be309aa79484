// FFNs of the GPU layers (see cuda_offload.h): the dense FFN, shared experts, and the MoE layer's
// two GPU halves around the hand-off, with routed experts resident on the GPU, streamed in,
// served from an LRU expert cache, or split between a hot set in VRAM and the CPU.
#include "runtime/engine/cuda/cuda_offload.h"

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gpu_kernels/host_flags.h"
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
  if (fused(T)) {
    matmul(d.ffn_down, gate_, T, x_, 0, 0, true);
  } else {
    matmul(d.ffn_down, gate_, T, tmp_);
    gpu_check(gpu::add(x_, tmp_, T * E, st_));
  }
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
// expert into route_pin_ and uploaded; count[e]..count[e+1] is expert e's range. With `only`, just
// the entries of experts e with (*only)[e] >= 0. y_ (the routed experts' sum) is zeroed.
int64_t CudaOffload::pack_routes(int64_t T, int64_t k, int n_exp, std::vector<int64_t>& count,
                                 const std::vector<int>* only) {
  auto taken = [only](int e) { return !only || (*only)[e] >= 0; };
  count.assign(n_exp + 1, 0);
  for (int64_t i = 0; i < T * k; ++i)
    if (taken(ids_[i])) ++count[ids_[i] + 1];
  for (int e = 0; e < n_exp; ++e) count[e + 1] += count[e];
  int32_t* rows = route_pin_.data<int32_t>();
  float* w = reinterpret_cast<float*>(rows + T * k);
  int32_t* slots = rows + 2 * T * k;
  std::vector<int64_t> fill(count.begin(), count.end() - 1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < k; ++j) {
      const int e = ids_[t * k + j];
      slots[t * k + j] = -1;
      if (!taken(e)) continue;
      slots[t * k + j] = int32_t(fill[e]);
      rows[fill[e]] = int32_t(t);
      w[fill[e]++] = weights_[t * k + j];
    }
  const int64_t n = count[n_exp];
  if (n > 0) {
    h2d(route_rows_, rows, size_t(n) * 4);
    h2d(route_w_, w, size_t(n) * 4);
    if (T <= gpu::kGemvMaxTokens) h2d(route_slots_, slots, size_t(T * k) * 4);  // run_experts' batched path
  }
  cuda_check(cudaMemsetAsync(y_, 0, size_t(T * s_.n_embd) * sizeof(float), st_), "cudaMemsetAsync");
  return n;
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

void CudaOffload::run_experts(const std::vector<ExpertRun>& runs, int64_t entries, int64_t T) {
  int64_t covered = 0;
  bool small = true;
  for (const ExpertRun& r : runs) {
    covered += r.n;
    small = small && r.n <= gpu::kGemvMaxTokens;
  }
  if (runs.empty()) return;
  if (!small || covered != entries || entries > expert_rows_ || T > gpu::kGemvMaxTokens) {
    for (const ExpertRun& r : runs) run_expert(*r.ex, r.r0, r.n);
    return;
  }
  const int64_t E = s_.n_embd, F = runs[0].ex->gate.n_out;
  gpu_check(gpu::gather_rows(h_, E, route_rows_, entries, E, xe_, E, st_));
  // Batches of kGemvBatchMax experts; each matrix of a layer has one shape and type.
  auto batched = [&](const DevLinear DevExpert::*m, const float* x, int64_t xs, float* y, int64_t ys) {
    for (size_t b0 = 0; b0 < runs.size(); b0 += gpu::kGemvBatchMax) {
      gpu::GemvBatch b;
      const DevLinear& w0 = (*runs[b0].ex).*m;
      b.w_type = w0.type;
      b.n = w0.n_out;
      b.k = w0.n_in;
      b.x_stride = xs;
      b.y_stride = ys;
      b.count = int(std::min<size_t>(gpu::kGemvBatchMax, runs.size() - b0));
      for (int i = 0; i < b.count; ++i) {
        const ExpertRun& r = runs[b0 + i];
        b.e[i] = {((*r.ex).*m).w, x + r.r0 * xs, y + r.r0 * ys, r.n};
      }
      gpu_check(gpu::gemv_batched(b, st_));
    }
  };
  batched(&DevExpert::gate, xe_, E, gate_, F);
  batched(&DevExpert::up, xe_, E, up_, F);
  gpu_check(gpu::swiglu(gate_, up_, gate_, entries * F, st_));
  batched(&DevExpert::down, gate_, F, ye_, E);
  // A token's entries are in several experts' runs: combined per token, in slot order.
  gpu_check(gpu::combine_rows_weighted(ye_, E, route_slots_, route_w_, T, int(s_.n_expert_used), E, y_, E,
                                       st_));
}

// The routed experts of a layer whose experts all run here, after the host routed them.
void CudaOffload::gpu_experts(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  if (!d.cache.slots.empty()) cache_experts(l, T);
  else if (d.experts_on_gpu) experts_on_gpu(l, T);
  else stream_experts(l, T);
}

// Routed experts resident on the GPU, each used one run over its tokens (ids_/weights_ hold the
// host's routing).
void CudaOffload::experts_on_gpu(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  std::vector<int64_t> count;
  const int64_t n = pack_routes(T, s_.n_expert_used, int(d.experts.size()), count);
  std::vector<ExpertRun> runs;
  for (int e = 0; e < int(d.experts.size()); ++e)
    if (count[e + 1] > count[e]) runs.push_back({&d.experts[e], count[e], count[e + 1] - count[e]});
  run_experts(runs, n, T);
}

// Strategy experts-cpu+hot: the hot experts' entries of the routing, computed from VRAM into y_;
// the CPU computes the others (their ids in cold_ids_) at the same time.
void CudaOffload::hot_experts(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  std::vector<int64_t> count;
  const int64_t n = pack_routes(T, s_.n_expert_used, int(d.hot_index.size()), count, &d.hot_index);
  stats_.routed_pairs += T * s_.n_expert_used;
  stats_.vram_pairs += n;
  std::vector<ExpertRun> runs;
  for (int e = 0; e < int(d.hot_index.size()); ++e)
    if (count[e + 1] > count[e]) runs.push_back({&d.experts[d.hot_index[e]], count[e], count[e + 1] - count[e]});
  run_experts(runs, n, T);
}

// A staging slot at w (staged_expert_bytes: gate, up, down at 256-byte boundaries) as an expert.
DevExpert CudaOffload::staged_expert(int l, const uint8_t* w) const {
  const LayerWeights& lw = model_.layers[l];
  const int64_t E = s_.n_embd, F = lw.n_ff_exp;
  const uint64_t ga = round_up(row_bytes(lw.gate_type, E) * F), ua = round_up(row_bytes(lw.up_type, E) * F);
  return {{w, lw.gate_type, E, F}, {w + ga, lw.up_type, E, F}, {w + ga + ua, lw.down_type, F, E}};
}

void CudaOffload::upload_expert(int l, int e, uint8_t* dst) {
  const LayerWeights& lw = model_.layers[l];
  const int64_t E = s_.n_embd, F = lw.n_ff_exp;
  const uint64_t gb = row_bytes(lw.gate_type, E) * F, ub = row_bytes(lw.up_type, E) * F,
                 db = row_bytes(lw.down_type, F) * E;
  const uint64_t ga = round_up(gb), ua = round_up(ub);
  const auto& ex = lw.experts[e];
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
  stats_.expert_uploads += 1;
  stats_.expert_upload_bytes += gb + ub + db;
}

// Strategy stream: the experts this pass uses are copied from host memory in chunks of
// stream_chunk through two staging buffers on copy_st_, chunk j+1's copy under chunk j's
// compute (events order the reuse of a buffer), then computed as experts_on_gpu does.
void CudaOffload::stream_experts(int l, int64_t T) {
  const LayerWeights& lw = model_.layers[l];
  const int n_exp = int(lw.experts.size());
  std::vector<int64_t> count;
  pack_routes(T, s_.n_expert_used, n_exp, count);
  std::vector<int> used;
  for (int e = 0; e < n_exp; ++e)
    if (count[e + 1] > count[e]) used.push_back(e);
  const uint64_t slot = staged_expert_bytes(lw, s_.n_embd);
  const size_t chunk = size_t(std::max(1, cfg_.stream_chunk));
  for (size_t c0 = 0, j = 0; c0 < used.size(); c0 += chunk, ++j) {
    const int b = int(j % 2);
    const size_t n_in = std::min(chunk, used.size() - c0);
    auto* base = static_cast<uint8_t*>(staging_[b]);
    // The copy waits until the compute that last read this buffer is done.
    cuda_check(cudaStreamWaitEvent(copy_st_, consumed_[b], 0), "cudaStreamWaitEvent");
    for (size_t i = 0; i < n_in; ++i) upload_expert(l, used[c0 + i], base + i * slot);
    cuda_check(cudaEventRecord(uploaded_[b], copy_st_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(st_, uploaded_[b], 0), "cudaStreamWaitEvent");
    std::vector<DevExpert> staged(n_in);
    std::vector<ExpertRun> runs;
    int64_t entries = 0;
    for (size_t i = 0; i < n_in; ++i) {
      const int e = used[c0 + i];
      staged[i] = staged_expert(l, base + i * slot);
      runs.push_back({&staged[i], count[e], count[e + 1] - count[e]});
      entries += count[e + 1] - count[e];
    }
    // One chunk holding every used expert (decode) runs batched; chunks of a prefill one by one.
    if (n_in == used.size()) run_experts(runs, entries, T);
    else for (const ExpertRun& r : runs) run_expert(*r.ex, r.r0, r.n);
    cuda_check(cudaEventRecord(consumed_[b], st_), "cudaEventRecord");
  }
}

// Strategy cache: every used expert runs from its cache slot. Hits run first; each miss is copied
// (copy stream) into the least recently used slot once the compute that last read that slot is
// done, so misses' copies overlap the hits' and earlier misses' compute. A pass's hits are all
// queued before its first miss, so a miss never evicts an expert the pass still has to run.
void CudaOffload::cache_experts(int l, int64_t T) {
  const LayerWeights& lw = model_.layers[l];
  ExpertCache& c = layers_[l].cache;
  const int n_exp = int(lw.experts.size());
  std::vector<int64_t> count;
  const int64_t n = pack_routes(T, s_.n_expert_used, n_exp, count);
  stats_.routed_pairs += n;
  std::vector<int> used;
  for (int e = 0; e < n_exp; ++e)
    if (count[e + 1] > count[e]) used.push_back(e);
  const uint64_t slot_bytes = staged_expert_bytes(lw, s_.n_embd);
  // Every used expert fits at once (decode): all misses are copied, then all experts run
  // batched. Otherwise each runs right after its copy, before a later miss may evict it.
  const bool at_once = int(used.size()) <= c.lru.slots();
  std::vector<ExpertRun> runs;
  std::vector<int> slots_used;
  for (int e : c.lru.pass_order(used)) {
    const ExpertLru::Use u = c.lru.use(e);
    const int s = u.slot;
    if (u.miss) {
      uint8_t* dst = c.base + size_t(s) * slot_bytes;
      if (registered_) {
        cuda_check(cudaStreamWaitEvent(copy_st_, c.consumed[s], 0), "cudaStreamWaitEvent");
        upload_expert(l, e, dst);
        cuda_check(cudaEventRecord(c.ready[s], copy_st_), "cudaEventRecord");
      } else {
        upload_expert(l, e, dst);  // staged on st_: ordered after the slot's last reader
        cuda_check(cudaEventRecord(c.ready[s], st_), "cudaEventRecord");
      }
    } else {
      stats_.vram_pairs += count[e + 1] - count[e];
    }
    cuda_check(cudaStreamWaitEvent(st_, c.ready[s], 0), "cudaStreamWaitEvent");
    if (at_once) {
      runs.push_back({&c.slots[s], count[e], count[e + 1] - count[e]});
      slots_used.push_back(s);
    } else {
      run_expert(c.slots[s], count[e], count[e + 1] - count[e]);
      cuda_check(cudaEventRecord(c.consumed[s], st_), "cudaEventRecord");
    }
  }
  if (at_once) {
    // (run_experts needs the runs in any order; they cover all n entries.)
    run_experts(runs, n, T);
    for (int s : slots_used) cuda_check(cudaEventRecord(c.consumed[s], st_), "cudaEventRecord");
  }
}

// The GPU half of an MoE layer before the hand-off: norm, router, and the router logits (and, for
// CPU experts, the normed input h) into pinned host memory.
void CudaOffload::moe_head(int l, int64_t T, bool publish) {
  const DevLayer& d = layers_[l];
  const int64_t E = s_.n_embd, n_exp = s_.n_expert;
  gpu::RmsNormParams np{x_, d.ffn_norm, h_, T, E, s_.rms_eps};
  if (!publish && mapped_handoff(l, T)) {
    // Written straight to the pinned buffers the CPU reads: no copies behind the kernels. The
    // norm and the router in one launch where the router is a small float matrix.
    np.copy = h_map_;
    gpu_check(gpu::rms_norm_gemv(np, matmul_params(d.router, h_, T, logits_map_), st_));
    stats_.d2h_bytes += uint64_t(T) * uint64_t(E + n_exp) * sizeof(float);
    return;
  }
  if (fused(T)) {
    gpu_check(gpu::rms_norm_gemv(np, matmul_params(d.router, h_, T, router_), st_));
  } else {
    gpu_check(gpu::rms_norm(np, st_));
    matmul(d.router, h_, T, router_);
  }
  if (publish) {  // (the bytes are counted by answer_handoff, once per pass, not at capture)
    gpu::PublishParams p;
    p.flags = flags_;
    p.parts = 2;
    p.src[0] = h_, p.dst[0] = h_map_, p.n[0] = T * E;
    p.src[1] = router_, p.dst[1] = logits_map_, p.n[1] = T * n_exp;
    gpu_check(gpu::publish_to_host(p, st_));
    return;
  }
  d2h(logits_pin_.data(), router_, size_t(T * n_exp) * sizeof(float));
  if (!experts_here(l, T)) d2h(h_pin_.data(), h_, size_t(T * E) * sizeof(float));
}

// After the hand-off: the routed experts' sum (from the CPU, or computed here) and the shared
// experts' output added to the residual stream.
void CudaOffload::moe_tail(int l, int64_t T, int next) {
  const DevLayer& d = layers_[l];
  const int64_t E = s_.n_embd;
  if (mapped_handoff(l, T)) {
    gpu_check(gpu::add_host_rows(host_add_params(l, T, next), st_));
    stats_.h2d_bytes += uint64_t(T * E) * sizeof(float);
    return;
  }
  if (experts_here(l, T)) {
    shared_experts(l, T);  // (the routed experts ran in the segment before this one, into y_)
  } else if (!d.hot_index.empty()) {
    // y_ holds the hot experts' sum; the CPU's comes back beside it.
    h2d(tmp_, y_pin_.data(), size_t(T * E) * sizeof(float));
    gpu_check(gpu::add(x_, tmp_, T * E, st_));
  } else {
    h2d(y_, y_pin_.data(), size_t(T * E) * sizeof(float));
  }
  gpu_check(gpu::add(x_, y_, T * E, st_));
  if (d.shexp_gate) gpu_check(gpu::add(x_, shared_, T * E, st_));
}

}  // namespace hexe::gpu_offload

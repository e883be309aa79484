// The CUDA executor of runtime/engine/offload.h, shared by its three source files:
// cuda_offload.cpp (weights, buffers, KV pages, the pass and its CUDA-graph segments, the head),
// cuda_offload_attention.cpp (GQA and MLA attention) and cuda_offload_ffn.cpp (dense FFN, shared
// and routed experts: the MoE hand-off, GPU-resident and streamed experts).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cpu_kernels/format.h"
#include "gpu_kernels/host_flags.h"
#include "gpu_kernels/matmul.h"
#include "runtime/engine/cuda/cuda_device.h"
#include "runtime/engine/expert_lru.h"
#include "runtime/engine/offload.h"

namespace hexe::gpu_offload {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

inline uint64_t round_up(uint64_t n, uint64_t a = 256) { return (n + a - 1) / a * a; }

// One routed expert's slot in a stream staging buffer: gate, up, down, each 256-byte aligned.
inline uint64_t staged_expert_bytes(const LayerWeights& lw, int64_t hidden) {
  const int64_t F = lw.n_ff_exp;
  return round_up(row_bytes(lw.gate_type, hidden) * F) + round_up(row_bytes(lw.up_type, hidden) * F) +
         round_up(row_bytes(lw.down_type, F) * hidden);
}

struct DevLinear {
  const void* w = nullptr;
  DType type = DType::F32;
  int64_t n_in = 0, n_out = 0;
  explicit operator bool() const { return w != nullptr; }
};

struct DevExpert {
  DevLinear gate, up, down;
};

// Strategy cache: an LRU cache of one layer's routed experts in VRAM (which expert is in which
// slot: `lru`). An upload into slot s (copy stream) waits for consumed[s] (the last compute that
// read it) and signals ready[s] (which the compute waits for).
struct ExpertCache {
  ExpertLru lru;
  std::vector<DevExpert> slots;
  uint8_t* base = nullptr;  // slot s at base + s x staged_expert_bytes
  std::vector<cudaEvent_t> ready, consumed;
};

struct DevLayer {
  LayerRecipe recipe;
  const float *attn_norm = nullptr, *ffn_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
  DevLinear wq, wk, wv, wo, router, shexp_gate, shexp_up, shexp_down, ffn_gate, ffn_up, ffn_down;
  bool experts_on_gpu = false;
  bool experts_stream = false;  // prefill passes copy the used experts in (strategy stream)
  // Resident experts: all of them (experts_on_gpu, indexed by expert id), or the hot set
  // (experts-cpu+hot: hot_index[e] is expert e's entry, -1 for experts the CPU computes).
  std::vector<DevExpert> experts;
  std::vector<int> hot_index;
  ExpertCache cache;  // strategy cache: slots non-empty
  // MLA (deepseek2): q = q_b(norm(q_a x)) or wq x; kv_a -> [latent | rope key]; per-head k_b, v_b.
  DevLinear wq_a, wq_b, wkv_a;
  const float *q_a_norm = nullptr, *kv_a_norm = nullptr;
  std::vector<DevLinear> k_b, v_b;
  __half* k_pool = nullptr;  // n_pages x page_tokens rows of row_halves (GQA: n_kv x head_dim; MLA: latent)
  __half* v_pool = nullptr;  // GQA only
  int64_t row_halves = 0;
};

// A cudaEvent pair with timing, for the per-segment GPU busy time of the timeline.
struct TimedSegment {
  cudaEvent_t start = nullptr, end = nullptr;
};

class CudaOffload final : public GpuOffload {
 public:
  CudaOffload(const Model& model, const OffloadConfig& cfg, int64_t kv_tokens, int max_batch,
              const mem::ExpertHomes* homes);
  ~CudaOffload() override;

  void forward(const BatchView& batch, float* x, cpu::ThreadPool& pool, RoutingCounts* routing) override;
  void head(const std::vector<int64_t>& rows, std::vector<float>& out) override;
  void free_sequence(int seq) override;
  void truncate(int seq, int64_t n_tokens) override;
  const OffloadStats& stats() const override { return stats_; }
  void reset_stats() override { stats_ = {}; }
  std::string device_name() const override { return dev_.name() + " (" + gpu_name_ + ")"; }

 private:
  template <class T = void>
  T* alloc(size_t bytes, const std::string& what);
  const float* upload_floats(const std::vector<float>& v, const std::string& what);
  DevLinear upload_linear(const void* data, DType type, int64_t n_in, int64_t n_out, const std::string& what);
  DevLinear upload_linear(const Linear& l, const std::string& what) {
    return l ? upload_linear(l.data, l.type, l.n_in, l.n_out, what) : DevLinear{};
  }
  // y[m][n_out] = x[m][n_in] . W^T (accumulate: y +=); rows of x and y x_stride / y_stride floats
  // apart (0: dense).
  void matmul(const DevLinear& w, const float* x, int64_t m, float* y, int64_t x_stride = 0, int64_t y_stride = 0,
              bool accumulate = false);
  static gpu::MatmulParams matmul_params(const DevLinear& w, const float* x, int64_t m, float* y,
                                         int64_t x_stride = 0, int64_t y_stride = 0, bool accumulate = false);
  // q_, k_, v_ = h_ . wq/wk/wv^T; in decode one batched GEMV launch per weight type.
  void project_qkv(const DevLayer& d, int64_t T);
  void per_head_matmul(const std::vector<DevLinear>& w, const float* x, int64_t x_head, int64_t x_stride, float* y,
                       int64_t y_head, int64_t y_stride, int64_t T);
  void reserve_pages(int seq, int64_t n_tokens);
  void prepare_batch(const BatchView& b);
  void attention(int l, int64_t T);
  void mla_attention(int l, int64_t T);
  void upload_mla(const LayerWeights& lw, DevLayer& d, const std::string& blk);
  void dense_ffn(int l, int64_t T);
  // Whether this pass computes all of layer l's routed experts on the GPU (resident, cached, or
  // streamed in); a hot set leaves the rest to the CPU.
  bool experts_here(int l, int64_t T) const {
    const DevLayer& d = layers_[l];
    return d.experts_on_gpu || !d.cache.slots.empty() || (d.experts_stream && T >= cfg_.stream_min_tokens);
  }
  // publish: hand h and the router logits over by pinned flag (a flagged pass), not by copies.
  void moe_head(int l, int64_t T, bool publish = false);
  // next: the layer whose attention follows (-1: none); a mapped hand-off's tail normalises x for
  // it, and that attention must then skip its own norm (attn_normed_).
  void moe_tail(int l, int64_t T, int next = -1);
  // The first GPU layer after l with attention, or -1.
  int next_attention(int l) const;
  // Layer l's attention (GQA or MLA) as a segment's step; normed: the hand-off before it wrote
  // h_ = its norm of x_ already.
  std::function<void()> attention_step(int l, int64_t T, bool normed);
  // Whether an event hand-off of layer l goes through mapped pinned memory: the norm and the
  // router write h and the logits to the host, and the tail reads the CPU's sum from there (one
  // launch: add_host_rows), instead of three copies, two adds and a norm. Decode passes with
  // all of the layer's routed experts on the CPU.
  bool mapped_handoff(int l, int64_t T) const {
    return fused(T) && !experts_here(l, T) && layers_[l].hot_index.empty();
  }
  // A flagged decode pass (see forward_flagged): every MoE layer's routed experts on the CPU, the
  // hand-offs through pinned flags, each layer's GPU work queued before the CPU half it waits for.
  bool flagged_pass(int64_t T) const;
  void setup_flags();
  void forward_flagged(int64_t T, cpu::ThreadPool& pool, RoutingCounts* routing);
  void forward_evented(int64_t T, cpu::ThreadPool& pool, RoutingCounts* routing);
  // The GPU side after layer l's hand-off: waits for the CPU's sum, adds it and the shared
  // experts' output to x; with next >= 0 also normalises x for layer next's attention.
  void await_tail(int l, int64_t T, int next);
  // x_ += the CPU's sum in y_map_ (+ the shared experts' output); with next >= 0 also h_ = layer
  // next's attention norm of x_: what the tail of a flagged or a mapped hand-off does.
  gpu::AwaitAddParams host_add_params(int l, int64_t T, int next) const;
  // The CPU half of layer l's flag hand-off: waits for the GPU's publish, routes, runs the routed
  // experts into y_pin_, answers.
  void answer_handoff(int l, int64_t T, cpu::ThreadPool& pool, RoutingCounts* routing);
  // After a failed flagged pass: releases GPU work still waiting for answers, resets the counts.
  void abort_handoffs() noexcept;
  // graphable: replayed from a CUDA graph in graph mode; false for work shaped by the host's
  // routing (GPU-computed routed experts), which is always enqueued directly.
  // timed: bracketed by timeline events (not the segments of a flagged pass, which start by waiting
  // for the CPU; their busy time comes from the hand-off kernels' stamps).
  void run_segment(int64_t T, const std::function<void()>& body, bool graphable = true, bool timed = true);
  void upload_batch(int64_t T);
  void run_expert(const DevExpert& ex, int64_t r0, int64_t n);
  // A used expert and its entries [r0, r0 + n) of the packed routing.
  struct ExpertRun {
    const DevExpert* ex;
    int64_t r0, n;
  };
  // The runs of one pass that cover all `entries` packed entries. Decode (every run <= 8 tokens):
  // one gather, batched gate/up GEMVs, one SwiGLU, batched down GEMVs, one weighted scatter,
  // whatever the number of experts; otherwise run_expert for each.
  void run_experts(const std::vector<ExpertRun>& runs, int64_t entries, int64_t T);
  void gpu_experts(int l, int64_t T);
  void experts_on_gpu(int l, int64_t T);
  void stream_experts(int l, int64_t T);
  void cache_experts(int l, int64_t T);
  void hot_experts(int l, int64_t T);
  static bool hot_queue_inside(int64_t T);
  void setup_cache(int l, int slots);
  int cache_slots(int l) const { return size_t(l) < cfg_.cache_slots.size() ? cfg_.cache_slots[l] : 0; }
  // Expert e of layer l's weights copied into a staging slot at dst (layout staged_expert_bytes);
  // on copy_st_ from registered memory, else staged through pinned buffers on st_.
  void upload_expert(int l, int e, uint8_t* dst);
  DevExpert staged_expert(int l, const uint8_t* w) const;
  // Packs the host's routing for the GPU; with `only`, just the entries of experts e with
  // (*only)[e] >= 0. Returns the number of entries packed.
  int64_t pack_routes(int64_t T, int64_t k, int n_exp, std::vector<int64_t>& count,
                      const std::vector<int>* only = nullptr);
  void register_expert_sources();
  void shared_experts(int l, int64_t T);
  void segment_begin();
  void segment_end();
  void h2d(void* dst, const void* src, size_t bytes);
  void d2h(void* dst, const void* src, size_t bytes);

  const Model& model_;
  const place::ModelSpec& s_;
  OffloadConfig cfg_;
  const mem::ExpertHomes* homes_;
  CudaDevice dev_;
  std::string gpu_name_;
  cudaStream_t st_;
  std::vector<void*> owned_;
  uint64_t owned_bytes_ = 0;  // placed so far (named in out-of-memory errors)
  std::vector<DevLayer> layers_;
  DevLinear output_;
  const float* output_norm_ = nullptr;
  gpu::GemmContext gemm_;
  int sm_count_ = 0;

  // Batch limits and buffers (device), sized for max_batch tokens.
  int64_t max_t_ = 0, qd_ = 0, kd_ = 0, ff_max_ = 0;
  int64_t expert_rows_ = 0;  // rows of xe_/ye_/gate_/up_: max_t_, or all entries of a decode pass
  float *x_ = nullptr, *h_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *attn_ = nullptr;
  float *tmp_ = nullptr, *router_ = nullptr, *gate_ = nullptr, *up_ = nullptr, *shared_ = nullptr, *y_ = nullptr;
  float *xe_ = nullptr, *ye_ = nullptr, *route_w_ = nullptr;
  float *mla_qa_ = nullptr, *mla_lat_ = nullptr, *mla_c_ = nullptr, *qlat_ = nullptr, *qrope_ = nullptr;
  float *olat_ = nullptr, *rope_inv_freq_ = nullptr;
  float rope_attn_factor_ = 1.f;
  int32_t *pos_ = nullptr, *page_start_ = nullptr, *route_rows_ = nullptr;
  int32_t* route_slots_ = nullptr;  // [T][k]: each (token, slot)'s packed entry, -1 if not packed
  __half** k_tables_ = nullptr;  // [gpu_layers][n_pages]
  __half** v_tables_ = nullptr;
  void* attn_ws_ = nullptr;
  size_t attn_ws_bytes_ = 0;
  int decode_splits_cap_ = 1;

  // Pinned host staging.
  PinnedBuffer x_pin_, h_pin_, logits_pin_, y_pin_, meta_pin_, tables_pin_, route_pin_;
  std::vector<int32_t> ids_, cold_ids_;  // the host's routing; cold_ids_: hot entries emptied (-1)
  std::vector<float> weights_;

  // Pinned-flag hand-offs (gpu_kernels/host_flags.h): the counters (mapped: flags_pin_), the
  // device pointers of the pinned buffers the kernels read and write, the host's answered count.
  // flag_handoff_: OffloadConfig::flag_handoffs unless HEXE_HANDOFF=flags|event says otherwise.
  PinnedBuffer flags_pin_;
  gpu::HostFlags flags_{};
  float *h_map_ = nullptr, *logits_map_ = nullptr, *y_map_ = nullptr;
  uint64_t handoffs_ = 0;
  unsigned long long busy_seen_ns_ = 0;  // flags_.busy_ns at the end of the last flagged pass
  bool flag_handoff_ = true;
  bool attn_normed_ = false;  // the next attention() finds h_ normalised already (await_tail did it)
  // The fused decode chain (OffloadConfig::fused_decode unless HEXE_GPU_FUSE says otherwise):
  // q/k/v in batched launches, Wo (and a dense FFN's down) accumulating into the residual, mapped
  // hand-offs (mapped_handoff). Decode passes only (T <= kGemvMaxTokens): the GEMM path's
  // accumulate (cuBLAS beta = 1) need not round as a separate add does.
  bool fuse_ = true;
  bool fused(int64_t T) const { return fuse_ && T <= gpu::kGemvMaxTokens; }

  // KV pages: page_tokens rows per page, n_pages per layer pool; per sequence its page list.
  int page_tokens_ = 64;
  int64_t n_pages_ = 0;
  std::vector<std::vector<int32_t>> seq_pages_;
  std::vector<int32_t> free_pages_;
  int64_t max_keys_ = 0;    // max position + 1 in the current batch
  int64_t last_t_ = 0;      // tokens of the last forward (head() reads x_)

  OffloadStats stats_;
  std::vector<TimedSegment> segments_;
  size_t n_segments_ = 0;

  // CUDA graphs of decode passes, per (tokens, segment): a segment is the GPU work between two
  // MoE hand-offs. Graph bytes are the PCIe bytes its copies move, counted at capture.
  struct SegmentGraph {
    std::unique_ptr<CudaGraph> graph;  // (CudaGraph's members are complete only in cuda_device.cpp)
    uint64_t h2d = 0, d2h = 0;
  };
  std::map<std::pair<int64_t, int>, SegmentGraph> graphs_;
  bool graph_mode_ = false;
  int seg_ = 0;
  cudaEvent_t handoff_ = nullptr;

  // Streaming (strategy stream): a copy stream fills two staging buffers of stream_chunk experts
  // each from host memory (registered for DMA when the system allows it). The expert cache
  // (strategy cache) uploads its misses on the same copy stream from the same registration.
  cudaStream_t copy_st_ = nullptr;
  void* staging_[2] = {nullptr, nullptr};
  size_t staging_bytes_ = 0;       // per buffer
  cudaEvent_t uploaded_[2] = {nullptr, nullptr}, consumed_[2] = {nullptr, nullptr};
  void* registered_ = nullptr;     // the host range registered with cudaHostRegister, if any
  std::string stream_note_;        // why expert copies are staged instead of DMA'd, if they are
};

}  // namespace hexe::gpu_offload

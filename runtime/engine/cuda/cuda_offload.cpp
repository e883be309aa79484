// The CUDA executor of runtime/engine/offload.h. Per GPU layer it runs, on one stream:
//   attention: RMSNorm, q/k/v matmuls (+ bias, + per-head q/k norm), RoPE, the K/V rows into the
//   paged F16 cache, flash-decoding (<= 8 tokens) or tiled prefill attention, Wo, residual add;
//   FFN: RMSNorm, then the dense FFN, or the router and
//     routed experts on the CPU: h and the router logits go to pinned host memory; the shared
//       experts are queued on the GPU before the host waits, so they run while the CPU routes and
//       computes the routed experts; the result comes back over PCIe and is added;
//     routed experts on the GPU: the host routes (the CPU's routing code, so the choice is the
//       same), then each used expert's tokens are gathered, multiplied and scattered back weighted.
// The host drives the loop and waits once per MoE layer (the hand-off: an event, ~10 us; or,
// opt-in, pinned flags with the next segment queued ahead: cuda_offload_handoff.cpp).
#include "runtime/engine/cuda/cuda_offload.h"

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gpu_kernels/attention.h"
#include "gpu_kernels/ops.h"
#include "gpu_kernels/rows.h"
#include "memory/error.h"
#include "runtime/arch/architecture.h"
#include "runtime/engine/blocks.h"
#include "runtime/engine/cuda/cuda_check.h"
#include "runtime/engine/mla_block.h"

namespace hexe {
namespace gpu_offload {

CudaOffload::CudaOffload(const Model& model, const OffloadConfig& cfg, int64_t kv_tokens, int max_batch,
                         const mem::ExpertHomes* homes)
    : model_(model), s_(model.spec()), cfg_(cfg), homes_(homes), dev_(cfg.device) {
  st_ = dev_.stream();
  cudaDeviceProp prop{};
  cuda_check(cudaGetDeviceProperties(&prop, cfg.device), "cudaGetDeviceProperties");
  gpu_name_ = prop.name;
  sm_count_ = prop.multiProcessorCount;

  const int64_t E = s_.n_embd, D = s_.head_dim;
  max_t_ = std::max(1, max_batch);
  qd_ = int64_t(s_.n_head) * D;
  kd_ = int64_t(s_.n_head_kv) * D;
  page_tokens_ = 64;
  n_pages_ = (std::max<int64_t>(kv_tokens, 1) + page_tokens_ - 1) / page_tokens_;
  for (int64_t p = n_pages_ - 1; p >= 0; --p) free_pages_.push_back(int32_t(p));

  // Weights of the GPU layers.
  layers_.resize(cfg.gpu_layers);
  for (int l = 0; l < cfg.gpu_layers; ++l) {
    const LayerWeights& lw = model.layers[l];
    DevLayer& d = layers_[l];
    d.recipe = model.arch().recipe(model, l);
    const std::string blk = "layer " + std::to_string(l) + " ";
    if (d.recipe.attention == LayerRecipe::Attention::None) continue;
    d.attn_norm = upload_floats(lw.attn_norm, blk + "attn_norm");
    d.ffn_norm = upload_floats(lw.ffn_norm, blk + "ffn_norm");
    if (d.recipe.attention == LayerRecipe::Attention::Mla) upload_mla(lw, d, blk);
    if (d.recipe.gqa.qk_norm) {
      d.q_norm = upload_floats(lw.q_norm, blk + "q_norm");
      d.k_norm = upload_floats(lw.k_norm, blk + "k_norm");
    }
    if (d.recipe.gqa.qkv_bias) {
      d.bq = upload_floats(lw.bq, blk + "bq");
      d.bk = upload_floats(lw.bk, blk + "bk");
      d.bv = upload_floats(lw.bv, blk + "bv");
    }
    d.wq = upload_linear(lw.wq, blk + "attn_q");
    d.wk = upload_linear(lw.wk, blk + "attn_k");
    d.wv = upload_linear(lw.wv, blk + "attn_v");
    d.wo = upload_linear(lw.wo, blk + "attn_output");
    if (d.recipe.attention == LayerRecipe::Attention::Gqa) d.row_halves = kd_;
    if (d.recipe.moe) {
      d.router = upload_linear(lw.router, blk + "ffn_gate_inp");
      d.shexp_gate = upload_linear(lw.shexp_gate, blk + "ffn_gate_shexp");
      d.shexp_up = upload_linear(lw.shexp_up, blk + "ffn_up_shexp");
      d.shexp_down = upload_linear(lw.shexp_down, blk + "ffn_down_shexp");
      if (d.shexp_gate) ff_max_ = std::max(ff_max_, d.shexp_gate.n_out);
      d.experts_on_gpu = size_t(l) < cfg.experts_on_gpu.size() && cfg.experts_on_gpu[l];
      const bool cached = cache_slots(l) > 0;
      d.experts_stream = !d.experts_on_gpu && !cached && size_t(l) < cfg.experts_stream.size() && cfg.experts_stream[l];
      // Resident experts: all of them, or the hot set (hot_index maps an id to its entry).
      auto resident = [&](int e, const char* kind) {
        const auto& ex = lw.experts[e];
        const std::string en = blk + kind + std::to_string(e) + " ";
        d.experts.push_back({upload_linear(ex.gate, lw.gate_type, E, lw.n_ff_exp, en + "gate"),
                             upload_linear(ex.up, lw.up_type, E, lw.n_ff_exp, en + "up"),
                             upload_linear(ex.down, lw.down_type, lw.n_ff_exp, E, en + "down")});
      };
      if (!d.experts_on_gpu && !cached && size_t(l) < cfg.hot_experts.size() && !cfg.hot_experts[l].empty()) {
        d.hot_index.assign(lw.experts.size(), -1);
        for (int e : cfg.hot_experts[l]) {
          if (e < 0 || size_t(e) >= lw.experts.size())
            throw Error(blk + "hot expert " + std::to_string(e) + " is not one of its " +
                        std::to_string(lw.experts.size()) + " experts");
          if (d.hot_index[e] >= 0) continue;
          d.hot_index[e] = int(d.experts.size());
          resident(e, "hot expert ");
        }
      }
      if (d.experts_on_gpu)
        for (size_t e = 0; e < lw.experts.size(); ++e) resident(int(e), "expert ");
      ff_max_ = std::max(ff_max_, lw.n_ff_exp);
    } else {
      d.ffn_gate = upload_linear(lw.ffn_gate, blk + "ffn_gate");
      d.ffn_up = upload_linear(lw.ffn_up, blk + "ffn_up");
      d.ffn_down = upload_linear(lw.ffn_down, blk + "ffn_down");
      ff_max_ = std::max(ff_max_, d.ffn_gate.n_out);
    }
    const size_t pool_bytes = size_t(n_pages_) * page_tokens_ * d.row_halves * sizeof(__half);
    d.k_pool = alloc<__half>(pool_bytes, blk + (d.k_b.empty() ? "K cache" : "latent cache"));
    if (d.k_b.empty()) d.v_pool = alloc<__half>(pool_bytes, blk + "V cache");
  }
  if (cfg.head_on_gpu) {
    output_norm_ = upload_floats(model.output_norm, "output_norm");
    output_ = upload_linear(model.output, "output");
  }

  // Activations.
  const int64_t T = max_t_, n_exp = std::max(1, s_.n_expert), k = std::max(1, s_.n_expert_used);
  const bool mla = s_.kv_lora_rank > 0;
  if (mla) {
    // Queries are [H][nope + rope] and values v_head_dim per head.
    qd_ = std::max(qd_, int64_t(s_.n_head) * std::max<int64_t>(s_.qk_nope_dim + s_.qk_rope_dim, s_.v_head_dim));
    const int64_t H = s_.n_head, R = s_.kv_lora_rank, rd = s_.qk_rope_dim;
    mla_qa_ = alloc<float>(T * std::max(1, s_.q_lora_rank) * sizeof(float), "MLA activations");
    mla_lat_ = alloc<float>(T * (R + rd) * sizeof(float), "MLA activations");
    mla_c_ = alloc<float>(T * R * sizeof(float), "MLA activations");
    qlat_ = alloc<float>(T * H * R * sizeof(float), "MLA activations");
    qrope_ = alloc<float>(T * H * rd * sizeof(float), "MLA activations");
    olat_ = alloc<float>(T * H * R * sizeof(float), "MLA activations");
    const RopeTable rt = make_rope_table(s_, int(rd));
    rope_inv_freq_ = const_cast<float*>(upload_floats(rt.inv_freq, "MLA rope table"));
    rope_attn_factor_ = rt.attn_factor;
  }
  const int64_t ff = std::max<int64_t>(ff_max_, 1);
  const size_t f = sizeof(float);
  x_ = alloc<float>(T * E * f, "activations");
  h_ = alloc<float>(T * E * f, "activations");
  tmp_ = alloc<float>(T * E * f, "activations");
  y_ = alloc<float>(T * E * f, "activations");
  shared_ = alloc<float>(T * E * f, "activations");
  q_ = alloc<float>(T * qd_ * f, "activations");
  attn_ = alloc<float>(T * qd_ * f, "activations");
  k_ = alloc<float>(T * kd_ * f, "activations");
  v_ = alloc<float>(T * kd_ * f, "activations");
  router_ = alloc<float>(T * n_exp * f, "activations");
  // Routed experts on the GPU: a decode pass keeps every (token, expert) entry's rows at once.
  expert_rows_ = std::max(T, std::min(T, gpu::kGemvMaxTokens) * k);
  gate_ = alloc<float>(expert_rows_ * ff * f, "activations");
  up_ = alloc<float>(expert_rows_ * ff * f, "activations");
  xe_ = alloc<float>(expert_rows_ * E * f, "activations");
  ye_ = alloc<float>(expert_rows_ * E * f, "activations");
  route_rows_ = alloc<int32_t>(T * k * 4, "routing");
  route_w_ = alloc<float>(T * k * f, "routing");
  route_slots_ = alloc<int32_t>(T * k * 4, "routing");
  pos_ = alloc<int32_t>(T * 4, "positions");
  page_start_ = alloc<int32_t>(T * 4, "positions");
  const size_t table_bytes = size_t(std::max(1, cfg.gpu_layers)) * n_pages_ * sizeof(__half*);
  k_tables_ = alloc<__half*>(table_bytes, "page tables");
  v_tables_ = alloc<__half*>(table_bytes, "page tables");

  // Flash-decoding workspace for up to kGemvMaxTokens queries at the full context.
  gpu::AttentionParams ap;
  ap.n_q = 1;
  ap.n_heads = s_.n_head;
  ap.n_kv_heads = std::max(1, s_.n_head_kv);
  ap.head_dim = int(D);
  ap.q_page_start = page_start_;
  if (mla) {
    gpu::MlaAttentionParams mp;
    mp.n_q = 1;
    mp.n_heads = s_.n_head;
    mp.kv_lora_rank = s_.kv_lora_rank;
    mp.rope_dim = s_.qk_rope_dim;
    mp.q_page_start = page_start_;
    decode_splits_cap_ =
        gpu::attention_decode_splits(n_pages_ * page_tokens_, gpu::mla_attention_blocks(mp), sm_count_);
    attn_ws_bytes_ = gpu::attention_workspace_bytes(gpu::kGemvMaxTokens, s_.n_head, s_.kv_lora_rank, decode_splits_cap_);
  } else {
    decode_splits_cap_ = gpu::attention_decode_splits(n_pages_ * page_tokens_, gpu::attention_blocks(ap), sm_count_);
    attn_ws_bytes_ = gpu::attention_workspace_bytes(gpu::kGemvMaxTokens, s_.n_head, int(D), decode_splits_cap_);
  }
  attn_ws_ = alloc(std::max<size_t>(attn_ws_bytes_, 1), "attention workspace");

  // cuBLAS and the dequantisation tile of the GEMM path: x as 16-bit plus a 32 MiB weight tile.
  int64_t k_max = std::max({E, qd_, ff});
  const size_t gemm_bytes = size_t(T * k_max * 2) + (size_t(32) << 20);
  gemm_.workspace = alloc(gemm_bytes, "GEMM workspace");
  gemm_.workspace_bytes = gemm_bytes;
  if (cublasCreate(&gemm_.cublas) != CUBLAS_STATUS_SUCCESS) throw Error(dev_.name() + ": cublasCreate failed");

  x_pin_ = PinnedBuffer(T * E * f);
  h_pin_ = PinnedBuffer(T * E * f);
  y_pin_ = PinnedBuffer(T * E * f);
  logits_pin_ = PinnedBuffer(T * n_exp * f);
  meta_pin_ = PinnedBuffer(2 * T * 4);
  tables_pin_ = PinnedBuffer(2 * table_bytes);
  route_pin_ = PinnedBuffer(T * k * 12);  // rows, weights, slots
  ids_.resize(T * k);
  cold_ids_.resize(T * k);
  weights_.resize(T * k);
  cuda_check(cudaEventCreateWithFlags(&handoff_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  setup_flags();
  fuse_ = cfg_.fused_decode;
  if (const char* e = std::getenv("HEXE_GPU_FUSE"); e && (e[0] == '0' || e[0] == '1')) fuse_ = e[0] == '1';

  bool any_stream = false, any_cache = false;
  for (int l = 0; l < cfg.gpu_layers; ++l) {
    if (layers_[l].recipe.moe && !layers_[l].experts_on_gpu && cache_slots(l) > 0) setup_cache(l, cache_slots(l));
    any_stream = any_stream || layers_[l].experts_stream;
    any_cache = any_cache || !layers_[l].cache.slots.empty();
  }
  if (any_stream) {
    uint64_t expert_bytes = 0;
    for (int l = 0; l < cfg.gpu_layers; ++l) {
      const LayerWeights& lw = model.layers[l];
      if (!layers_[l].experts_stream) continue;
      expert_bytes = std::max<uint64_t>(expert_bytes, staged_expert_bytes(lw, E));
    }
    staging_bytes_ = size_t(expert_bytes) * size_t(std::max(1, cfg.stream_chunk));
    staging_[0] = alloc(staging_bytes_, "stream staging buffer");
    staging_[1] = alloc(staging_bytes_, "stream staging buffer");
    for (int b = 0; b < 2; ++b) {
      cuda_check(cudaEventCreateWithFlags(&uploaded_[b], cudaEventDisableTiming), "cudaEventCreateWithFlags");
      cuda_check(cudaEventCreateWithFlags(&consumed_[b], cudaEventDisableTiming), "cudaEventCreateWithFlags");
    }
  }
  if (any_stream || any_cache) {
    cuda_check(cudaStreamCreateWithFlags(&copy_st_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    register_expert_sources();
  }
}

// Strategy cache: `slots` expert slots for layer l (at least top-k, at most all experts), empty.
void CudaOffload::setup_cache(int l, int slots) {
  const LayerWeights& lw = model_.layers[l];
  ExpertCache& c = layers_[l].cache;
  const int n_exp = int(lw.experts.size());
  slots = std::clamp(slots, std::min(n_exp, std::max(1, s_.n_expert_used)), n_exp);
  const uint64_t slot = staged_expert_bytes(lw, s_.n_embd);
  auto* base = alloc<uint8_t>(size_t(slot) * size_t(slots),
                              "layer " + std::to_string(l) + " expert cache (" + std::to_string(slots) + " slots)");
  c.lru = ExpertLru(n_exp, slots);
  c.base = base;
  c.ready.resize(slots);
  c.consumed.resize(slots);
  for (int i = 0; i < slots; ++i) {
    c.slots.push_back(staged_expert(l, base + size_t(i) * slot));
    cuda_check(cudaEventCreateWithFlags(&c.ready[i], cudaEventDisableTiming), "cudaEventCreateWithFlags");
    cuda_check(cudaEventCreateWithFlags(&c.consumed[i], cudaEventDisableTiming), "cudaEventCreateWithFlags");
  }
}

// DMA needs page-locked sources: the streamed or cached layers' expert weights (one range over
// all of them in the mapped file) are registered read-only. Where that fails (locked-memory
// limits, a kernel without the support), copies go through the device's pinned staging buffers.
void CudaOffload::register_expert_sources() {
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  const int64_t E = s_.n_embd;
  for (int l = 0; l < cfg_.gpu_layers; ++l) {
    if (!layers_[l].experts_stream && layers_[l].cache.slots.empty()) continue;
    const LayerWeights& lw = model_.layers[l];
    for (const auto& ex : lw.experts) {
      const std::pair<const void*, uint64_t> parts[] = {
          {ex.gate, row_bytes(lw.gate_type, E) * lw.n_ff_exp},
          {ex.up, row_bytes(lw.up_type, E) * lw.n_ff_exp},
          {ex.down, row_bytes(lw.down_type, lw.n_ff_exp) * E}};
      for (const auto& [p, n] : parts) {
        lo = std::min(lo, uintptr_t(p));
        hi = std::max(hi, uintptr_t(p) + n);
      }
    }
  }
  if (lo >= hi) return;
  const uintptr_t page = 4096;
  lo &= ~(page - 1);
  hi = (hi + page - 1) & ~(page - 1);
  const cudaError_t e = cudaHostRegister(reinterpret_cast<void*>(lo), hi - lo,
                                         cudaHostRegisterPortable | cudaHostRegisterReadOnly);
  if (e == cudaSuccess) {
    registered_ = reinterpret_cast<void*>(lo);
  } else {
    cudaGetLastError();
    stream_note_ = gpu::cuda_error_message(e, "cudaHostRegister of the streamed/cached experts (" +
                                                  std::to_string((hi - lo) >> 20) + " MiB)") +
                   "; copies are staged through pinned buffers";
  }
}

CudaOffload::~CudaOffload() {
  cudaStreamSynchronize(st_);
  if (copy_st_) {
    cudaStreamSynchronize(copy_st_);
    cudaStreamDestroy(copy_st_);
  }
  for (int b = 0; b < 2; ++b) {
    if (uploaded_[b]) cudaEventDestroy(uploaded_[b]);
    if (consumed_[b]) cudaEventDestroy(consumed_[b]);
  }
  for (DevLayer& d : layers_) {
    for (cudaEvent_t e : d.cache.ready) cudaEventDestroy(e);
    for (cudaEvent_t e : d.cache.consumed) cudaEventDestroy(e);
  }
  if (registered_) cudaHostUnregister(registered_);
  graphs_.clear();
  if (handoff_) cudaEventDestroy(handoff_);
  if (gemm_.cublas) cublasDestroy(gemm_.cublas);
  for (auto& sgm : segments_) {
    cudaEventDestroy(sgm.start);
    cudaEventDestroy(sgm.end);
  }
  for (void* p : owned_) dev_.allocator().deallocate(p);
}

template <class T>
T* CudaOffload::alloc(size_t bytes, const std::string& what) {
  void* p = nullptr;
  try {
    p = dev_.allocator().allocate(bytes);
  } catch (const Error& e) {
    throw Error(dev_.name() + ": out of GPU memory placing " + what + " (" + std::to_string(bytes) + " bytes; " +
                std::to_string(owned_bytes_) + " bytes placed before it): " + e.what());
  }
  owned_.push_back(p);
  owned_bytes_ += bytes;
  return static_cast<T*>(p);
}
template unsigned long long* CudaOffload::alloc<unsigned long long>(size_t, const std::string&);  // hand-off counters

const float* CudaOffload::upload_floats(const std::vector<float>& v, const std::string& what) {
  if (v.empty()) throw Error(model_.file().path() + ": " + what + " is missing for the GPU layer");
  float* d = alloc<float>(v.size() * sizeof(float), what);
  cuda_check(cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), what.c_str());
  return d;
}

DevLinear CudaOffload::upload_linear(const void* data, DType type, int64_t n_in, int64_t n_out,
                                     const std::string& what) {
  if (!gpu::supports_weight_type(type))
    throw Error(model_.file().path() + ": " + what + " is " + std::string(dtype_name(type)) +
                ", which has no GPU kernel; keep this layer on the CPU");
  const size_t bytes = size_t(row_bytes(type, n_in)) * size_t(n_out);
  void* d = alloc(bytes, what);
  dev_.copy_to_device(d, data, bytes);  // from the mapped file: staged through pinned buffers
  return {d, type, n_in, n_out};
}

void CudaOffload::matmul(const DevLinear& w, const float* x, int64_t m, float* y, int64_t x_stride,
                         int64_t y_stride, bool accumulate) {
  gpu_check(gpu::matmul(matmul_params(w, x, m, y, x_stride, y_stride, accumulate), gemm_, st_));
}

gpu::MatmulParams CudaOffload::matmul_params(const DevLinear& w, const float* x, int64_t m, float* y,
                                             int64_t x_stride, int64_t y_stride, bool accumulate) {
  gpu::MatmulParams p;
  p.w = w.w;
  p.w_type = w.type;
  p.n = w.n_out;
  p.k = w.n_in;
  p.x = x;
  p.m = m;
  p.x_stride = x_stride > 0 ? x_stride : w.n_in;
  p.y = y;
  p.y_stride = y_stride > 0 ? y_stride : w.n_out;
  p.accumulate = accumulate;
  return p;
}

void CudaOffload::h2d(void* dst, const void* src, size_t bytes) {
  cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st_), "cudaMemcpyAsync H2D");
  stats_.h2d_bytes += bytes;
}

void CudaOffload::d2h(void* dst, const void* src, size_t bytes) {
  cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st_), "cudaMemcpyAsync D2H");
  stats_.d2h_bytes += bytes;
}

void CudaOffload::segment_begin() {
  if (!cfg_.timeline) return;
  if (n_segments_ == segments_.size()) {
    TimedSegment sgm;
    cuda_check(cudaEventCreate(&sgm.start), "cudaEventCreate");
    cuda_check(cudaEventCreate(&sgm.end), "cudaEventCreate");
    segments_.push_back(sgm);
  }
  cuda_check(cudaEventRecord(segments_[n_segments_].start, st_), "cudaEventRecord");
}

void CudaOffload::segment_end() {
  if (!cfg_.timeline) return;
  cuda_check(cudaEventRecord(segments_[n_segments_++].end, st_), "cudaEventRecord");
}

void CudaOffload::reserve_pages(int seq, int64_t n_tokens) {
  if (seq < 0) throw Error("GPU KV cache: sequence id " + std::to_string(seq));
  if (size_t(seq) >= seq_pages_.size()) seq_pages_.resize(seq + 1);
  auto& pages = seq_pages_[seq];
  while (int64_t(pages.size()) * page_tokens_ < n_tokens) {
    if (free_pages_.empty())
      throw Error("GPU KV cache is full: " + std::to_string(n_pages_ * page_tokens_) +
                  " tokens over all sequences (raise -c)");
    pages.push_back(free_pages_.back());
    free_pages_.pop_back();
  }
}

void CudaOffload::free_sequence(int seq) { truncate(seq, 0); }

void CudaOffload::truncate(int seq, int64_t n_tokens) {
  if (seq < 0 || size_t(seq) >= seq_pages_.size()) return;
  auto& pages = seq_pages_[seq];
  const size_t keep = size_t((n_tokens + page_tokens_ - 1) / page_tokens_);
  while (pages.size() > keep) {
    free_pages_.push_back(pages.back());
    pages.pop_back();
  }
}

// Positions, each token's page-table offset, and every GPU layer's page tables for the batch's
// sequences (concatenated in batch order), uploaded in one go.
void CudaOffload::prepare_batch(const BatchView& b) {
  int32_t* pos = meta_pin_.data<int32_t>();
  int32_t* start = pos + max_t_;
  std::vector<int> run_seqs;
  int64_t table_len = 0;  // pages in the batch's concatenated tables
  max_keys_ = 0;
  int32_t offset = 0;
  for (int64_t t = 0; t < b.n; ++t) {
    if (t == 0 || b.seq[t] != b.seq[t - 1]) {
      // The sequence's pages for its highest position in this batch (tokens are contiguous).
      int64_t last = b.pos[t];
      for (int64_t u = t; u < b.n && b.seq[u] == b.seq[t]; ++u) last = std::max(last, b.pos[u]);
      reserve_pages(b.seq[t], last + 1);
      offset = int32_t(table_len);
      table_len += int64_t(seq_pages_[b.seq[t]].size());
      run_seqs.push_back(b.seq[t]);
    }
    pos[t] = int32_t(b.pos[t]);
    start[t] = offset;
    max_keys_ = std::max(max_keys_, b.pos[t] + 1);
  }
  auto* tk = tables_pin_.data<__half*>();
  auto* tv = tk + size_t(cfg_.gpu_layers) * n_pages_;
  for (int l = 0; l < cfg_.gpu_layers; ++l) {
    const DevLayer& d = layers_[l];
    if (!d.k_pool) continue;
    const size_t page_halves = size_t(page_tokens_) * d.row_halves;
    int64_t j = 0;
    for (int sq : run_seqs)
      for (int32_t page : seq_pages_[sq]) {
        tk[l * n_pages_ + j] = d.k_pool + page * page_halves;
        tv[l * n_pages_ + j] = d.v_pool ? d.v_pool + page * page_halves : nullptr;
        ++j;
      }
  }
}

// The batch's positions, table offsets and page tables, from pinned memory (a graphed pass reads
// them there at replay). Whole rows of the table arrays; only each batch's own pages are read.
void CudaOffload::upload_batch(int64_t T) {
  int32_t* pos = meta_pin_.data<int32_t>();
  h2d(pos_, pos, size_t(T) * 4);
  h2d(page_start_, pos + max_t_, size_t(T) * 4);
  const size_t bytes = size_t(cfg_.gpu_layers) * n_pages_ * sizeof(__half*);
  auto* tk = tables_pin_.data<__half*>();
  h2d(k_tables_, tk, bytes);
  h2d(v_tables_, tk + size_t(cfg_.gpu_layers) * n_pages_, bytes);
}

// Runs `body`'s enqueues as segment number seg_ of this pass: replayed from a CUDA graph when the
// pass is graphed (captured the first time this (T, segment) is seen), enqueued directly otherwise.
void CudaOffload::run_segment(int64_t T, const std::function<void()>& body, bool graphable, bool timed) {
  if (timed) segment_begin();
  if (graph_mode_ && graphable) {
    auto& g = graphs_[{T, seg_}];
    if (!g.graph) {
      const uint64_t h0 = stats_.h2d_bytes, d0 = stats_.d2h_bytes;
      g.graph = std::make_unique<CudaGraph>(dev_.capture(body));
      g.h2d = stats_.h2d_bytes - h0;
      g.d2h = stats_.d2h_bytes - d0;
    } else {
      stats_.h2d_bytes += g.h2d;
      stats_.d2h_bytes += g.d2h;
    }
    dev_.launch(*g.graph);
    ++stats_.graph_launches;
  } else {
    body();
  }
  if (timed) segment_end();
  ++seg_;
}

// Where a pass queues its hot experts' GPU work (see forward): inside the CPU's dispatch for
// decode passes, before it otherwise. HEXE_HOT_QUEUE=inside|before overrides (measurements).
bool CudaOffload::hot_queue_inside(int64_t T) {
  static const std::string forced = [] {
    const char* v = std::getenv("HEXE_HOT_QUEUE");
    return std::string(v ? v : "");
  }();
  if (forced == "inside") return true;
  if (forced == "before") return false;
  return T <= gpu::kGemvMaxTokens;
}

void CudaOffload::forward(const BatchView& b, float* x, cpu::ThreadPool& pool, RoutingCounts* routing) {
  const auto t0 = Clock::now();
  const int64_t T = b.n, E = s_.n_embd;
  if (T > max_t_) throw Error("GPU offload: batch of " + std::to_string(T) + " tokens > " + std::to_string(max_t_));
  // Decode steps are graphed: their kernels take fixed pointers, the key range of the whole cache
  // and the positions from device memory, so one capture per batch size serves every step.
  // (Routed experts computed here depend on the host's routing: enqueued directly, in between.)
  graph_mode_ = cfg_.graphs && T <= gpu::kGemvMaxTokens;
  n_segments_ = 0;
  seg_ = 0;
  prepare_batch(b);
  std::memcpy(x_pin_.data(), x, size_t(T * E) * sizeof(float));

  if (flagged_pass(T)) {
    forward_flagged(T, pool, routing);
  } else {
    forward_evented(T, pool, routing);
  }
  last_t_ = T;
  if (!cfg_.head_on_gpu) std::memcpy(x, x_pin_.data(), size_t(T * E) * sizeof(float));
  if (cfg_.timeline)
    for (size_t i = 0; i < n_segments_; ++i) {
      float ms = 0;
      cuda_check(cudaEventElapsedTime(&ms, segments_[i].start, segments_[i].end), "cudaEventElapsedTime");
      stats_.gpu_busy_s += ms * 1e-3;
    }
  stats_.tokens += T;
  stats_.wall_s += since(t0);
}

std::function<void()> CudaOffload::attention_step(int l, int64_t T, bool normed) {
  const bool mla = layers_[l].recipe.attention == LayerRecipe::Attention::Mla;
  return [this, l, T, normed, mla] {
    attn_normed_ = normed;
    if (mla) mla_attention(l, T);
    else attention(l, T);
  };
}

int CudaOffload::next_attention(int l) const {
  for (int n = l + 1; n < cfg_.gpu_layers; ++n)
    if (layers_[n].recipe.attention != LayerRecipe::Attention::None) return n;
  return -1;
}

// A pass whose hand-offs are event waits: prefill passes, passes without graphs, and passes with
// routed experts on the GPU (the host routes before queueing their work). Data moves by copies,
// or for decode layers with CPU experts through mapped pinned memory (mapped_handoff).
void CudaOffload::forward_evented(int64_t T, cpu::ThreadPool& pool, RoutingCounts* routing) {
  const int64_t E = s_.n_embd;
  std::vector<std::function<void()>> body;
  body.push_back([this, T, E] {
    upload_batch(T);
    h2d(x_, x_pin_.data(), size_t(T * E) * sizeof(float));
  });
  auto flush = [&] {
    run_segment(T, [&] {
      for (auto& f : body) f();
    });
    body.clear();
  };
  bool normed = false;  // the last mapped hand-off's tail normalised x for this layer's attention
  for (int l = 0; l < cfg_.gpu_layers; ++l) {
    const DevLayer& d = layers_[l];
    if (d.recipe.attention == LayerRecipe::Attention::None) continue;
    body.push_back(attention_step(l, T, normed));
    normed = false;
    if (!d.recipe.moe) {
      body.push_back([this, l, T] { dense_ffn(l, T); });
      continue;
    }
    body.push_back([this, l, T] { moe_head(l, T); });
    flush();
    cuda_check(cudaEventRecord(handoff_, st_), "cudaEventRecord");
    const bool here = experts_here(l, T);
    // Queued before the host waits: the GPU computes the shared experts while the CPU works.
    if (!here && d.shexp_gate) {
      body.push_back([this, l, T] { shared_experts(l, T); });
      flush();
    }
    auto tw = Clock::now();
    cuda_check(cudaEventSynchronize(handoff_), "cudaEventSynchronize (MoE hand-off)");
    stats_.wait_gpu_s += since(tw);
    tw = Clock::now();
    route_rows(s_, model_.layers[l], logits_pin_.data<float>(), T, ids_.data(), weights_.data(), routing, l, &pool);
    if (here) {
      run_segment(T, [this, l, T] { gpu_experts(l, T); }, false);
    } else {
      const int32_t* cpu_ids = ids_.data();
      // The hot experts' share runs on the GPU under the CPU's share. In decode (a few batched
      // launches) this thread queues it inside the pool's dispatch while the other threads
      // already compute; a prefill pass's per-expert GEMM calls are queued before the dispatch.
      const std::function<void()> queue_hot = [this, l, T] { run_segment(T, [this, l, T] { hot_experts(l, T); }, false); };
      const bool hot = !d.hot_index.empty();
      const bool inside = hot && hot_queue_inside(T);
      if (hot) {
        for (int64_t i = 0; i < T * s_.n_expert_used; ++i)
          cold_ids_[i] = d.hot_index[ids_[i]] >= 0 ? -1 : ids_[i];
        cpu_ids = cold_ids_.data();
        if (!inside) queue_hot();
      }
      cpu::MoeParams mp = routed_expert_params(model_, l, h_pin_.data<float>(), T, cpu_ids, weights_.data(),
                                               y_pin_.data<float>(), homes_);
      if (inside) mp.on_caller = &queue_hot;
      cpu::moe_experts(mp, pool);
    }
    stats_.cpu_experts_s += since(tw);
    const int next = next_attention(l);
    body.push_back([this, l, T, next] { moe_tail(l, T, next); });
    normed = mapped_handoff(l, T) && next >= 0;
  }
  if (!cfg_.head_on_gpu) body.push_back([this, T, E] { d2h(x_pin_.data(), x_, size_t(T * E) * sizeof(float)); });
  flush();
  dev_.synchronize();
}

void CudaOffload::head(const std::vector<int64_t>& rows, std::vector<float>& out) {
  if (!cfg_.head_on_gpu) throw Error("GPU offload: head() without head_on_gpu");
  if (rows.empty()) return;
  const auto t0 = Clock::now();
  const int64_t n = int64_t(rows.size()), E = s_.n_embd, V = s_.n_vocab;
  for (int64_t r : rows)
    if (r < 0 || r >= last_t_) throw Error("GPU offload: head row " + std::to_string(r) + " is outside the batch");
  int32_t* idx = route_pin_.data<int32_t>();
  // The rows fit the routing staging (T x top_k >= T entries); chunk by max_t_ rows.
  const size_t base = out.size();
  out.resize(base + size_t(n * V));
  for (int64_t r0 = 0; r0 < n; r0 += max_t_) {
    const int64_t m = std::min(max_t_, n - r0);
    for (int64_t i = 0; i < m; ++i) idx[i] = int32_t(rows[r0 + i]);
    h2d(route_rows_, idx, size_t(m) * 4);
    gpu_check(gpu::gather_rows(x_, E, route_rows_, m, E, h_, E, st_));
    gpu_check(gpu::rms_norm({h_, output_norm_, h_, m, E, s_.rms_eps}, st_));
    float* logits = static_cast<float*>(dev_.allocator().allocate(size_t(m * V) * sizeof(float)));
    matmul(output_, h_, m, logits);
    dev_.copy_to_host(out.data() + base + size_t(r0 * V), logits, size_t(m * V) * sizeof(float));
    stats_.d2h_bytes += size_t(m * V) * sizeof(float);
    dev_.synchronize();
    dev_.allocator().deallocate(logits);
  }
  stats_.wall_s += since(t0);
}

}  // namespace gpu_offload

std::unique_ptr<GpuOffload> make_cuda_offload(const Model& model, const OffloadConfig& cfg, int64_t kv_tokens,
                                              int max_batch, const mem::ExpertHomes* homes) {
  return std::make_unique<gpu_offload::CudaOffload>(model, cfg, kv_tokens, max_batch, homes);
}

}  // namespace hexe

// GQA and MLA attention of the GPU layers (see cuda_offload.h): projections, norms, RoPE, the
// rows into the paged F16 cache (for GQA one fused launch, gpu::qk_rope_store), flash-decoding
// or tiled prefill attention, Wo and the residual.
#include "runtime/engine/cuda/cuda_offload.h"

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "gpu_kernels/attention.h"
#include "gpu_kernels/ops.h"
#include "gpu_kernels/rows.h"
#include "runtime/engine/cuda/cuda_check.h"

namespace hexe::gpu_offload {

// Decode: the projections of one input in as few launches as their weight types allow (wq and wk
// share a type in a Q4_K_M file; wv is Q6_K in some of its layers). Each result is gemv's alone.
void CudaOffload::project_qkv(const DevLayer& d, int64_t T) {
  const DevLinear* w[3] = {&d.wq, &d.wk, &d.wv};
  float* y[3] = {q_, k_, v_};
  if (!fused(T)) {
    for (int i = 0; i < 3; ++i) matmul(*w[i], h_, T, y[i]);
    return;
  }
  for (int i = 0; i < 3;) {
    gpu::GemvBatch b;
    b.w_type = w[i]->type;
    b.n = w[i]->n_out;
    b.k = w[i]->n_in;
    b.x_stride = w[i]->n_in;
    b.y_stride = w[i]->n_out;
    for (; i < 3 && w[i]->type == b.w_type && w[i]->n_in == b.k; ++i)
      b.e[b.count++] = {w[i]->w, h_, y[i], T, w[i]->n_out, w[i]->n_out};
    gpu_check(gpu::gemv_batched(b, st_));
  }
}

// y[t][h] = w[h] . x[t][h] for every head h (an MLA layer's k_b and v_b: 128 small matrices in
// DeepSeek-V3). Heads are x_head / y_head floats apart inside rows x_stride / y_stride apart. In
// decode, up to kGemvBatchMax heads per launch (one launch per head cost ~0.5 ms per layer in
// graph nodes alone); each result is the per-head gemv's.
void CudaOffload::per_head_matmul(const std::vector<DevLinear>& w, const float* x, int64_t x_head, int64_t x_stride,
                                  float* y, int64_t y_head, int64_t y_stride, int64_t T) {
  const int64_t H = int64_t(w.size());
  if (!fused(T)) {
    for (int64_t hh = 0; hh < H; ++hh) matmul(w[hh], x + hh * x_head, T, y + hh * y_head, x_stride, y_stride);
    return;
  }
  for (int64_t h0 = 0; h0 < H;) {
    gpu::GemvBatch b;
    b.w_type = w[h0].type;
    b.n = w[h0].n_out;
    b.k = w[h0].n_in;
    b.x_stride = x_stride;
    b.y_stride = y_stride;
    for (int64_t hh = h0; hh < H && b.count < gpu::kGemvBatchMax && w[hh].type == b.w_type && w[hh].n_in == b.k; ++hh)
      b.e[b.count++] = {w[hh].w, x + hh * x_head, y + hh * y_head, T, w[hh].n_out, y_stride};
    h0 += b.count;
    gpu_check(gpu::gemv_batched(b, st_));
  }
}

void CudaOffload::attention(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  const int64_t E = s_.n_embd, D = s_.head_dim;
  // (In a flagged pass the await before this layer wrote h_ = norm(x_) already.)
  if (!std::exchange(attn_normed_, false)) gpu_check(gpu::rms_norm({x_, d.attn_norm, h_, T, E, s_.rms_eps}, st_));
  project_qkv(d, T);
  if (d.bq) {
    gpu_check(gpu::add_bias(q_, d.bq, T, qd_, st_));
    gpu_check(gpu::add_bias(k_, d.bk, T, kd_, st_));
    gpu_check(gpu::add_bias(v_, d.bv, T, kd_, st_));
  }
  __half* const* kt = k_tables_ + size_t(l) * n_pages_;
  __half* const* vt = v_tables_ + size_t(l) * n_pages_;
  gpu::QkRopeStoreParams qp;
  qp.q = q_;
  qp.k = k_;
  qp.v = v_;
  qp.n_tokens = T;
  qp.q_stride = qd_;
  qp.k_stride = qp.v_stride = kd_;
  qp.n_heads = s_.n_head;
  qp.n_kv_heads = s_.n_head_kv;
  qp.head_dim = int(D);
  qp.q_norm = d.q_norm;
  qp.k_norm = d.k_norm;
  qp.eps = s_.rms_eps;
  qp.positions = pos_;
  qp.rot_dim = d.recipe.gqa.rot_dim > 0 ? d.recipe.gqa.rot_dim : int(D);
  qp.theta = s_.rope_theta;
  qp.mode = s_.rope_type == place::RopeType::Neox ? gpu::RopeMode::Neox : gpu::RopeMode::Interleaved;
  qp.k_pages = kt;
  qp.v_pages = vt;
  qp.page_start = page_start_;
  qp.page_tokens = page_tokens_;
  gpu_check(gpu::qk_rope_store(qp, st_));

  gpu::AttentionParams ap;
  ap.q = q_;
  ap.n_q = T;
  ap.q_pos = pos_;
  ap.q_page_start = page_start_;
  ap.n_heads = s_.n_head;
  ap.n_kv_heads = s_.n_head_kv;
  ap.head_dim = int(D);
  ap.k = {kt, page_tokens_};
  ap.v = {vt, page_tokens_};
  ap.max_keys = graph_mode_ ? n_pages_ * page_tokens_ : max_keys_;
  ap.scale = 1.0f / std::sqrt(float(D));
  ap.out = attn_;
  if (T <= gpu::kGemvMaxTokens) {
    const int splits = std::min(decode_splits_cap_,
                                gpu::attention_decode_splits(ap.max_keys, gpu::attention_blocks(ap), sm_count_));
    gpu_check(gpu::attention_decode(ap, splits, attn_ws_, attn_ws_bytes_, st_));
  } else {
    gpu_check(gpu::attention_prefill(ap, st_));
  }
  if (fused(T)) {
    matmul(d.wo, attn_, T, x_, 0, 0, true);  // the residual add in the same launch
  } else {
    matmul(d.wo, attn_, T, tmp_);
    gpu_check(gpu::add(x_, tmp_, T * E, st_));
  }
}

void CudaOffload::upload_mla(const LayerWeights& lw, DevLayer& d, const std::string& blk) {
  const int64_t R = s_.kv_lora_rank, rd = s_.qk_rope_dim;
  if (lw.wq_a) {
    d.wq_a = upload_linear(lw.wq_a, blk + "attn_q_a");
    d.q_a_norm = upload_floats(lw.q_a_norm, blk + "attn_q_a_norm");
    d.wq_b = upload_linear(lw.wq_b, blk + "attn_q_b");
  }
  d.wkv_a = upload_linear(lw.wkv_a, blk + "attn_kv_a_mqa");
  d.kv_a_norm = upload_floats(lw.kv_a_norm, blk + "attn_kv_a_norm");
  for (size_t h = 0; h < lw.k_b.size(); ++h) {
    d.k_b.push_back(upload_linear(lw.k_b[h], blk + "attn_k_b head " + std::to_string(h)));
    d.v_b.push_back(upload_linear(lw.v_b[h], blk + "attn_v_b head " + std::to_string(h)));
  }
  d.row_halves = R + rd;
}

// runtime/engine/mla_block.cpp on the GPU: the latent row [norm(c) | roped k_pe] goes to the cache;
// the query absorbs k_b per head (q_lat) and keeps its roped part (q_rope); attention runs in
// latent space; v_b per head turns o_lat into values; then Wo and the residual add.
void CudaOffload::mla_attention(int l, int64_t T) {
  const DevLayer& d = layers_[l];
  const int64_t E = s_.n_embd, H = s_.n_head, nope = s_.qk_nope_dim, rd = s_.qk_rope_dim, qk = nope + rd;
  const int64_t R = s_.kv_lora_rank, lat = R + rd, vd = s_.v_head_dim;
  // (In a flagged pass the await before this layer wrote h_ = norm(x_) already.)
  if (!std::exchange(attn_normed_, false)) gpu_check(gpu::rms_norm({x_, d.attn_norm, h_, T, E, s_.rms_eps}, st_));
  if (d.wq_a) {
    const int64_t QR = s_.q_lora_rank;
    matmul(d.wq_a, h_, T, mla_qa_);
    gpu_check(gpu::rms_norm({mla_qa_, d.q_a_norm, mla_qa_, T, QR, s_.rms_eps}, st_));
    matmul(d.wq_b, mla_qa_, T, q_);
  } else {
    matmul(d.wq, h_, T, q_);
  }
  matmul(d.wkv_a, h_, T, mla_lat_);
  // Norm the latent part of each [R | rope] row: out to a dense buffer, normed, back.
  auto copy2d = [&](float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t width, int64_t rows) {
    cuda_check(cudaMemcpy2DAsync(dst, size_t(dst_stride) * 4, src, size_t(src_stride) * 4, size_t(width) * 4,
                                 size_t(rows), cudaMemcpyDeviceToDevice, st_),
               "cudaMemcpy2DAsync");
  };
  copy2d(mla_c_, R, mla_lat_, lat, R, T);
  gpu_check(gpu::rms_norm({mla_c_, d.kv_a_norm, mla_c_, T, R, s_.rms_eps}, st_));
  copy2d(mla_lat_, lat, mla_c_, R, R, T);
  gpu::RopeTableParams rp;
  rp.positions = pos_;
  rp.n_tokens = T;
  rp.inv_freq = rope_inv_freq_;
  rp.n_pairs = int(rd / 2);
  rp.attn_factor = rope_attn_factor_;
  rp.x = mla_lat_ + R;  // the shared key's rope part
  rp.token_stride = lat;
  rp.n_heads = 1;
  rp.head_stride = lat;
  gpu_check(gpu::rope_table(rp, st_));
  rp.x = q_ + nope;  // every head's q_pe
  rp.token_stride = H * qk;
  rp.n_heads = int(H);
  rp.head_stride = qk;
  gpu_check(gpu::rope_table(rp, st_));
  __half* const* kt = k_tables_ + size_t(l) * n_pages_;
  gpu_check(gpu::store_kv_rows(mla_lat_, lat, T, lat, kt, page_start_, pos_, page_tokens_, st_));

  // q_lat[t][h] = k_b[h] . q_nope[t][h]; q_rope[t][h] = q_pe[t][h].
  per_head_matmul(d.k_b, q_, qk, H * qk, qlat_, R, H * R, T);
  copy2d(qrope_, rd, q_ + nope, qk, rd, T * H);

  gpu::MlaAttentionParams mp;
  mp.q_lat = qlat_;
  mp.q_rope = qrope_;
  mp.n_q = T;
  mp.q_pos = pos_;
  mp.q_page_start = page_start_;
  mp.n_heads = int(H);
  mp.kv_lora_rank = int(R);
  mp.rope_dim = int(rd);
  mp.latent = {kt, page_tokens_};
  mp.max_keys = graph_mode_ ? n_pages_ * page_tokens_ : max_keys_;
  mp.scale = s_.attn_scale_mul / std::sqrt(float(qk));
  mp.o_lat = olat_;
  const int splits =
      T <= gpu::kGemvMaxTokens
          ? std::min(decode_splits_cap_, gpu::attention_decode_splits(mp.max_keys, gpu::mla_attention_blocks(mp), sm_count_))
          : 1;
  gpu_check(gpu::mla_attention(mp, splits, attn_ws_, attn_ws_bytes_, st_));

  // attn[t][h] = v_b[h] . o_lat[t][h]
  per_head_matmul(d.v_b, olat_, R, H * R, attn_, vd, H * vd, T);
  if (fused(T)) {
    matmul(d.wo, attn_, T, x_, 0, 0, true);
  } else {
    matmul(d.wo, attn_, T, tmp_);
    gpu_check(gpu::add(x_, tmp_, T * E, st_));
  }
}

}  // namespace hexe::gpu_offload

// MLA attention with weight absorption over the latent KV cache; YaRN RoPE tables.
#include "runtime/engine/mla_block.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/ops.h"
#include "runtime/engine/blocks.h"

namespace hexe {

RopeTable make_rope_table(const place::ModelSpec& s, int rope_dim) {
  RopeTable rt;
  const int half = rope_dim / 2;
  const float base = s.rope_theta;
  rt.inv_freq.resize(half);
  std::vector<float> extrap(half), interp(half);
  const float factor = s.rope_scaling_factor;
  for (int i = 0; i < half; ++i) {
    const float pos_freq = std::pow(base, float(2 * i) / float(rope_dim));
    extrap[i] = 1.0f / pos_freq;
    interp[i] = 1.0f / (factor * pos_freq);
  }
  if (factor <= 1.f || s.rope_orig_ctx <= 0) {
    rt.inv_freq = extrap;
    return rt;
  }
  // Correction range: dims rotating more than beta_fast times over the original context keep
  // their frequency, those rotating fewer than beta_slow times are interpolated, a ramp between.
  auto corr_dim = [&](double rot) {
    return (rope_dim * std::log(s.rope_orig_ctx / (rot * 2 * M_PI))) / (2 * std::log(double(base)));
  };
  double low = std::max(0.0, std::floor(corr_dim(s.yarn_beta_fast)));
  double high = std::min(double(rope_dim - 1), std::ceil(corr_dim(s.yarn_beta_slow)));
  if (low == high) high += 0.001;
  for (int i = 0; i < half; ++i) {
    const float ramp = std::clamp((float(i) - float(low)) / float(high - low), 0.f, 1.f);
    const float ef = 1.f - ramp;  // extrapolation weight
    rt.inv_freq[i] = interp[i] * (1.f - ef) + extrap[i] * ef;
  }
  rt.attn_factor = s.rope_attn_factor;
  return rt;
}

void rope_pairs(float* x, int64_t pos, const RopeTable& rt) {
  for (size_t i = 0; i < rt.inv_freq.size(); ++i) {
    const float angle = float(pos) * rt.inv_freq[i];  // float, as HF's float32 freqs
    const float c = float(std::cos(double(angle))) * rt.attn_factor;
    const float sn = float(std::sin(double(angle))) * rt.attn_factor;
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * c - b * sn;
    x[2 * i + 1] = b * c + a * sn;
  }
}

namespace {

// The per-head matmuls of an MLA layer: one dispatch for all heads (a dispatch per head cost
// 128 x 2 pool round trips a layer in decode), or the scalar reference one by one.
void run_heads(const std::vector<cpu::MatmulParams>& ps, cpu::ThreadPool& pool, bool reference) {
  if (!reference) {
    cpu::matmul_many(ps, pool);
    return;
  }
  for (const auto& p : ps) cpu::matmul_ref(p);
}

}  // namespace

void mla_attention_block(LayerContext& ctx) {
  const auto& s = ctx.model.spec();
  const auto& lw = ctx.model.layers[ctx.layer];
  auto& ws = ctx.ws;
  auto& pool = *ctx.attn_device.cpu_pool();
  const bool ref = ctx.reference_kernels;
  const int64_t T = ctx.batch.n, E = s.n_embd, H = s.n_head;
  const int64_t nope = s.qk_nope_dim, rd = s.qk_rope_dim, qk = nope + rd, R = s.kv_lora_rank;
  const int64_t lat = R + rd, vd = s.v_head_dim;

  for (int64_t t = 0; t < T; ++t)
    cpu::rms_norm(ws.x.data() + t * E, lw.attn_norm.data(), ws.h.data() + t * E, E, s.rms_eps);
  // q [T][H][nope | rope]
  if (lw.wq_a) {
    const int64_t QR = s.q_lora_rank;
    linear(lw.wq_a, ws.h.data(), T, ws.mla_qa.data(), pool, ref);
    for (int64_t t = 0; t < T; ++t) {
      float* r = ws.mla_qa.data() + t * QR;
      cpu::rms_norm(r, lw.q_a_norm.data(), r, QR, s.rms_eps);
    }
    linear(lw.wq_b, ws.mla_qa.data(), T, ws.q.data(), pool, ref);
  } else {
    linear(lw.wq, ws.h.data(), T, ws.q.data(), pool, ref);
  }
  // latent [T][R | rope]: normed latent, roped shared key; stored in the cache as is.
  linear(lw.wkv_a, ws.h.data(), T, ws.mla_lat.data(), pool, ref);
  const RopeTable rt = make_rope_table(s, int(rd));
  for (int64_t t = 0; t < T; ++t) {
    float* l = ws.mla_lat.data() + t * lat;
    cpu::rms_norm(l, lw.kv_a_norm.data(), l, R, s.rms_eps);
    rope_pairs(l + R, ctx.batch.pos[t], rt);
    std::memcpy(ctx.kv.k_row(ctx.batch.seq[t], ctx.layer, ctx.batch.pos[t]), l, lat * sizeof(float));
    for (int64_t hh = 0; hh < H; ++hh) rope_pairs(ws.q.data() + (t * H + hh) * qk + nope, ctx.batch.pos[t], rt);
  }

  // Absorb k_b into the query: qlat[t][h] = [k_b[h] · q_nope[t][h] (R) | q_pe[t][h] (rope)]. The
  // heads' small matmuls read and write their strided rows in place, all in one dispatch.
  std::vector<cpu::MatmulParams>& ps = ws.mla_heads;
  ps.resize(size_t(H));
  for (int64_t hh = 0; hh < H; ++hh) {
    cpu::MatmulParams& p = ps[size_t(hh)];
    p = linear_params(lw.k_b[hh], ws.q.data() + hh * qk, T, ws.mla_qlat.data() + hh * lat, ref);
    p.x_stride = H * qk;
    p.y_stride = H * lat;
  }
  run_heads(ps, pool, ref);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t hh = 0; hh < H; ++hh)
      std::memcpy(ws.mla_qlat.data() + (t * H + hh) * lat + R, ws.q.data() + (t * H + hh) * qk + nope, rd * sizeof(float));

  // Attention in latent space: MQA over the cache's latent rows (keys: all 576 floats; values:
  // the first kv_lora_rank), the GQA kernel with one KV head, per run of one sequence's tokens.
  const float scale = s.attn_scale_mul / std::sqrt(float(qk));
  const int page = ctx.kv.config().page_tokens;
  for_each_sequence_run(ctx.batch, [&](int64_t t0, int64_t t1) {
    float* const* pages = ctx.kv.k_pages(ctx.batch.seq[t0], ctx.layer);
    cpu::AttentionParams ap;
    ap.q = ws.mla_qlat.data() + t0 * H * lat;
    ap.n_q = t1 - t0;
    ap.q_pos = ctx.batch.pos + t0;
    ap.n_heads = int(H);
    ap.k = {pages, page, 1, int(lat)};
    ap.v = {pages, page, 1, int(R), int(lat)};
    ap.scale = scale;
    ap.out = ws.mla_olat.data() + t0 * H * R;
    if (ref) cpu::attention_ref(ap);
    else cpu::attention(ap, pool);
  });

  // Values: attn[t][h] = v_b[h] · olat[t][h], in place as k_b.
  for (int64_t hh = 0; hh < H; ++hh) {
    cpu::MatmulParams& p = ps[size_t(hh)];
    p = linear_params(lw.v_b[hh], ws.mla_olat.data() + hh * R, T, ws.attn.data() + hh * vd, ref);
    p.x_stride = H * R;
    p.y_stride = H * vd;
  }
  run_heads(ps, pool, ref);
  linear(lw.wo, ws.attn.data(), T, ws.ffn_out.data(), pool, ref);
  for (int64_t i = 0; i < T * E; ++i) ws.x[i] += ws.ffn_out[i];
}

}  // namespace hexe

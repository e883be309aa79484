// Attention, routing, MoE and dense FFN blocks over the CPU kernels.
#include "runtime/engine/blocks.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <span>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/matmul.h"
#include "cpu_kernels/moe.h"
#include "cpu_kernels/ops.h"
#include "runtime/engine/phase_times.h"

namespace hexe {

void Workspace::reserve(const place::ModelSpec& s, int64_t t) {
  const int64_t qd = int64_t(s.n_head) * s.head_dim, kd = int64_t(s.n_head_kv) * s.head_dim;
  auto grow = [](auto& v, int64_t n) {
    if (int64_t(v.size()) < n) v.resize(n);
  };
  grow(x, t * s.n_embd);
  grow(h, t * s.n_embd);
  grow(q, t * qd);
  grow(k, t * kd);
  grow(v, t * kd);
  grow(attn, t * qd);
  grow(ffn_out, t * s.n_embd);
  grow(router, t * std::max(1, s.n_expert));
  grow(expert_ids, t * std::max(1, s.n_expert_used));
  grow(expert_weights, t * std::max(1, s.n_expert_used));
  grow(gate, t * std::max({1, s.n_ff, s.n_ff_shexp}));
  grow(up, t * std::max({1, s.n_ff, s.n_ff_shexp}));
  if (s.n_ff_shexp > 0) grow(shared_out, t * s.n_embd);
  if (s.kv_lora_rank > 0) {
    const int64_t lat = int64_t(s.kv_lora_rank) + s.qk_rope_dim;
    grow(attn, t * s.n_head * std::max(s.head_dim, s.v_head_dim));
    grow(mla_qa, t * std::max(1, s.q_lora_rank));
    grow(mla_lat, t * lat);
    grow(mla_qlat, t * s.n_head * lat);
    grow(mla_olat, t * s.n_head * s.kv_lora_rank);
  }
}

cpu::MatmulParams linear_params(const Linear& w, const float* x, int64_t m, float* y, bool reference) {
  cpu::MatmulParams p;
  p.w = w.data;
  p.w_type = w.type;
  if (w.packed && !reference) {
    p.w = w.packed;
    p.w_layout = w.packed_layout;
  }
  p.n = w.n_out;
  p.k = w.n_in;
  p.x = x;
  p.m = m;
  p.x_stride = w.n_in;
  p.y = y;
  p.y_stride = w.n_out;
  return p;
}

void linear(const Linear& w, const float* x, int64_t m, float* y, cpu::ThreadPool& pool, bool reference) {
  const cpu::MatmulParams p = linear_params(w, x, m, y, reference);
  if (reference) cpu::matmul_ref(p);
  else cpu::matmul(p, pool);
}

void linears(std::initializer_list<std::pair<const Linear*, float*>> outs, const float* x, int64_t m,
             cpu::ThreadPool& pool, bool reference) {
  std::array<cpu::MatmulParams, 4> ps;
  size_t n = 0;
  for (const auto& [w, y] : outs) {
    if (reference || n == ps.size()) {
      linear(*w, x, m, y, pool, reference);
      continue;
    }
    ps[n++] = linear_params(*w, x, m, y, reference);
  }
  cpu::matmul_many(std::span<const cpu::MatmulParams>(ps.data(), n), pool);
}

namespace {

// Row-by-row work (norms, RoPE, routing, SwiGLU, residual adds) of a prefill chunk goes over the
// pool: left on one thread it cost a 16-core H200 host about 10 ms of a 512-token CPU layer (its
// `layers` prefill went 1648 -> 2232 t/s once split). Decode's few rows stay on the caller.
constexpr int64_t kPoolRows = 16;

void for_rows(cpu::ThreadPool* pool, int64_t rows, const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  if (!pool || pool->size() <= 1 || rows < kPoolRows) return fn(0, rows);
  pool->parallel_for(rows, 1, fn);
}

void norm_rows(const float* src, const std::vector<float>& w, float* dst, int64_t rows, int64_t n, float eps,
               cpu::ThreadPool* pool) {
  for_rows(pool, rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) cpu::rms_norm(src + r * n, w.data(), dst + r * n, n, eps);
  });
}

cpu::RopeParams rope_params(const place::ModelSpec& s) {
  cpu::RopeParams rp;
  rp.mode = s.rope_type == place::RopeType::Neox ? cpu::RopeMode::Neox : cpu::RopeMode::Interleaved;
  rp.head_dim = s.head_dim;
  rp.rot_dim = s.head_dim;
  rp.theta = s.rope_theta;
  return rp;
}

void add_rows(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// fn(), its wall time added to `phase` (HEXE_PHASE_TIMES).
template <class F>
void timed(Phase phase, F&& fn) {
  const PhaseTimer timer(phase);
  fn();
}

// gate = silu(gate) * up over `rows` rows of `n` values.
void swiglu_rows(float* gate, const float* up, int64_t rows, int64_t n, cpu::ThreadPool* pool) {
  for_rows(pool, rows, [&](int64_t r0, int64_t r1) {
    cpu::swiglu(gate + r0 * n, up + r0 * n, gate + r0 * n, (r1 - r0) * n);
  });
}

// x += y over `rows` rows of `n` values.
void add_rows(float* x, const float* y, int64_t rows, int64_t n, cpu::ThreadPool* pool) {
  for_rows(pool, rows, [&](int64_t r0, int64_t r1) { add_rows(x + r0 * n, y + r0 * n, (r1 - r0) * n); });
}

// Group-limited routing: experts sit in s.n_group equal groups; only the s.topk_group groups with
// the best group scores keep their `choice` values, the others get -inf. The group score is the
// sum of the group's two best choices for sigmoid routers (DeepSeek-V3's noaux_tc) and the best
// choice for softmax routers (DeepSeek-V2's group_limited_greedy), as HF scores them.
void mask_groups(const place::ModelSpec& s, float* choice) {
  const int n = s.n_expert, G = s.n_group;
  if (G <= 1 || s.topk_group >= G || n % G != 0) return;
  const int per = n / G;
  const bool two_best = s.router_fn == place::RouterFn::Sigmoid && per > 1;
  std::vector<float> group_score(G);
  for (int g = 0; g < G; ++g) {
    float best = -INFINITY, second = -INFINITY;
    for (int e = g * per; e < (g + 1) * per; ++e) {
      if (choice[e] > best) {
        second = best;
        best = choice[e];
      } else if (choice[e] > second) {
        second = choice[e];
      }
    }
    group_score[g] = two_best ? best + second : best;
  }
  std::vector<int> gidx(s.topk_group);
  std::vector<float> gval(s.topk_group);
  cpu::top_k(group_score.data(), G, s.topk_group, gidx.data(), gval.data());
  std::vector<char> keep(G, 0);
  for (int g : gidx) keep[g] = 1;
  for (int e = 0; e < n; ++e)
    if (!keep[e / per]) choice[e] = -INFINITY;
}

// DeepSeek-V3 routing, as HF's DeepseekV3TopkRouter: scores = sigmoid(logits); the selection
// bias is added only to choose, inside the groups mask_groups keeps; the weights are the
// unbiased scores of the chosen k, renormalised (+1e-20) when norm_topk_prob.
void sigmoid_group_top_k(const place::ModelSpec& s, const LayerWeights& lw, const float* logits, int k, int* idx,
                         float* w) {
  const int n = s.n_expert;
  std::vector<float> scores(n), choice(n);
  for (int e = 0; e < n; ++e) {
    scores[e] = 1.f / (1.f + std::exp(-logits[e]));
    choice[e] = scores[e] + (lw.router_bias.empty() ? 0.f : lw.router_bias[e]);
  }
  mask_groups(s, choice.data());
  std::vector<float> top(k);
  cpu::top_k(choice.data(), n, k, idx, top.data());
  float sum = 0.f;
  for (int i = 0; i < k; ++i) sum += (w[i] = scores[idx[i]]);
  if (s.norm_topk_prob)
    for (int i = 0; i < k; ++i) w[i] /= sum + 1e-20f;
}

// Softmax over all experts, then top-k among the groups mask_groups keeps (all of them unless
// the model is grouped: DeepSeek-V2's group_limited_greedy). The weights are the chosen
// probabilities, renormalised over the k when norm_topk_prob. `logits` [n_expert] is overwritten.
void softmax_group_top_k(const place::ModelSpec& s, float* logits, int k, int* idx, float* w) {
  const int n = s.n_expert;
  cpu::softmax(logits, n);
  std::vector<float> choice(logits, logits + n);
  mask_groups(s, choice.data());
  cpu::top_k(choice.data(), n, k, idx, w);
  float sum = 0.f;
  for (int i = 0; i < k; ++i) sum += w[i];
  if (s.norm_topk_prob)
    for (int i = 0; i < k; ++i) w[i] /= sum;
}

// Shared experts: ws.shared_out = down(silu(gate(h)) * up(h)) for the normed input in ws.h.
void shared_experts(LayerContext& ctx) {
  const auto& lw = ctx.model.layers[ctx.layer];
  auto& ws = ctx.ws;
  auto& pool = *ctx.attn_device.cpu_pool();
  const int64_t T = ctx.batch.n, F = lw.shexp_gate.n_out;
  linears({{&lw.shexp_gate, ws.gate.data()}, {&lw.shexp_up, ws.up.data()}}, ws.h.data(), T, pool, ctx.reference_kernels);
  swiglu_rows(ws.gate.data(), ws.up.data(), T, F, &pool);
  linear(lw.shexp_down, ws.gate.data(), T, ws.shared_out.data(), pool, ctx.reference_kernels);
}

}  // namespace

void attention_block(LayerContext& ctx, const AttentionOptions& opt) {
  const auto& s = ctx.model.spec();
  const auto& lw = ctx.model.layers[ctx.layer];
  auto& ws = ctx.ws;
  auto& pool = *ctx.attn_device.cpu_pool();
  const int64_t T = ctx.batch.n, E = s.n_embd, D = s.head_dim;
  const int64_t qd = int64_t(s.n_head) * D, kd = int64_t(s.n_head_kv) * D;

  timed(Phase::Norms, [&] { norm_rows(ws.x.data(), lw.attn_norm, ws.h.data(), T, E, s.rms_eps, &pool); });
  timed(Phase::Projections, [&] {
    linears({{&lw.wq, ws.q.data()}, {&lw.wk, ws.k.data()}, {&lw.wv, ws.v.data()}}, ws.h.data(), T, pool,
            ctx.reference_kernels);
  });

  cpu::RopeParams rp = rope_params(s);
  if (opt.rot_dim > 0) rp.rot_dim = opt.rot_dim;
  // Per token: biases, q/k norms, RoPE, K and V into the cache (pages reserved: lookups only).
  timed(Phase::RowWork, [&] {
    for_rows(&pool, T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* q = ws.q.data() + t * qd;
        float* k = ws.k.data() + t * kd;
        float* v = ws.v.data() + t * kd;
        if (opt.qkv_bias) {
          add_rows(q, lw.bq.data(), qd);
          add_rows(k, lw.bk.data(), kd);
          add_rows(v, lw.bv.data(), kd);
        }
        if (opt.qk_norm) {
          for (int hh = 0; hh < s.n_head; ++hh)
            cpu::rms_norm(q + hh * D, lw.q_norm.data(), q + hh * D, D, s.rms_eps);
          for (int hh = 0; hh < s.n_head_kv; ++hh)
            cpu::rms_norm(k + hh * D, lw.k_norm.data(), k + hh * D, D, s.rms_eps);
        }
        cpu::rope_qk(q, s.n_head, k, s.n_head_kv, ctx.batch.pos[t], rp);
        const int seq = ctx.batch.seq[t];
        std::memcpy(ctx.kv.k_row(seq, ctx.layer, ctx.batch.pos[t]), k, kd * sizeof(float));
        std::memcpy(ctx.kv.v_row(seq, ctx.layer, ctx.batch.pos[t]), v, kd * sizeof(float));
      }
    });
  });

  // One attention call per run of tokens of the same sequence.
  timed(Phase::Attention, [&] {
    for_each_sequence_run(ctx.batch, [&](int64_t t0, int64_t t1) {
      const int seq = ctx.batch.seq[t0];
      cpu::AttentionParams ap;
      ap.q = ws.q.data() + t0 * qd;
      ap.n_q = t1 - t0;
      ap.q_pos = ctx.batch.pos + t0;
      ap.n_heads = s.n_head;
      ap.k = {ctx.kv.k_pages(seq, ctx.layer), ctx.kv.config().page_tokens, s.n_head_kv, int(D)};
      ap.v = {ctx.kv.v_pages(seq, ctx.layer), ctx.kv.config().page_tokens, s.n_head_kv, int(D)};
      ap.scale = 1.0f / std::sqrt(float(D));
      ap.out = ws.attn.data() + t0 * qd;
      cpu::attention(ap, pool);
    });
  });

  timed(Phase::Projections, [&] { linear(lw.wo, ws.attn.data(), T, ws.ffn_out.data(), pool, ctx.reference_kernels); });
  timed(Phase::Residual, [&] { add_rows(ws.x.data(), ws.ffn_out.data(), T, E, &pool); });
}

void route_rows(const place::ModelSpec& s, const LayerWeights& lw, float* router, int64_t T, int32_t* expert_ids,
                float* expert_weights, RoutingCounts* routing, int layer, cpu::ThreadPool* pool) {
  const int n_exp = s.n_expert, k = s.n_expert_used;
  for_rows(pool, T, [&](int64_t t0, int64_t t1) {
    std::vector<float> top(k);
    std::vector<int> idx(k);
    for (int64_t t = t0; t < t1; ++t) {
      float* logits = router + t * n_exp;
      int32_t* ids = expert_ids + t * k;
      float* w = expert_weights + t * k;
      if (s.router_fn == place::RouterFn::Sigmoid) {
        sigmoid_group_top_k(s, lw, logits, k, idx.data(), w);
      } else if (s.gating == place::GatingOrder::SoftmaxThenTopK) {
        softmax_group_top_k(s, logits, k, idx.data(), w);
      } else {
        cpu::top_k(logits, n_exp, k, idx.data(), top.data());
        cpu::softmax(top.data(), k);
        for (int i = 0; i < k; ++i) w[i] = top[i];
      }
      for (int i = 0; i < k; ++i) {
        w[i] *= s.routed_scaling;
        ids[i] = idx[i];
      }
    }
  });
  if (routing)
    for (int64_t i = 0; i < T * k; ++i) ++routing->per_layer[layer][expert_ids[i]];
}

void route_tokens(LayerContext& ctx) {
  const auto& lw = ctx.model.layers[ctx.layer];
  auto& ws = ctx.ws;
  linear(lw.router, ws.h.data(), ctx.batch.n, ws.router.data(), *ctx.attn_device.cpu_pool(), ctx.reference_kernels);
  route_rows(ctx.model.spec(), lw, ws.router.data(), ctx.batch.n, ws.expert_ids.data(), ws.expert_weights.data(),
             ctx.routing, ctx.layer, ctx.attn_device.cpu_pool());
}

cpu::MoeParams routed_expert_params(const Model& m, int layer, const float* x, int64_t T, const int32_t* ids,
                                    const float* weights, float* y, const mem::ExpertHomes* homes) {
  const auto& lw = m.layers[layer];
  cpu::MoeParams mp;
  mp.experts = lw.experts_cpu.empty() ? lw.experts.data() : lw.experts_cpu.data();
  mp.packed = lw.experts_packed.empty() ? nullptr : lw.experts_packed.data();
  if (homes && homes->n_homes() > 1 && homes->node_of_expert.size() == lw.experts.size()) {
    mp.n_homes = homes->n_homes();
    mp.expert_home = homes->node_of_expert.data();
    mp.thread_home = homes->thread_home.data();
  }
  mp.n_experts = int(lw.experts.size());
  mp.gate_type = lw.gate_type;
  mp.up_type = lw.up_type;
  mp.down_type = lw.down_type;
  mp.hidden = m.spec().n_embd;
  mp.n_ff = lw.n_ff_exp;
  mp.x = x;
  mp.n_tokens = T;
  mp.top_k = m.spec().n_expert_used;
  mp.ids = ids;
  mp.weights = weights;
  mp.y = y;
  return mp;
}

void moe_block(LayerContext& ctx) {
  const auto& s = ctx.model.spec();
  const auto& lw = ctx.model.layers[ctx.layer];
  auto& ws = ctx.ws;
  const int64_t T = ctx.batch.n, E = s.n_embd;
  cpu::ThreadPool* pool = ctx.attn_device.cpu_pool();
  timed(Phase::Norms, [&] { norm_rows(ws.x.data(), lw.ffn_norm, ws.h.data(), T, E, s.rms_eps, pool); });
  timed(Phase::Router, [&] { route_tokens(ctx); });

  const cpu::MoeParams mp = routed_expert_params(ctx.model, ctx.layer, ws.h.data(), T, ws.expert_ids.data(),
                                                 ws.expert_weights.data(), ws.ffn_out.data(), ctx.homes);
  const bool shared = bool(lw.shexp_gate);
  timed(Phase::Experts, [&] {
    if (ctx.reference_kernels) {
      cpu::moe_experts_ref(mp);
    } else if (ctx.split) {
      // Hand the routed experts to the expert device; the attention device is free meanwhile
      // (shared experts, when the architecture has them, run here before the wait).
      Device& dev = ctx.expert_device;
      dev.enqueue([mp, &dev] { cpu::moe_experts(mp, *dev.cpu_pool()); });
      if (shared) shared_experts(ctx);  // overlaps with the routed experts
      dev.synchronize();
    } else {
      cpu::moe_experts(mp, *ctx.attn_device.cpu_pool());
    }
    if (shared && (!ctx.split || ctx.reference_kernels)) shared_experts(ctx);
  });
  timed(Phase::Residual, [&] {
    add_rows(ws.x.data(), ws.ffn_out.data(), T, E, pool);
    if (shared) add_rows(ws.x.data(), ws.shared_out.data(), T, E, pool);
  });
}

void dense_ffn_block(LayerContext& ctx) {
  const auto& s = ctx.model.spec();
  const auto& lw = ctx.model.layers[ctx.layer];
  auto& ws = ctx.ws;
  auto& pool = *ctx.attn_device.cpu_pool();
  const int64_t T = ctx.batch.n, E = s.n_embd, F = lw.ffn_gate.n_out;
  timed(Phase::Norms, [&] { norm_rows(ws.x.data(), lw.ffn_norm, ws.h.data(), T, E, s.rms_eps, &pool); });
  timed(Phase::Experts, [&] {
    linears({{&lw.ffn_gate, ws.gate.data()}, {&lw.ffn_up, ws.up.data()}}, ws.h.data(), T, pool,
            ctx.reference_kernels);
    swiglu_rows(ws.gate.data(), ws.up.data(), T, F, &pool);
    linear(lw.ffn_down, ws.gate.data(), T, ws.ffn_out.data(), pool, ctx.reference_kernels);
  });
  timed(Phase::Residual, [&] { add_rows(ws.x.data(), ws.ffn_out.data(), T, E, &pool); });
}

}  // namespace hexe

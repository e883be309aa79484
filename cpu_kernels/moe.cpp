// Routed-expert FFN of one MoE layer. Plan: bucket (token, slot) pairs by expert; quantise each
// token's activation once; gather each expert's rows; then three parallel phases over
// (expert x weight-row block) items - gate+up, swiglu+requantise, down - and a per-token
// weighted sum in slot order (deterministic for any thread count).
#include "cpu_kernels/moe.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/ops.h"
#include "cpu_kernels/quant.h"

namespace hexe::cpu {
namespace {

constexpr int64_t kRowsN = 16;  // weight rows per work item
constexpr int64_t kRowsM = 64;  // token rows per kernel call

struct Plan {
  std::vector<int64_t> offset;   // [n_experts + 1]: start of each expert's rows in `rows`
  std::vector<int64_t> rows;     // (token * top_k + slot) grouped by expert
  std::vector<int> used;         // experts with at least one token
};

void make_plan(const MoeParams& p, Plan& plan) {
  plan.offset.assign(size_t(p.n_experts) + 1, 0);
  const int64_t pairs = p.n_tokens * p.top_k;
  for (int64_t r = 0; r < pairs; ++r) ++plan.offset[size_t(p.ids[r]) + 1];
  for (int e = 0; e < p.n_experts; ++e) plan.offset[size_t(e) + 1] += plan.offset[size_t(e)];
  plan.rows.resize(size_t(pairs));
  std::vector<int64_t> fill(plan.offset.begin(), plan.offset.end() - 1);
  for (int64_t r = 0; r < pairs; ++r) plan.rows[size_t(fill[size_t(p.ids[r])]++)] = r;
  plan.used.clear();
  for (int e = 0; e < p.n_experts; ++e)
    if (plan.offset[size_t(e) + 1] > plan.offset[size_t(e)]) plan.used.push_back(e);
}

// Runs fn(expert, row_begin, row_end) over (used expert x block of `n` rows) items on the pool.
template <class Fn>
void for_expert_blocks(const Plan& plan, int64_t n, ThreadPool* pool, Fn&& fn) {
  const int64_t blocks = (n + kRowsN - 1) / kRowsN;
  const int64_t items = int64_t(plan.used.size()) * blocks;
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; ++it) {
      const int ex = plan.used[size_t(it / blocks)];
      const int64_t r0 = (it % blocks) * kRowsN;
      fn(ex, r0, std::min(n, r0 + kRowsN));
    }
  };
  if (pool && pool->size() > 1) pool->parallel_for(items, 1, body);
  else body(0, items);
}

template <class Fn>
void for_range(int64_t n, ThreadPool* pool, Fn&& fn) {
  if (pool && pool->size() > 1) pool->parallel_for(n, 1, fn);
  else fn(0, n);
}

// y[m x nr] = act[m rows] . w[nr rows]^T, m split into kernel-sized chunks.
void gemm(const GemmKernel& g, int64_t k, const uint8_t* w, size_t wrb, int64_t nr,
          const uint8_t* act, size_t arb, int64_t m, float* y, int64_t ys) {
  for (int64_t m0 = 0; m0 < m; m0 += kRowsM)
    g.fn(k, w, wrb, nr, act + m0 * arb, arb, std::min(kRowsM, m - m0), y + m0 * ys, ys);
}

struct Scratch {
  Plan plan;
  std::vector<uint8_t> xq, xe_gate, xe_up, hq;
  std::vector<float> g, u, d;
};

}  // namespace

void moe_experts_at(const MoeParams& p, Isa max_tier, ThreadPool* pool) {
  const int64_t H = p.hidden, F = p.n_ff;
  for (int64_t t = 0; t < p.n_tokens; ++t) std::fill_n(p.y + t * H, H, 0.f);
  const GemmKernel* kg = select_gemm(p.gate_type, H, max_tier);
  const GemmKernel* ku = select_gemm(p.up_type, H, max_tier);
  const GemmKernel* kd = select_gemm(p.down_type, F, max_tier);
  if (!kg || !ku || !kd || p.n_tokens <= 0) return;  // no kernel: the loader rejects such weights

  // The caller's scratch, reached through a reference: workers must not see their own
  // (empty) thread_local instance inside the lambdas below.
  thread_local Scratch tls;
  Scratch& s = tls;
  make_plan(p, s.plan);
  const Plan& plan = s.plan;
  const int64_t pairs = p.n_tokens * p.top_k;

  // Each token's activation in the gate's (and, when different, the up's) paired format, once.
  const DType ag = paired_activation(p.gate_type), au = paired_activation(p.up_type);
  const size_t rbg = row_bytes(ag, uint64_t(H)), rbu = row_bytes(au, uint64_t(H));
  const bool same_act = ag == au;
  s.xq.resize(size_t(p.n_tokens) * (rbg + (same_act ? 0 : rbu)));
  uint8_t* xq_g = s.xq.data();
  uint8_t* xq_u = same_act ? xq_g : xq_g + size_t(p.n_tokens) * rbg;
  for_range(p.n_tokens, pool, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      quantize_row(ag, p.x + t * H, xq_g + t * rbg, H);
      if (!same_act) quantize_row(au, p.x + t * H, xq_u + t * rbu, H);
    }
  });
  // Gather each expert's rows contiguously (a copy of quantised bytes, not a requantisation).
  s.xe_gate.resize(size_t(pairs) * rbg);
  s.xe_up.resize(same_act ? 0 : size_t(pairs) * rbu);
  uint8_t* xe_g = s.xe_gate.data();
  uint8_t* xe_u = same_act ? xe_g : s.xe_up.data();
  for (int64_t i = 0; i < pairs; ++i) {
    const int64_t tok = plan.rows[size_t(i)] / p.top_k;
    std::memcpy(xe_g + i * rbg, xq_g + tok * rbg, rbg);
    if (!same_act) std::memcpy(xe_u + i * rbu, xq_u + tok * rbu, rbu);
  }

  // Phase 1: gate and up projections, items = expert x block of n_ff rows.
  s.g.resize(size_t(pairs * F));
  s.u.resize(size_t(pairs * F));
  const size_t wg = row_bytes(p.gate_type, uint64_t(H)), wu = row_bytes(p.up_type, uint64_t(H));
  for_expert_blocks(plan, F, pool, [&](int e, int64_t r0, int64_t r1) {
    const int64_t o = plan.offset[size_t(e)], m = plan.offset[size_t(e) + 1] - o;
    gemm(*kg, H, static_cast<const uint8_t*>(p.experts[e].gate) + r0 * wg, wg, r1 - r0,
         xe_g + o * rbg, rbg, m, s.g.data() + o * F + r0, F);
    gemm(*ku, H, static_cast<const uint8_t*>(p.experts[e].up) + r0 * wu, wu, r1 - r0,
         xe_u + o * rbu, rbu, m, s.u.data() + o * F + r0, F);
  });

  // Phase 2: swiglu and the down projection's activation format, per (expert, token) row.
  const DType ad = paired_activation(p.down_type);
  const size_t rbd = row_bytes(ad, uint64_t(F));
  s.hq.resize(size_t(pairs) * rbd);
  for_range(pairs, pool, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* h = s.g.data() + i * F;
      swiglu(h, s.u.data() + i * F, h, F);
      quantize_row(ad, h, s.hq.data() + i * rbd, F);
    }
  });

  // Phase 3: down projection, items = expert x block of hidden rows.
  s.d.resize(size_t(pairs * H));
  const size_t wd = row_bytes(p.down_type, uint64_t(F));
  for_expert_blocks(plan, H, pool, [&](int e, int64_t r0, int64_t r1) {
    const int64_t o = plan.offset[size_t(e)], m = plan.offset[size_t(e) + 1] - o;
    gemm(*kd, F, static_cast<const uint8_t*>(p.experts[e].down) + r0 * wd, wd, r1 - r0,
         s.hq.data() + o * rbd, rbd, m, s.d.data() + o * H + r0, H);
  });

  // Phase 4: y[t] = sum over slots (in slot order) of weight * down row.
  std::vector<int64_t> pos(static_cast<size_t>(pairs));  // position of (token, slot) in plan.rows
  for (int64_t i = 0; i < pairs; ++i) pos[size_t(plan.rows[size_t(i)])] = i;
  for_range(p.n_tokens, pool, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      for (int k = 0; k < p.top_k; ++k) {
        const int64_t r = t * p.top_k + k;
        axpy(p.weights[r], s.d.data() + pos[size_t(r)] * H, p.y + t * H, H);
      }
  });
}

void moe_experts(const MoeParams& p, ThreadPool& pool) { moe_experts_at(p, active_isa(), &pool); }

}  // namespace hexe::cpu

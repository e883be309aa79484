// Routed-expert FFN of one MoE layer in ONE pool dispatch. Plan: bucket (token, slot) pairs by
// expert; quantise each token's activation once; then independent units (expert x slice of n_ff)
// taken dynamically by the threads: a unit computes its gate and up rows, swiglu, requantises
// that slice of h and multiplies it by the matching columns of down, giving a partial [m x hidden]
// result of its own. No barrier inside the layer: a thread that is descheduled (oversubscribed
// machine) just takes fewer units. The caller then sums the partials per token in slot order and
// slice order, so the result does not depend on which thread ran what. n_ff is sliced only when
// there are fewer used experts than threads (decode with small top-k on many cores); an expert
// with far more than its share of the tokens (skewed prefill routing on many cores) is cut into
// token chunks, each a unit. The experts' Rows16 copies (repack.h) are read when the caller gives
// them: the same plan, other tiles.
#include "cpu_kernels/moe.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "cpu_kernels/cpu_relax.h"
#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/env.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/ops.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/quant_act.h"
#include "cpu_kernels/repack.h"

namespace hexe::cpu {
namespace {

// Units per thread the slicing aims for: a thread that stalls (preempted, late to wake) holds up
// the layer by at most one unit, and dynamic taking balances the rest.
constexpr int64_t kUnitsPerThread = 1;

// Prefill: an expert's tokens are cut into chunks of at least this many rows when one expert holds
// more than a thread's half share (e.g. 500 of 512 x 8 rows on 16 threads: one whole-expert unit
// took twice the layer's balanced time while the other threads idled, and the engine's MoE layer
// ran at 0.58 of the profile's random-routing rate on a 16-core host). 128 rows keep the AMX tiles'
// weight preparation (once per call, up to 256 rows) a small part of a unit.
constexpr int64_t kMinChunkRows = 128;

struct Plan {
  std::vector<int64_t> offset;  // [n_experts + 1]: start of each expert's rows in `rows`
  std::vector<int64_t> rows;    // (token * top_k + slot) grouped by expert
  std::vector<int64_t> pos;     // [pairs]: position of (token, slot) in `rows`
  std::vector<int> used;        // experts with at least one token
  int64_t max_m = 0;            // most tokens on one expert
};

// One unit of the general schedule: expert e's rows [r0, r1) (relative to its first) and n_ff
// slice sl.
struct Unit {
  int e;
  int64_t r0, r1, sl;
};

// The units of `experts` (longest first already), each expert's rows cut into chunks of about
// `chunk` rows (0: whole), times n_slices.
void add_units(const Plan& plan, const std::vector<int>& experts, int64_t chunk, int64_t n_slices,
               std::vector<Unit>& out) {
  for (int e : experts) {
    const int64_t m = plan.offset[size_t(e) + 1] - plan.offset[size_t(e)];
    const int64_t n_chunks = chunk > 0 ? std::max<int64_t>(1, (m + chunk - 1) / chunk) : 1;
    for (int64_t c = 0; c < n_chunks; ++c)
      for (int64_t sl = 0; sl < n_slices; ++sl) out.push_back({e, c * m / n_chunks, (c + 1) * m / n_chunks, sl});
  }
}

// Slots with a negative id are empty (their expert runs elsewhere): no row, pos -1.
void make_plan(const MoeParams& p, Plan& plan) {
  plan.offset.assign(size_t(p.n_experts) + 1, 0);
  const int64_t pairs = p.n_tokens * p.top_k;
  int64_t filled = 0;
  for (int64_t r = 0; r < pairs; ++r)
    if (p.ids[r] >= 0) ++plan.offset[size_t(p.ids[r]) + 1], ++filled;
  plan.used.clear();
  plan.max_m = 0;
  for (int e = 0; e < p.n_experts; ++e) {
    const int64_t m = plan.offset[size_t(e) + 1];
    if (m > 0) plan.used.push_back(e);
    plan.max_m = std::max(plan.max_m, m);
    plan.offset[size_t(e) + 1] += plan.offset[size_t(e)];
  }
  plan.rows.resize(size_t(filled));
  plan.pos.resize(size_t(pairs));
  // Fill positions without another allocation: offset[e] walks forward, then is restored.
  for (int64_t r = 0; r < pairs; ++r) {
    if (p.ids[r] < 0) {
      plan.pos[size_t(r)] = -1;
      continue;
    }
    const int64_t i = plan.offset[size_t(p.ids[r])]++;
    plan.rows[size_t(i)] = r;
    plan.pos[size_t(r)] = i;
  }
  for (int e = p.n_experts; e > 0; --e) plan.offset[size_t(e)] = plan.offset[size_t(e) - 1];
  plan.offset[0] = 0;
}

// y[m x nr] = act[m rows] . w[nr rows]^T, m split into the kernel's chunks (skewed routing puts
// hundreds of a prefill chunk's tokens on one expert).
void gemm(const GemmKernel& g, int64_t k, const uint8_t* w, size_t wrb, int64_t nr,
          const uint8_t* act, size_t arb, int64_t m, float* y, int64_t ys) {
  const int64_t step = std::max<int64_t>(1, g.rows_per_call);
  for (int64_t m0 = 0; m0 < m; m0 += step)
    g.fn(k, w, wrb, nr, act + m0 * arb, arb, std::min(step, m - m0), y + m0 * ys, ys);
}

struct ThreadScratch {
  std::vector<float> g, u;   // [m][slice]
  std::vector<uint8_t> hq;   // [m] rows of the slice of h in down's activation format
};

// Chain decode (few threads): one item of the list: an expert's gate, up, or rows of its down.
struct ChainItem {
  enum Kind : int { Gate, Up, Down } kind;
  int u;           // index into Plan::used
  int64_t r0, r1;  // down rows
};

struct Scratch {
  Plan plan;
  std::vector<uint8_t> xq, xe_gate, xe_up;
  std::vector<float> d;  // [n_slices][pairs][hidden] partial down outputs
  std::vector<float> hg, hu;  // two-phase and chain decode: [pairs][n_ff] gate (then swiglu) and up rows
  std::vector<uint8_t> hq_shared;  // chain decode: [pairs] quantised h rows
  std::vector<ChainItem> chain;           // chain decode: the item list
  std::vector<std::atomic<int>> gu_done;  // chain decode: per used expert
  std::vector<ThreadScratch> per_thread;
  std::vector<std::vector<Unit>> units;  // general schedule: the unit list (one per NUMA home)
};

template <class Fn>
void for_range(int64_t n, ThreadPool* pool, Fn&& fn) {
  if (pool && pool->size() > 1 && n > 1) pool->parallel_for(n, 1, fn);
  else fn(0, n);
}

// y[t] = sum over slots (in slot order) of weight * (sum over slices of the partial rows);
// d is [n_slices][pairs][hidden], rows in plan order.
void reduce_pairs(const MoeParams& p, const Plan& plan, const float* d, int64_t n_slices, ThreadPool* pool) {
  const int64_t H = p.hidden, pairs = p.n_tokens * p.top_k;
  auto reduce = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      float* y = p.y + t * H;
      std::fill_n(y, H, 0.f);
      for (int k = 0; k < p.top_k; ++k) {
        const int64_t r = t * p.top_k + k;
        if (plan.pos[size_t(r)] < 0) continue;
        for (int64_t sl = 0; sl < n_slices; ++sl) axpy(p.weights[r], d + (sl * pairs + plan.pos[size_t(r)]) * H, y, H);
      }
    }
  };
  if (p.n_tokens >= 16) for_range(p.n_tokens, pool, reduce);
  else reduce(0, p.n_tokens);
}

}  // namespace

void moe_experts_at(const MoeParams& p, Isa max_tier, ThreadPool* pool) {
  const int64_t H = p.hidden, F = p.n_ff;
  // Per matrix: its Rows16 copy when p.packed has one (read off the first routed expert; the
  // same in every routed entry) and its tile is of the GGUF tile's tier or better.
  const int64_t pairs = std::max<int64_t>(p.n_tokens, 0) * std::max(p.top_k, 0);
  const int32_t* first = std::find_if(p.ids, p.ids + pairs, [](int32_t id) { return id >= 0; });
  const bool any_packed = p.packed && first != p.ids + pairs;
  auto pick = [&](const void* ExpertWeights::*m, DType t, int64_t k, WeightLayout& l) {
    const GemmKernel* g = find_gemm(t, k, max_tier);
    l = WeightLayout::Gguf;
    if (any_packed && p.packed[*first].*m && rows16_supported(t)) {
      const GemmKernel* r = find_gemm(t, k, max_tier, WeightLayout::Rows16);
      if (r && (!g || int(r->tier) >= int(g->tier))) l = WeightLayout::Rows16;
    }
    return select_gemm(t, k, max_tier, l);  // the one it runs, logged
  };
  WeightLayout lg, lu, ld;
  const GemmKernel* kg = pick(&ExpertWeights::gate, p.gate_type, H, lg);
  const GemmKernel* ku = pick(&ExpertWeights::up, p.up_type, H, lu);
  const GemmKernel* kd = pick(&ExpertWeights::down, p.down_type, F, ld);
  const ExpertWeights* wg_set = lg == WeightLayout::Rows16 ? p.packed : p.experts;
  const ExpertWeights* wu_set = lu == WeightLayout::Rows16 ? p.packed : p.experts;
  const ExpertWeights* wd_set = ld == WeightLayout::Rows16 ? p.packed : p.experts;
  // No kernel (the loader rejects such weights), or every slot empty: y = 0.
  if (!kg || !ku || !kd || first == p.ids + pairs) {
    if (p.on_caller) (*p.on_caller)();
    for (int64_t t = 0; t < std::max<int64_t>(p.n_tokens, 0); ++t) std::fill_n(p.y + t * H, H, 0.f);
    return;
  }
  const int nth = pool ? pool->size() : 1;

  // The caller's scratch, reached through a reference: workers must not see their own
  // (empty) thread_local instance inside the lambdas below. Grows only; no steady-state allocation.
  thread_local Scratch tls;
  Scratch& s = tls;
  make_plan(p, s.plan);
  const Plan& plan = s.plan;
  const int64_t filled = int64_t(plan.rows.size());

  // Each token's activation in the gate's (and, when different, the up's) paired format, once.
  const DType ag = paired_activation(p.gate_type), au = paired_activation(p.up_type);
  const size_t rbg = row_bytes(ag, uint64_t(H)), rbu = row_bytes(au, uint64_t(H));
  const bool same_act = ag == au;
  s.xq.resize(size_t(p.n_tokens) * (rbg + (same_act ? 0 : rbu)));
  uint8_t* xq_g = s.xq.data();
  uint8_t* xq_u = same_act ? xq_g : xq_g + size_t(p.n_tokens) * rbg;
  auto quantize_x = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      quantize_activation_row(ag, p.x + t * H, xq_g + t * rbg, H);
      if (!same_act) quantize_activation_row(au, p.x + t * H, xq_u + t * rbu, H);
    }
  };
  if (p.n_tokens >= 16) for_range(p.n_tokens, pool, quantize_x);  // a dispatch pays off in prefill
  else quantize_x(0, p.n_tokens);
  // Gather each expert's rows contiguously (a copy of quantised bytes, not a requantisation).
  // Decode with one token needs no gather: every expert reads the one row.
  const uint8_t* xe_g = xq_g;
  const uint8_t* xe_u = xq_u;
  if (p.n_tokens > 1) {
    s.xe_gate.resize(size_t(filled) * rbg);
    s.xe_up.resize(same_act ? 0 : size_t(filled) * rbu);
    auto gather = [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t tok = plan.rows[size_t(i)] / p.top_k;
        std::memcpy(s.xe_gate.data() + i * rbg, xq_g + tok * rbg, rbg);
        if (!same_act) std::memcpy(s.xe_up.data() + i * rbu, xq_u + tok * rbu, rbu);
      }
    };
    // Prefill: T x k rows (9 MB for 512 tokens of Qwen3-30B): too much for one thread on many cores.
    if (filled >= 256) for_range(filled, pool, gather);
    else gather(0, filled);
    xe_g = s.xe_gate.data();
    xe_u = same_act ? xe_g : s.xe_up.data();
  }
  const size_t x_stride_g = p.n_tokens > 1 ? rbg : 0;  // decode: the same row for every pair
  const size_t x_stride_u = p.n_tokens > 1 ? rbu : 0;

  // Units: (used expert) x (slice of n_ff, in whole blocks of down's format; Rows16 slices start
  // at whole 16-row groups of gate/up and at rows16_col_align columns of down). n_ff not a
  // multiple of that: one slice.
  int64_t blk = int64_t(info(p.down_type).block_elems);
  if (ld == WeightLayout::Rows16) blk = rows16_col_align(p.down_type);
  if (lg == WeightLayout::Rows16 || lu == WeightLayout::Rows16) blk = std::max<int64_t>(blk, kRows16);
  if (F % blk != 0) blk = F;
  const int64_t n_blk = F / blk;
  const int64_t n_used = int64_t(plan.used.size());
  const int64_t n_slices = std::clamp<int64_t>((kUnitsPerThread * nth + n_used - 1) / n_used, 1, n_blk);
  const DType ad = paired_activation(p.down_type);
  // Bytes between rows (Gguf) or 16-row groups (Rows16) of each matrix.
  auto stride = [](WeightLayout l, DType t, int64_t k) {
    return l == WeightLayout::Rows16 ? rows16_group_bytes(t, k) : size_t(row_bytes(t, uint64_t(k)));
  };
  const size_t wg = stride(lg, p.gate_type, H), wu = stride(lu, p.up_type, H), wd = stride(ld, p.down_type, F);
  // Byte offset of row c0 of gate/up (c0 % 16 == 0 for Rows16).
  auto row_off = [](WeightLayout l, size_t st, int64_t c0) {
    return l == WeightLayout::Rows16 ? size_t(c0 / kRows16) * st : size_t(c0) * st;
  };
  if (s.per_thread.size() < size_t(nth)) s.per_thread.resize(size_t(nth));

  // Decode on many cores: top-k experts cut into n_ff slices give about one unit per thread, and
  // not even that where down's blocks allow few slices (8 experts x 3 slices of 768 on 16
  // threads: half the threads do two units, the layer takes 2 unit-times for 1.5 of work); a
  // late thread holds up the layer by a whole unit. Two phases balance instead: gate/up in
  // 16-row groups of every used expert, then (after the join) down in 16-row groups of its
  // output; about four units per thread in each, for one more dispatch. Each down unit
  // requantises its expert's h rows (n_ff values; once per run of units of one expert).
  const bool homes_asked = p.n_homes > 1 && p.expert_home && p.thread_home;
  const std::string& forced = env::moe_schedule();
  const bool two_ok = pool && nth > 1 && !homes_asked && p.n_tokens <= 8 && F % kRows16 == 0 && H % kRows16 == 0;
  // Few threads (2-3): a chain of whole matrices keeps the weight streams long (64-256 KB items
  // lose 20% of the bandwidth on the 2-core VM: each new stream starts slow). The items are each
  // used expert's gate, its up, and its down, in the order G0 U0 G1 U1 D0 G2 U2 D1 ... (2 threads;
  // a down sits nth - 1 experts after its gate and up). A down waits for its expert's gate and up
  // (the thread that finishes the second of them applies swiglu and quantises h once for all the
  // down's items), and placed that far behind them it finds them done. The last experts' downs are
  // cut into 2 x nth row pieces, so the layer ends with the threads within a small piece of each
  // other: the cores of a VM run at different speeds (one 10% behind the other here), and the
  // schedule before this one (whole experts, the last nth split in halves) left the slower thread
  // finishing alone for longer (moe-layer q4_k decode 0.67 against 0.69 for this, alternating).
  // HEXE_MOE_SCHEDULE=chain forces it, `one` and `two` the others.
  const bool two = two_ok && (forced == "two" || (forced != "one" && forced != "chain" && nth >= 4));
  const bool chain = two_ok && !two && (forced == "chain" || (forced != "one" && nth < 4));
  if (two || chain) {
    s.hg.resize(size_t(filled * F));
    s.hu.resize(size_t(filled * F));
    s.d.resize(size_t(pairs * H));
    const size_t rbd = row_bytes(ad, uint64_t(F));
    std::mutex trace_mu;
    auto trace = [&](int e, int ith) {
      if (!p.trace) return;
      std::lock_guard<std::mutex> lock(trace_mu);
      p.trace->emplace_back(e, ith);
    };
    // Gate rows [r0, r1) of expert e into hg; up rows into hu.
    auto gate_rows = [&](int e, int64_t r0, int64_t r1) {
      const int64_t o = plan.offset[size_t(e)], m = plan.offset[size_t(e) + 1] - o;
      gemm(*kg, H, static_cast<const uint8_t*>(wg_set[e].gate) + row_off(lg, wg, r0), wg, r1 - r0,
           xe_g + o * x_stride_g, x_stride_g, m, s.hg.data() + o * F + r0, F);
    };
    auto up_rows = [&](int e, int64_t r0, int64_t r1) {
      const int64_t o = plan.offset[size_t(e)], m = plan.offset[size_t(e) + 1] - o;
      gemm(*ku, H, static_cast<const uint8_t*>(wu_set[e].up) + row_off(lu, wu, r0), wu, r1 - r0,
           xe_u + o * x_stride_u, x_stride_u, m, s.hu.data() + o * F + r0, F);
    };
    // Down rows [r0, r1) of expert e from its quantised h rows `hq`.
    auto down = [&](int e, int64_t r0, int64_t r1, const uint8_t* hq) {
      const int64_t o = plan.offset[size_t(e)], m = plan.offset[size_t(e) + 1] - o;
      gemm(*kd, F, static_cast<const uint8_t*>(wd_set[e].down) + row_off(ld, wd, r0), wd, r1 - r0, hq, rbd, m,
           s.d.data() + o * H + r0, H);
    };
    // h = swiglu(gate, up) of expert e, in place in hg, quantised into hq_rows (m rows of rbd).
    auto swiglu_quantise = [&](int e, uint8_t* hq_rows) {
      const int64_t o = plan.offset[size_t(e)], m = plan.offset[size_t(e) + 1] - o;
      for (int64_t i = 0; i < m; ++i) {
        float* g = s.hg.data() + (o + i) * F;
        swiglu(g, s.hu.data() + (o + i) * F, g, F);
        quantize_activation_row(ad, g, hq_rows + size_t(i) * rbd, F);
      }
    };
    // Item j of c over n rows (whole 16-row groups).
    auto rows = [](int64_t j, int64_t c, int64_t n) {
      return std::pair<int64_t, int64_t>{j * (n / kRows16) / c * kRows16, (j + 1) * (n / kRows16) / c * kRows16};
    };
    if (two) {  // about four items per thread in each phase, a join between them
      for (int t = 0; t < nth; ++t) {
        ThreadScratch& ts = s.per_thread[size_t(t)];
        if (ts.hq.size() < size_t(plan.max_m) * rbd) ts.hq.resize(size_t(plan.max_m) * rbd);
      }
      std::atomic<int64_t> next1{0}, next2{0};
      const int64_t per_expert = (4 * nth + n_used - 1) / n_used;
      const int64_t c1 = std::min(per_expert, F / kRows16), c2 = std::min(per_expert, H / kRows16);
      pool->run([&](int ith, int) {
        if (ith == 0 && p.on_caller) (*p.on_caller)();
        for (int64_t it; (it = next1.fetch_add(1, std::memory_order_relaxed)) < n_used * c1;) {
          const int e = plan.used[size_t(it / c1)];
          trace(e, ith);
          const auto [r0, r1] = rows(it % c1, c1, F);
          gate_rows(e, r0, r1);
          up_rows(e, r0, r1);
          const int64_t o = plan.offset[size_t(e)], m = plan.offset[size_t(e) + 1] - o;
          for (int64_t i = 0; i < m; ++i) swiglu(s.hg.data() + (o + i) * F + r0, s.hu.data() + (o + i) * F + r0,
                                                 s.hg.data() + (o + i) * F + r0, r1 - r0);
        }
      });
      pool->run([&](int ith, int) {
        ThreadScratch& ts = s.per_thread[size_t(ith)];
        int quantised = -1;  // the expert whose h rows ts.hq holds
        for (int64_t it; (it = next2.fetch_add(1, std::memory_order_relaxed)) < n_used * c2;) {
          const int e = plan.used[size_t(it / c2)];
          trace(e, ith);
          if (quantised != e) {
            const int64_t o = plan.offset[size_t(e)], m = plan.offset[size_t(e) + 1] - o;
            for (int64_t i = 0; i < m; ++i)
              quantize_activation_row(ad, s.hg.data() + (o + i) * F, ts.hq.data() + size_t(i) * rbd, F);
            quantised = e;
          }
          const auto [r0, r1] = rows(it % c2, c2, H);
          down(e, r0, r1, ts.hq.data());
        }
      });
    } else {
      std::vector<ChainItem>& items = s.chain;
      items.clear();
      const int lag = nth - 1;
      const int64_t pieces = std::min<int64_t>(2 * nth, H / kRows16);
      auto push_down = [&](int u) {
        const int64_t c = u >= n_used - lag - 1 ? pieces : 1;
        for (int64_t j = 0; j < c; ++j) {
          const auto [r0, r1] = rows(j, c, H);
          items.push_back({ChainItem::Down, u, r0, r1});
        }
      };
      for (int u = 0; u < int(n_used); ++u) {
        items.push_back({ChainItem::Gate, u, 0, F});
        items.push_back({ChainItem::Up, u, 0, F});
        if (u >= lag) push_down(u - lag);
      }
      for (int u = std::max(0, int(n_used) - lag); u < int(n_used); ++u) push_down(u);
      s.hq_shared.resize(size_t(filled) * rbd);
      std::vector<std::atomic<int>>& gu_done = s.gu_done;  // gate and up items finished, per used expert
      if (gu_done.size() < size_t(n_used)) gu_done = std::vector<std::atomic<int>>(size_t(n_used));
      for (int64_t u = 0; u < n_used; ++u) gu_done[size_t(u)].store(0, std::memory_order_relaxed);
      std::atomic<int64_t> next{0};
      const int64_t n_items = int64_t(items.size());
      pool->run([&](int ith, int) {
        if (ith == 0 && p.on_caller) (*p.on_caller)();
        for (int64_t it; (it = next.fetch_add(1, std::memory_order_relaxed)) < n_items;) {
          const ChainItem& item = items[size_t(it)];
          const int e = plan.used[size_t(item.u)];
          trace(e, ith);
          uint8_t* hq = s.hq_shared.data() + size_t(plan.offset[size_t(e)]) * rbd;
          std::atomic<int>& done = gu_done[size_t(item.u)];
          if (item.kind != ChainItem::Down) {
            if (item.kind == ChainItem::Gate) gate_rows(e, 0, F);
            else up_rows(e, 0, F);
            // The second of gate/up to finish makes h; 3 then tells the downs it is there.
            if (done.fetch_add(1, std::memory_order_acq_rel) == 1) {
              swiglu_quantise(e, hq);
              done.store(3, std::memory_order_release);
            }
            continue;
          }
          // This expert's gate and up items are taken (they precede this one) and run on some thread.
          for (int spins = 0; done.load(std::memory_order_acquire) < 3; ++spins) {
            if (spins < 1024) cpu_relax();
            else std::this_thread::yield();  // oversubscribed: let the item's thread run
          }
          down(e, item.r0, item.r1, hq);
        }
      });
    }
    reduce_pairs(p, plan, s.d.data(), 1, pool);
    return;
  }

  const int64_t max_slice = (n_blk + n_slices - 1) / n_slices * blk;
  s.d.resize(size_t(n_slices * pairs * H));
  for (int t = 0; t < nth; ++t) {
    ThreadScratch& ts = s.per_thread[size_t(t)];
    const size_t need = size_t(plan.max_m * max_slice);
    if (ts.g.size() < need) ts.g.resize(need), ts.u.resize(need);
    const size_t hq = size_t(plan.max_m) * row_bytes(ad, uint64_t(max_slice));
    if (ts.hq.size() < hq) ts.hq.resize(hq);
  }

  // Units are handed out from one counter, or with NUMA homes from one counter per home over that
  // home's used experts, taken only by the home's threads.
  // (One thread serves every home; a home whose experts have no thread makes the split fall back.)
  // Experts with the most tokens are handed out first (longest job first): with skewed routing a
  // big expert taken last would leave the other threads idle at the end of a prefill layer.
  std::vector<int> by_load = plan.used;
  std::stable_sort(by_load.begin(), by_load.end(), [&](int a, int b) {
    return plan.offset[size_t(a) + 1] - plan.offset[size_t(a)] > plan.offset[size_t(b) + 1] - plan.offset[size_t(b)];
  });
  bool homes = p.n_homes > 1 && p.expert_home && p.thread_home && pool && nth > 1;
  std::vector<std::vector<int>> used_by_home;
  if (homes) {
    used_by_home.resize(size_t(p.n_homes));
    std::vector<int> threads(size_t(p.n_homes), 0);
    for (int t = 0; t < nth; ++t) ++threads[size_t(p.thread_home[t])];
    for (int e : by_load) used_by_home[size_t(p.expert_home[e])].push_back(e);
    for (int h = 0; h < p.n_homes; ++h)
      if (!used_by_home[size_t(h)].empty() && threads[size_t(h)] == 0) homes = false;
  }
  // Token chunks: about half a thread's share of the rows (whole experts when that is small or
  // with HEXE_MOE_SCHEDULE=whole).
  const int64_t share = (filled + 2 * nth - 1) / (2 * nth);
  const int64_t chunk = nth > 1 && forced != "whole" && plan.max_m > std::max(kMinChunkRows, share)
                            ? std::max(kMinChunkRows, share) : 0;
  std::vector<std::vector<Unit>>& units = s.units;
  units.resize(homes ? size_t(p.n_homes) : 1);
  for (auto& u : units) u.clear();
  if (homes)
    for (int h = 0; h < p.n_homes; ++h) add_units(plan, used_by_home[size_t(h)], chunk, n_slices, units[size_t(h)]);
  else
    add_units(plan, by_load, chunk, n_slices, units[0]);
  std::vector<std::atomic<int64_t>> next(units.size());
  for (auto& n : next) n.store(0);
  std::mutex trace_mu;
  auto work = [&](int ith, int) {
    if (ith == 0 && p.on_caller) (*p.on_caller)();
    ThreadScratch& ts = s.per_thread[size_t(ith)];
    const size_t list = homes ? size_t(p.thread_home[ith]) : 0;
    const std::vector<Unit>& mine = units[list];
    std::atomic<int64_t>& counter = next[list];
    for (int64_t it; (it = counter.fetch_add(1, std::memory_order_relaxed)) < int64_t(mine.size());) {
      const Unit& un = mine[size_t(it)];
      const int e = un.e;
      if (p.trace) {
        std::lock_guard<std::mutex> lock(trace_mu);
        p.trace->emplace_back(e, ith);
      }
      const int64_t sl = un.sl;
      const int64_t c0 = sl * n_blk / n_slices * blk, c1 = (sl + 1) * n_blk / n_slices * blk;
      const int64_t len = c1 - c0;
      const int64_t o = plan.offset[size_t(e)] + un.r0, m = un.r1 - un.r0;
      // Gate and up rows [c0, c1) for the expert's m tokens: [m][len].
      gemm(*kg, H, static_cast<const uint8_t*>(wg_set[e].gate) + row_off(lg, wg, c0), wg, len,
           xe_g + o * x_stride_g, x_stride_g, m, ts.g.data(), len);
      gemm(*ku, H, static_cast<const uint8_t*>(wu_set[e].up) + row_off(lu, wu, c0), wu, len,
           xe_u + o * x_stride_u, x_stride_u, m, ts.u.data(), len);
      const size_t rbd = row_bytes(ad, uint64_t(len));
      for (int64_t i = 0; i < m; ++i) {
        float* h = ts.g.data() + i * len;
        swiglu(h, ts.u.data() + i * len, h, len);
        quantize_activation_row(ad, h, ts.hq.data() + size_t(i) * rbd, len);
      }
      // Down: all hidden rows, columns [c0, c1) (a block-aligned byte range of each row).
      const size_t col_off = ld == WeightLayout::Rows16 ? rows16_col_offset(p.down_type, c0)
                                                        : size_t(row_bytes(p.down_type, uint64_t(c0)));
      gemm(*kd, len, static_cast<const uint8_t*>(wd_set[e].down) + col_off, wd, H, ts.hq.data(), rbd, m,
           s.d.data() + (sl * pairs + o) * H, H);
    }
  };
  if (pool && nth > 1 && (units[0].size() > 1 || homes)) pool->run(work);
  else work(0, 1);

  reduce_pairs(p, plan, s.d.data(), n_slices, pool);
}

void moe_experts(const MoeParams& p, ThreadPool& pool) { moe_experts_at(p, active_isa(), &pool); }

}  // namespace hexe::cpu

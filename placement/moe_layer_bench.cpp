// The routed-expert layer measurements of `hexe profile detect` (moe_layer_bench.h).
#include "placement/moe_layer_bench.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "cpu_kernels/moe.h"
#include "cpu_kernels/probe.h"
#include "cpu_kernels/quant.h"
#include "cpu_kernels/thread_pool.h"
#include "memory/node_buffer.h"
#include "placement/bench_timing.h"

namespace hexe::place {

namespace {

constexpr int64_t kHidden = 2048, kFf = 768, kExperts = 128, kTopK = 8;

// n_layers x 128 experts, each one expert's bytes copied (the speed does not depend on the
// values), in the layout the kernels read; gate, up and down back to back per expert.
class LayerSet {
 public:
  LayerSet(DType t, cpu::WeightLayout layout, uint64_t bytes, cpu::ThreadPool& pool) {
    gate_ = row_bytes(t, uint64_t(kHidden)) * uint64_t(kFf);
    down_ = row_bytes(t, uint64_t(kFf)) * uint64_t(kHidden);
    one_.resize(2 * gate_ + down_);
    std::mt19937 rng(17);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> row(static_cast<size_t>(kHidden));
    for (auto& v : row) v = dist(rng) * 0.05f;
    for (int64_t r = 0; r < 2 * kFf; ++r) cpu::quantize_row(t, row.data(), one_.data() + r * (gate_ / kFf), kHidden);
    for (int64_t r = 0; r < kHidden; ++r)
      cpu::quantize_row(t, row.data(), one_.data() + 2 * gate_ + r * (down_ / kHidden), kFf);

    const bool rows16 = layout == cpu::WeightLayout::Rows16;
    std::vector<uint8_t> src = one_;  // what every slot holds
    size_t pgate = gate_;
    if (rows16) {
      pgate = cpu::rows16_group_bytes(t, kHidden) * size_t((kFf + 15) / 16);
      const size_t pdown = cpu::rows16_group_bytes(t, kFf) * size_t((kHidden + 15) / 16);
      src.assign(2 * pgate + pdown, 0);
      cpu::repack_rows16_into(t, kFf, kHidden, one_.data(), row_bytes(t, uint64_t(kHidden)), src.data());
      cpu::repack_rows16_into(t, kFf, kHidden, one_.data() + gate_, row_bytes(t, uint64_t(kHidden)), src.data() + pgate);
      cpu::repack_rows16_into(t, kHidden, kFf, one_.data() + 2 * gate_, row_bytes(t, uint64_t(kFf)),
                              src.data() + 2 * pgate);
    }
    const size_t slot = (src.size() + 63) / 64 * 64;  // the tiles want 64-byte aligned groups
    n_layers_ = std::max<int64_t>(2, int64_t(bytes / (slot * kExperts)) + 1);
    const int64_t n_slots = n_layers_ * kExperts;
    buf_ = mem::NodeBuffer(size_t(n_slots) * slot, -1, mem::HugePages::Madvise);
    pool.parallel_for(n_slots, 1, [&](int64_t b, int64_t e) {  // first touch by the readers' threads
      for (int64_t i = b; i < e; ++i) std::memcpy(buf_.data() + size_t(i) * slot, src.data(), src.size());
    });
    // Rows16: every expert's GGUF view is the one expert (never read: the copies are).
    views_.resize(size_t(n_slots));
    packed_.resize(rows16 ? size_t(n_slots) : 0);
    for (int64_t i = 0; i < n_slots; ++i) {
      const uint8_t* s = buf_.data() + size_t(i) * slot;
      if (rows16) {
        views_[size_t(i)] = {one_.data(), one_.data() + gate_, one_.data() + 2 * gate_};
        packed_[size_t(i)] = {s, s + pgate, s + 2 * pgate};
      } else {
        views_[size_t(i)] = {s, s + gate_, s + 2 * gate_};
      }
    }
  }

  int64_t layers() const { return n_layers_; }
  uint64_t expert_bytes() const { return 2 * gate_ + down_; }  // the model's (GGUF) bytes
  // Points p at layer l's experts.
  void bind(cpu::MoeParams& p, int64_t l) const {
    p.experts = views_.data() + l * kExperts;
    p.packed = packed_.empty() ? nullptr : packed_.data() + l * kExperts;
  }

 private:
  uint64_t gate_ = 0, down_ = 0;
  std::vector<uint8_t> one_;
  mem::NodeBuffer buf_;
  int64_t n_layers_ = 0;
  std::vector<cpu::ExpertWeights> views_, packed_;
};

cpu::MoeParams layer_params(DType t, int64_t tokens, const std::vector<float>& x, const std::vector<int32_t>& ids,
                            const std::vector<float>& weights, std::vector<float>& y) {
  cpu::MoeParams p;
  p.n_experts = int(kExperts);
  p.gate_type = p.up_type = p.down_type = t;
  p.hidden = kHidden;
  p.n_ff = kFf;
  p.x = x.data();
  p.n_tokens = tokens;
  p.top_k = int(kTopK);
  p.ids = ids.data();
  p.weights = weights.data();
  p.y = y.data();
  return p;
}

// 8 distinct random experts for each of `tokens` tokens (partial Fisher-Yates).
void route(std::vector<int32_t>& ids, int64_t tokens, std::mt19937& rng) {
  std::vector<int32_t> all(static_cast<size_t>(kExperts));
  for (int64_t e = 0; e < kExperts; ++e) all[size_t(e)] = int32_t(e);
  ids.resize(size_t(tokens * kTopK));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t k = 0; k < kTopK; ++k) {
      std::swap(all[size_t(k)], all[size_t(k + int64_t(rng() % uint32_t(kExperts - k)))]);
      ids[size_t(t * kTopK + k)] = all[size_t(k)];
    }
}

// The median layer, each run with a fresh routing: what the engine's layers get. (The fastest of
// ~30 runs on one routing read 1.2x what `hexe bench moe-layer --tokens 512` and the engine's
// prefill got on the 16-core H200 host, and the planner took it for the typical layer.)
double prefill_gops(const LayerSet& set, DType t, int64_t tokens_per_expert, cpu::ThreadPool& pool,
                    double min_seconds) {
  const int64_t T = tokens_per_expert * kExperts / kTopK;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> x(size_t(T * kHidden)), y(x.size()), weights(size_t(T * kTopK), 1.f / float(kTopK));
  for (auto& v : x) v = dist(rng);
  std::vector<int32_t> ids;
  route(ids, T, rng);
  cpu::MoeParams p = layer_params(t, T, x, ids, weights, y);
  int64_t layer = 0;
  auto run = [&] {
    set.bind(p, layer);
    layer = (layer + 1) % set.layers();
    cpu::moe_experts(p, pool);
  };
  // (the first, untimed run: first-call allocations, thread wake-up)
  const std::vector<double> runs = timing::timed_runs(run, [&] { route(ids, T, rng); }, min_seconds);
  return 2.0 * 3.0 * double(T * kTopK) * double(kHidden) * double(kFf) / timing::median_of(runs) / 1e9;
}

StreamRate decode_rate(const LayerSet& set, DType t, cpu::ThreadPool& pool) {
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> x(static_cast<size_t>(kHidden)), y(x.size()), weights(size_t(kTopK), 1.f / float(kTopK));
  for (auto& v : x) v = dist(rng);
  std::vector<int32_t> ids(static_cast<size_t>(kTopK));
  cpu::MoeParams p = layer_params(t, 1, x, ids, weights, y);
  // One step = every layer once, each with 8 distinct experts drawn afresh.
  auto step = [&] {
    for (int64_t l = 0; l < set.layers(); ++l) {
      route(ids, 1, rng);
      set.bind(p, l);
      cpu::moe_experts(p, pool);
    }
  };
  // The paired read goes over a buffer of its own, at least what one step reads and far above the
  // LLC (a step of 1 GiB of experts reads 64 MiB, which the Zen 4 VM's 32 MiB L3 read a third
  // faster than DRAM).
  const double step_bytes = double(kTopK) * double(set.expert_bytes()) * double(set.layers());
  std::vector<uint8_t> probe(size_t(std::max<double>(step_bytes, double(cpu::dram_span_bytes()))) + 64);
  pool.parallel_for(int64_t(probe.size()), 1 << 20, [&](int64_t s, int64_t e) {
    std::memset(probe.data() + s, 0x11, size_t(e - s));
  });
  const auto [pp, pn] = timing::aligned_span(probe);
  return timing::paired_stream_rate(step, step_bytes, pp, pn, pool, 0.3);
}

}  // namespace

MoeLayerRates measure_moe_layer(DType w_type, const std::vector<int>& cpus, uint64_t bytes,
                                cpu::WeightLayout layout, double prefill_seconds) {
  cpu::ThreadPool pool(int(std::max<size_t>(1, cpus.size())), cpus);
  const LayerSet set(w_type, layout, bytes, pool);
  MoeLayerRates r;
  r.prefill_gops_32 = prefill_gops(set, w_type, 32, pool, prefill_seconds);
  r.prefill_gops_8 = prefill_gops(set, w_type, 8, pool, prefill_seconds / 2);
  r.prefill_gops_128 = prefill_gops(set, w_type, 128, pool, prefill_seconds);
  r.decode = decode_rate(set, w_type, pool);
  return r;
}

}  // namespace hexe::place

// Placement per strategy, user rules, sizing of the memory-dependent parts (layers on the GPU,
// hot experts, cache slots, stream buffers), and the choice `auto` makes.
#include "placement/strategies.h"

#include <algorithm>
#include <cmath>

#include "memory/error.h"
#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/repack.h"
#include "placement/cost_model.h"
#include "placement/memory_fit.h"
#include "placement/model_digest.h"
#include "placement/predict.h"

namespace hexe::place {

namespace {

struct Entry {
  Strategy s;
  const char* name;
};
constexpr Entry kStrategies[] = {
    {Strategy::Cpu, "cpu"},     {Strategy::Gpu, "gpu"},       {Strategy::Layers, "layers"},
    {Strategy::ExpertsCpu, "experts-cpu"}, {Strategy::ExpertsCpuHot, "experts-cpu+hot"},
    {Strategy::Stream, "stream"}, {Strategy::Cache, "cache"}, {Strategy::Auto, "auto"},
};

struct Ctx {
  const PlanInputs& in;
  const PlanModel& m;
  const HardwareProfile& hw;
  ModelDigest d;
  CostModel cm;
};

Plan base_plan(const Ctx& c, Strategy s) {
  Plan p;
  p.strategy = strategy_name(s);
  p.model = c.m.spec.name;
  p.quant = c.m.quant;
  p.profile = c.hw.name;
  p.workload = c.in.workload;
  p.has_gpu = !c.hw.gpus.empty();
  p.cpu_threads = std::max(1, c.hw.cpu.cores);
  for (const auto& t : c.m.spec.tensors) p.tensors.push_back({t.name, Device::Cpu, t.type, t.bytes, 0, {}});
  for (const auto& l : c.d.layers) {
    LayerPlan lp;
    lp.layer = l.layer;
    lp.moe = l.moe;
    lp.attn = lp.ffn = Device::Cpu;
    p.layers.push_back(lp);
  }
  p.head = Device::Cpu;
  return p;
}

// Places every tensor of kind `k` (in `layer`, or all layers when -1) on `dev`.
void place(Plan& p, const Ctx& c, Device dev, bool routed, bool non_routed, int layer = -1) {
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const auto& t = c.m.spec.tensors[i];
    if (layer >= 0 && t.layer != layer) continue;
    const WeightKind k = weight_kind(t);
    if (k == WeightKind::Embd && !(c.m.spec.tied_embeddings && dev == Device::Gpu && layer < 0)) continue;
    if ((k == WeightKind::Experts && routed) || (k != WeightKind::Experts && non_routed)) p.tensors[i].device = dev;
  }
}

// The output norm and matrix (and the tied embedding that serves as the head).
void place_head(Plan& p, const Ctx& c, Device dev) {
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const WeightKind k = weight_kind(c.m.spec.tensors[i]);
    if (k == WeightKind::Head || (k == WeightKind::Embd && c.m.spec.tied_embeddings)) p.tensors[i].device = dev;
  }
}

// Derives the op devices from where the tensors ended up (after user rules): attention runs
// where most of its weights are, likewise the FFN; routed experts placed on the GPU by a rule
// run there from VRAM, experts moved to the CPU run on the CPU.
void sync_layers(Plan& p, const Ctx& c) {
  const auto& spec = c.m.spec;
  std::vector<double> attn_gpu(p.layers.size()), attn_all(p.layers.size()), ffn_gpu(p.layers.size()),
      ffn_all(p.layers.size()), exp_gpu(p.layers.size()), exp_all(p.layers.size());
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const auto& t = spec.tensors[i];
    if (t.layer < 0 || size_t(t.layer) >= p.layers.size()) continue;
    const double b = double(t.bytes), on = p.tensors[i].device == Device::Gpu ? b : 0;
    switch (weight_kind(t)) {
      case WeightKind::Attn: attn_gpu[t.layer] += on; attn_all[t.layer] += b; break;
      case WeightKind::Experts: exp_gpu[t.layer] += on; exp_all[t.layer] += b; break;
      default: ffn_gpu[t.layer] += on; ffn_all[t.layer] += b; break;
    }
  }
  for (size_t l = 0; l < p.layers.size(); ++l) {
    auto& lp = p.layers[l];
    lp.attn = attn_gpu[l] * 2 > attn_all[l] ? Device::Gpu : Device::Cpu;
    lp.ffn = ffn_all[l] > 0 ? (ffn_gpu[l] * 2 > ffn_all[l] ? Device::Gpu : Device::Cpu) : lp.attn;
    if (!lp.moe) continue;
    const bool on_gpu = exp_gpu[l] * 2 > exp_all[l];
    for (ExpertExec* e : {&lp.experts_decode, &lp.experts_prefill}) {
      if (on_gpu) *e = ExpertExec::Gpu;
      else if (*e == ExpertExec::Gpu) *e = ExpertExec::Cpu;
    }
    if (on_gpu) {
      lp.gpu_hit = 1.0;
      lp.gpu_experts.clear();
    }
  }
  for (size_t i = 0; i < p.tensors.size(); ++i)
    if (spec.tensors[i].role == TensorRole::Output) p.head = p.tensors[i].device;
  if (spec.tied_embeddings) {
    for (size_t i = 0; i < p.tensors.size(); ++i)
      if (spec.tensors[i].role == TensorRole::TokenEmbd) p.head = p.tensors[i].device;
  }
}

void apply_rules(Plan& p, const Ctx& c) {
  if (!c.in.rules || c.in.rules->empty()) return;
  const int moved = c.in.rules->apply(p.tensors);
  if (moved) p.notes.push_back("user rules moved " + std::to_string(moved) + " tensors");
}

void finish(Plan& p, const Ctx& c) {
  sync_layers(p, c);
  account_memory(p, c.m, c.d, c.hw);
}

bool needs_gpu(Strategy s) { return s != Strategy::Cpu; }

// On AVX-512 VNNI the CPU kernels read quantised weights (q8_0, the 32-block nibble types, q4_K,
// q5_K, q6_K) fastest from a copy repacked at load (Rows16), taken only when it fits in host
// memory. Its size: whole 16-row groups per matrix (rows16_group_bytes), a little over the GGUF
// bytes. It sits beside the mapped file where both fit (the file's pages stay cached for the next
// start); where they do not, the copy of routed experts that only the CPU reads
// (experts_read_only_by_cpu) takes the place of their mapped blocks, whose pages the engine then
// lets go (Plan::cpu_copy_replaces_mapped_experts). Without VNNI the engine repacks the formats
// with AVX2 Rows16 tiles (Q4_K, Q8_0) and copies every other matrix the CPU multiplies as it is,
// into huge-page memory (fewer TLB misses than the mapped file's 4 KiB pages: decode 0.69 -> 0.80
// of the DRAM bandwidth on a Zen 3 VM); the layout is rows16 where anything is repacked, else
// gguf, and repacked_bytes counts the whole copy, by the same fit rule.
void choose_cpu_weight_layout(Plan& p, const Ctx& c) {
  p.cpu_weight_layout = "gguf";
  p.repacked_bytes = 0;
  p.cpu_copy_replaces_mapped_experts = false;
  if (c.in.repack == false) {
    p.notes.push_back("--repack off: the CPU reads the mapped GGUF blocks");
    return;
  }
  // Which copy the engine makes of each matrix (runtime/engine/repack_weights.cpp): Rows16 where
  // the profile's CPU has a Rows16 tile for the format (AVX-512 VNNI: every Rows16 format; AVX2:
  // Q4_K, Q8_0, Q4_0 and Q4_1); below AVX-512 VNNI every other matrix as it is, into huge pages.
  const auto& isa = c.hw.cpu.isa;
  const auto has = [&](const char* f) { return std::find(isa.begin(), isa.end(), f) != isa.end(); };
  const bool vnni = has("avx512_vnni"), avx2 = has("avx2");
  uint64_t bytes = 0, rows16_bytes = 0, replaced = 0;
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const auto& t = c.m.spec.tensors[i];
    if (p.tensors[i].device != Device::Cpu || t.ne.size() < 2) continue;  // (vectors are not multiplied)
    const bool tile = cpu::rows16_tile_for(t.type, avx2, vnni);
    if (vnni && !tile) continue;
    if (t.role == TensorRole::TokenEmbd && !c.m.spec.tied_embeddings) continue;  // rows are looked up, not multiplied
    if (weight_kind(t) == WeightKind::Experts) {
      if (t.layer < 0 || size_t(t.layer) >= p.layers.size()) continue;
      const auto& lp = p.layers[size_t(t.layer)];
      // A hot set leaves the rest of the layer's experts to the CPU whatever share the statistics
      // give it (experts they never saw still come up); the engine copies the whole set.
      if (lp.experts_decode != ExpertExec::Cpu || (lp.gpu_experts.empty() && lp.gpu_hit >= 1.0)) continue;
      if (experts_read_only_by_cpu(lp)) replaced += t.bytes;
    }
    const int64_t k = t.ne.empty() ? 0 : t.ne[0], rows = t.ne.size() >= 2 ? t.ne[1] : 1;
    const bool exact = tile && k > 0 && k % int64_t(info(t.type).block_elems) == 0;
    const uint64_t b = exact ? uint64_t(cpu::rows16_group_bytes(t.type, k)) * uint64_t((rows + cpu::kRows16 - 1) / cpu::kRows16) *
                                   uint64_t(std::max(1, t.experts))
                             : t.bytes;
    bytes += b;
    if (exact) rows16_bytes += b;
  }
  const bool rows16 = rows16_bytes > 0;
  if (bytes == 0) return;
  const bool in_place = p.host.total() + bytes > p.host.capacity && replaced > 0;
  const uint64_t added = in_place ? bytes - std::min(bytes, replaced) : bytes;  // an expert's copy >= its blocks
  const std::string what = rows16 ? "Rows16 copy" : "huge-page copy";
  if (p.host.total() + added > p.host.capacity && c.in.repack != true) {
    p.notes.push_back("no room for the " + what + " of the CPU weights (" + format_bytes(bytes) +
                      "): the CPU reads the mapped GGUF blocks");
    return;
  }
  p.cpu_weight_layout = rows16 ? "rows16" : "gguf";
  p.repacked_bytes = bytes;
  p.cpu_copy_replaces_mapped_experts = in_place;
  p.host.weights += added;
  const std::string done = !rows16 ? "CPU weights copied into huge pages"
                           : vnni  ? "CPU weights repacked for AVX-512 (Rows16)"
                                   : "CPU weights repacked for AVX2 (Rows16: " + format_bytes(rows16_bytes) +
                                         "; the other formats copied as they are into huge pages)";
  p.notes.push_back(done +
                    " at load (+" + format_bytes(added) + " host memory" +
                    (in_place ? "; the copied experts' mapped pages, " + format_bytes(replaced) + ", let go)" : ")"));
}

void hybrid(Plan& p, const Ctx& c, ExpertExec ex) {
  place(p, c, Device::Gpu, false, true);
  for (auto& l : p.layers) {
    l.attn = l.ffn = Device::Gpu;
    l.experts_decode = l.experts_prefill = ex;
  }
  p.head = Device::Gpu;
}

// Which expert tensors of a layer (indices into p.tensors).
std::vector<size_t> expert_tensors(const Plan& p, const Ctx& c, int layer) {
  std::vector<size_t> v;
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const auto& t = c.m.spec.tensors[i];
    if (t.layer == layer && weight_kind(t) == WeightKind::Experts && t.experts > 1) v.push_back(i);
  }
  return v;
}

// Fills `spare` bytes of VRAM with the most used routed experts (by activation share; uniform
// routing without statistics), across all MoE layers.
void fill_hot(Plan& p, const Ctx& c, int64_t spare) {
  struct Cand { double share; int layer, expert, rank; };
  std::vector<Cand> cands;
  for (const auto& l : p.layers) {
    if (!l.moe || l.experts_decode != ExpertExec::Cpu) continue;
    const int E = c.d.layers[size_t(l.layer)].n_expert;
    std::vector<int> order(static_cast<size_t>(E));
    for (int e = 0; e < E; ++e) order[size_t(e)] = e;
    std::vector<double> sh(static_cast<size_t>(E), 1.0 / E);
    if (c.in.stats) order = c.in.stats->hottest(l.layer), sh = c.in.stats->shares(l.layer);
    for (int r = 0; r < E; ++r) {
      const int e = order[size_t(r)];
      cands.push_back({sh[size_t(e)], l.layer, e, r});
    }
  }
  // Highest share first; equal shares go round-robin over layers (rank, then layer).
  std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
    if (a.share != b.share) return a.share > b.share;
    if (a.rank != b.rank) return a.rank < b.rank;
    return a.layer < b.layer;
  });
  int taken = 0;
  for (const auto& k : cands) {
    const double be = c.d.layers[size_t(k.layer)].expert_bytes();
    if (double(spare) < be) break;  // every expert of a model has the same size
    spare -= int64_t(be);
    auto& lp = p.layers[size_t(k.layer)];
    lp.gpu_experts.push_back(k.expert);
    lp.gpu_hit += k.share;
    ++taken;
  }
  for (auto& lp : p.layers) {
    if (lp.gpu_experts.empty()) continue;
    std::sort(lp.gpu_experts.begin(), lp.gpu_experts.end());
    for (size_t i : expert_tensors(p, c, lp.layer)) p.tensors[i].gpu_experts = int(lp.gpu_experts.size());
  }
  p.notes.push_back(std::to_string(taken) + " hot experts in spare VRAM (" +
                    (c.in.stats ? std::string("from routing statistics") : std::string("uniform routing assumed; "
                                                                                       "pass --routing-stats")) + ")");
}

double max_expert_bytes(const Ctx& c) {
  double b = 0;
  for (const auto& l : c.d.layers) b = std::max(b, l.expert_bytes());
  return b;
}

void size_cache(Plan& p, const Ctx& c, int64_t spare) {
  const int n_moe = std::max(1, c.d.n_moe_layers);
  const double be = max_expert_bytes(c);
  const int k = c.m.spec.n_expert_used, E = c.m.spec.n_expert;
  const int slots = be > 0 ? int(std::min<double>(E, std::floor(double(std::max<int64_t>(0, spare)) / (be * n_moe)))) : 0;
  const int need = std::max(k, slots);
  for (auto& l : p.layers) {
    if (!l.moe || l.experts_decode != ExpertExec::Cache) continue;
    l.cache_slots = need;
    l.gpu_hit = c.in.stats ? c.in.stats->lru_hit_rate(l.layer, need) : double(need) / E;
  }
  if (slots < k)
    p.notes.push_back("cache: spare VRAM holds " + std::to_string(slots) + " experts per layer, the minimum is top-k = " +
                      std::to_string(k) + "; sized at the minimum");
  else
    p.notes.push_back("cache: " + std::to_string(slots) + " of " + std::to_string(E) +
                      " experts per layer in VRAM (LRU), hit rate " +
                      (c.in.stats ? "from routing statistics (Che's approximation)" : "slots/experts (uniform routing)"));
}

void size_stream(Plan& p, const Ctx& c, int64_t spare) {
  const double be = max_expert_bytes(c);
  const int k = c.m.spec.n_expert_used, E = c.m.spec.n_expert;
  const int chunk = be > 0 ? int(std::min<double>(E, std::floor(double(std::max<int64_t>(0, spare)) / (2 * be)))) : 0;
  // About an eighth of the experts per chunk: the engine copies chunk j+1 under chunk j's
  // compute, so only a layer's first chunk waits for PCIe; one chunk of all would wait for all.
  const int pipelined = std::max(k, E / 8);
  for (auto& l : p.layers)
    if (l.moe && (l.experts_prefill == ExpertExec::Stream || l.experts_decode == ExpertExec::Stream))
      l.stream_chunk = std::max(k, std::min(chunk, pipelined));
}

// `layers`: as many whole layers on the GPU as fit, from the first; the head too when all do.
void size_layers(Plan& p, const Ctx& c) {
  const int L = int(p.layers.size());
  auto set_n = [&](int n) {
    for (auto& t : p.tensors) t.device = Device::Cpu;
    for (int il = 0; il < n; ++il) place(p, c, Device::Gpu, true, true, il);
    if (n == L) place_head(p, c, Device::Gpu);
    apply_rules(p, c);
    finish(p, c);
  };
  int n = 0;
  for (; n <= L; ++n) {
    set_n(n);
    if (gpu_spare_bytes(p) < 0) break;
  }
  p.notes.clear();
  set_n(std::max(0, n - 1));
  p.gpu_layers = std::max(0, n - 1);
  p.notes.push_back(std::to_string(p.gpu_layers) + " of " + std::to_string(L) + " layers on the GPU");
}

}  // namespace

namespace {

Plan build(const Ctx& c, Strategy s) {
  Plan p = base_plan(c, s);
  if (needs_gpu(s) && !p.has_gpu) {
    p.fits = false;
    p.refusals.push_back(std::string("strategy '") + strategy_name(s) + "' needs a GPU and profile '" + c.hw.name +
                         "' has none");
    p.prefill.bottleneck = p.decode.bottleneck = "-";
    account_memory(p, c.m, c.d, c.hw);
    return p;
  }
  switch (s) {
    case Strategy::Cpu:
      apply_rules(p, c);
      finish(p, c);
      break;
    case Strategy::Gpu:
      place(p, c, Device::Gpu, true, true);
      place_head(p, c, Device::Gpu);
      for (auto& l : p.layers) l.experts_decode = l.experts_prefill = ExpertExec::Gpu;
      apply_rules(p, c);
      finish(p, c);
      break;
    case Strategy::Layers:
      size_layers(p, c);
      break;
    case Strategy::ExpertsCpu:
      hybrid(p, c, ExpertExec::Cpu);
      apply_rules(p, c);
      finish(p, c);
      break;
    case Strategy::ExpertsCpuHot:
      hybrid(p, c, ExpertExec::Cpu);
      apply_rules(p, c);
      finish(p, c);
      if (gpu_spare_bytes(p) > 0) {
        fill_hot(p, c, gpu_spare_bytes(p));
        finish(p, c);
      }
      break;
    case Strategy::Stream:
      hybrid(p, c, ExpertExec::Stream);
      apply_rules(p, c);
      finish(p, c);
      size_stream(p, c, gpu_spare_bytes(p));
      finish(p, c);
      break;
    case Strategy::Cache:
      hybrid(p, c, ExpertExec::Cache);
      apply_rules(p, c);
      finish(p, c);
      size_cache(p, c, gpu_spare_bytes(p));
      finish(p, c);
      break;
    case Strategy::Auto:
      break;
  }
  choose_cpu_weight_layout(p, c);
  check_fit(p);
  predict(p, c.m, c.d, c.cm);
  return p;
}

// The hybrid plan `auto` considers: experts on the CPU in decode; in prefill, each layer's
// experts streamed to the GPU where the cost model says that is faster (n tokens per expert
// above n*) and staging fits; the VRAM left after that filled with hot experts.
Plan auto_hybrid(const Ctx& c) {
  Plan p = base_plan(c, Strategy::ExpertsCpu);
  hybrid(p, c, ExpertExec::Cpu);
  apply_rules(p, c);
  finish(p, c);
  const double be = max_expert_bytes(c);
  const int k = c.m.spec.n_expert_used;
  const int chunk = be > 0 ? int(std::min<double>(c.m.spec.n_expert,
                                                  std::floor(double(std::max<int64_t>(0, gpu_spare_bytes(p))) / (2 * be))))
                           : 0;
  int streamed = 0;
  if (chunk >= k) {
    const auto& w = c.in.workload;
    const double u = double(std::max<int64_t>(1, std::min(w.ubatch, w.prompt)));
    for (auto& l : p.layers) {
      if (!l.moe || l.experts_prefill != ExpertExec::Cpu) continue;
      LayerPlan alt = l;
      alt.experts_prefill = ExpertExec::Stream;
      alt.stream_chunk = chunk;
      const auto& ld = c.d.layers[size_t(l.layer)];
      const double t_cpu = layer_cost(l, ld, c.m, c.cm, u, u / 2, 1, false, w.kv_elem_bytes).seconds();
      const double t_str = layer_cost(alt, ld, c.m, c.cm, u, u / 2, 1, false, w.kv_elem_bytes).seconds();
      if (t_str < t_cpu) {
        l = alt;
        ++streamed;
      }
    }
    if (streamed) finish(p, c);
  }
  if (gpu_spare_bytes(p) > 0) {
    fill_hot(p, c, gpu_spare_bytes(p));
    finish(p, c);
  }
  p.notes.push_back("prefill streams the experts of " + std::to_string(streamed) + " of " +
                    std::to_string(c.d.n_moe_layers) + " MoE layers to the GPU");
  choose_cpu_weight_layout(p, c);
  check_fit(p);
  predict(p, c.m, c.d, c.cm);
  return p;
}

Plan make_auto(const Ctx& c) {
  std::vector<Plan> cands;
  cands.push_back(build(c, Strategy::Cpu));
  if (!c.hw.gpus.empty()) {
    cands.push_back(build(c, Strategy::Gpu));
    cands.push_back(build(c, Strategy::Layers));
    cands.push_back(auto_hybrid(c));
  }
  // The fastest decode among the plans that fit; when none fits, the hybrid (or cpu) plan with
  // its refusals.
  const Plan* best = nullptr;
  for (const auto& p : cands)
    if (p.fits && (!best || p.decode.tokens_per_s > best->decode.tokens_per_s)) best = &p;
  Plan out = best ? *best : cands.back();
  const std::string chose = out.strategy == "experts-cpu" ? "experts-cpu (+hot, stream prefill)" : out.strategy;
  out.strategy = "auto";
  out.notes.insert(out.notes.begin(), "auto chose " + chose);
  return out;
}

}  // namespace

const char* strategy_name(Strategy s) {
  for (const auto& e : kStrategies)
    if (e.s == s) return e.name;
  return "?";
}

std::optional<Strategy> strategy_from_name(const std::string& name) {
  for (const auto& e : kStrategies)
    if (name == e.name) return e.s;
  return std::nullopt;
}

const std::vector<Strategy>& all_strategies() {
  static const std::vector<Strategy> v = {Strategy::Cpu, Strategy::Gpu, Strategy::Layers, Strategy::ExpertsCpu,
                                          Strategy::ExpertsCpuHot, Strategy::Stream, Strategy::Cache, Strategy::Auto};
  return v;
}

Plan make_plan(const PlanInputs& in, Strategy s) {
  if (!in.model || !in.hw) throw Error("make_plan: model and hardware profile are required");
  if (in.workload.context <= 0 || in.workload.batch <= 0 || in.workload.prompt <= 0 || in.workload.ubatch <= 0)
    throw Error("plan: context, batch, prompt and ubatch must be positive");
  Ctx c{in, *in.model, *in.hw, digest_model(*in.model), CostModel(*in.hw)};
  // Measured routing replaces the uniform assumption of how many experts a chunk reads.
  if (in.stats)
    for (auto& ld : c.d.layers)
      if (ld.moe && in.stats->has_layer(ld.layer) && in.stats->n_expert() == ld.n_expert) {
        ld.pick = in.stats->shares(ld.layer);
        for (double& p : ld.pick) p = std::min(1.0, ld.n_expert_used * p);
      }
  return s == Strategy::Auto ? make_auto(c) : build(c, s);
}

std::vector<Plan> compare_plans(const PlanInputs& in) {
  std::vector<Plan> v;
  for (Strategy s : all_strategies()) v.push_back(make_plan(in, s));
  return v;
}

}  // namespace hexe::place

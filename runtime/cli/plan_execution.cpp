// --plan / --strategy (see plan_execution.h).
#include "runtime/cli/plan_execution.h"

#include <cstdio>
#include <unordered_map>

#include "memory/error.h"
#include "placement/hardware_profile.h"
#include "placement/hw_detect.h"
#include "placement/model_shapes.h"
#include "placement/strategies.h"
#include "runtime/cli/options.h"

namespace hexe::cli {

void add_plan_choice_options(CLI::App& cmd, PlanChoice& c) {
  auto* plan = cmd.add_option("--plan", c.plan_file, "follow a placement plan written by `hexe plan -o FILE`")
                   ->check(CLI::ExistingFile);
  auto* strat = cmd.add_option("--strategy", c.strategy,
                               "placement strategy to plan and follow: cpu, gpu, layers, experts-cpu, "
                               "experts-cpu+hot, stream, cache, auto");
  plan->excludes(strat);
  cmd.add_option("--profile", c.profile,
                 "hardware profile for --strategy (NAME under profiles/hardware or a file from "
                 "`hexe profile detect`); default: this machine's topology without measurements")
      ->needs(strat);
  cmd.add_option("--routing-from", c.routing,
                 "routing statistics for --strategy (a file from `hexe run --routing-stats`): how many experts a "
                 "prefill chunk reads, which experts are hot")
      ->check(CLI::ExistingFile)
      ->needs(strat);
}

namespace {

// A saved plan must describe this model: same tensors, types and sizes.
void check_plan_matches(const place::Plan& plan, const place::ModelSpec& spec, const std::string& origin) {
  std::unordered_map<std::string, const place::TensorSpec*> by_name;
  for (const auto& t : spec.tensors) by_name.emplace(t.name, &t);
  if (plan.tensors.size() != spec.tensors.size())
    throw Error(origin + " places " + std::to_string(plan.tensors.size()) + " tensors; the model " + spec.source +
                " has " + std::to_string(spec.tensors.size()) + " (the plan was made for '" + plan.model + "')");
  for (const auto& t : plan.tensors) {
    auto it = by_name.find(t.name);
    if (it == by_name.end())
      throw Error(origin + " places tensor '" + t.name + "', which the model " + spec.source + " does not have");
    if (it->second->type != t.type || it->second->bytes != t.bytes)
      throw Error(origin + ": tensor '" + t.name + "' is " + std::string(dtype_name(t.type)) + ", " +
                  std::to_string(t.bytes) + " bytes in the plan but " + std::string(dtype_name(it->second->type)) +
                  ", " + std::to_string(it->second->bytes) + " bytes in " + spec.source);
  }
  if (plan.layers.size() != size_t(spec.n_layers))
    throw Error(origin + " has " + std::to_string(plan.layers.size()) + " layers; the model has " +
                std::to_string(spec.n_layers));
}

bool experts_on(const place::LayerPlan& l, place::ExpertExec e) {
  return l.experts_decode == e && l.experts_prefill == e && l.gpu_experts.empty();
}

// Strategy stream: prefill copies the used experts to the GPU; decode streams them too or runs
// them on the CPU.
bool streams(const place::LayerPlan& l) {
  return l.experts_prefill == place::ExpertExec::Stream &&
         (l.experts_decode == place::ExpertExec::Cpu || l.experts_decode == place::ExpertExec::Stream) &&
         l.gpu_experts.empty();
}

// experts-cpu+hot: the CPU computes the routed experts except a hot set held in VRAM.
bool hot_set(const place::LayerPlan& l) {
  return l.experts_decode == place::ExpertExec::Cpu && l.experts_prefill == place::ExpertExec::Cpu &&
         !l.gpu_experts.empty();
}

// cache: every routed expert runs on the GPU through an LRU cache of cache_slots experts.
bool cached(const place::LayerPlan& l) {
  return l.experts_decode == place::ExpertExec::Cache && l.experts_prefill == place::ExpertExec::Cache &&
         l.gpu_experts.empty() && l.cache_slots > 0;
}

// The engine runs GPU layers as a prefix [0, N) with each layer's attention and FFN on one device,
// its routed experts on the CPU or the GPU (resident, a hot set, an expert cache, or streamed for
// prefill), and the head on the GPU only when every layer is there. Throws, in the user's words,
// for a plan outside that.
void check_runnable(const place::Plan& plan, const std::string& origin) {
  if (place::plan_uses_gpu(plan)) {
    if (const std::string why = gpu_unavailable_reason(); !why.empty())
      throw Error(origin + " places work on the GPU, and there is none to use here: " + why +
                  "; use --strategy cpu");
    const int n_gpu = gpu_layer_count(plan);
    for (size_t i = 0; i < plan.layers.size(); ++i) {
      const auto& l = plan.layers[i];
      const bool gpu = int(i) < n_gpu;
      const std::string at = origin + ": layer " + std::to_string(i);
      if ((l.attn == place::Device::Gpu) != gpu || (l.ffn == place::Device::Gpu) != gpu)
        throw Error(at + " puts attention on the " + place::device_name(l.attn) + " and the FFN on the " +
                    place::device_name(l.ffn) + "; the engine runs GPU layers as the first N whole layers");
      if (!l.moe) continue;
      const bool cpu_experts = experts_on(l, place::ExpertExec::Cpu), gpu_experts = experts_on(l, place::ExpertExec::Gpu);
      if (!cpu_experts && !(gpu && (gpu_experts || streams(l) || hot_set(l) || cached(l))))
        throw Error(at + " runs its routed experts by '" + place::expert_exec_name(l.experts_prefill) + "' (prefill) / '" +
                    place::expert_exec_name(l.experts_decode) + "' (decode)" +
                    (l.gpu_experts.empty() ? "" : " with a hot set in VRAM") +
                    (l.experts_decode == place::ExpertExec::Cache && l.cache_slots <= 0 ? " and no cache slots" : "") +
                    "; the engine runs routed experts on the CPU, on the GPU in GPU layers (all of them, a hot set "
                    "beside the CPU, or through an expert cache), or streams them to the GPU for prefill");
    }
  }
  if (!plan.fits) {
    std::string why;
    for (const auto& r : plan.refusals) why += "\n  " + r;
    throw Error(origin + " does not fit:" + why);
  }
}

}  // namespace

std::optional<place::Plan> resolve_plan(const ModelOptions& o, const Model& model, int64_t prompt,
                                        const place::RoutingStats* measured) {
  const PlanChoice& c = o.plan;
  if (c.plan_file.empty() && c.strategy.empty()) return std::nullopt;
  const place::ModelSpec& spec = model.spec();
  if (!c.plan_file.empty()) {
    place::Plan plan = place::load_plan(c.plan_file);
    const std::string origin = "plan " + c.plan_file + " (strategy '" + plan.strategy + "')";
    check_plan_matches(plan, spec, origin);
    check_runnable(plan, origin);
    // The plan was sized for its profile's machine; the host memory here may be smaller.
    const uint64_t here = place::detect_topology().host_memory_bytes;
    if (here && plan.host.total() > here)
      throw Error(origin + " needs " + place::format_bytes(plan.host.total()) + " of host memory; this machine has " +
                  place::format_bytes(here));
    return plan;
  }
  auto s = place::strategy_from_name(c.strategy);
  if (!s)
    throw Error("--strategy '" + c.strategy +
                "' is not one of cpu, gpu, layers, experts-cpu, experts-cpu+hot, stream, cache, auto");
  const place::HardwareProfile hw = c.profile.empty() ? place::detect_topology() : place::resolve_profile(c.profile);
  const place::PlanModel pm = place::plan_model_from_spec(spec);
  place::PlanInputs in;
  in.model = &pm;
  in.hw = &hw;
  std::optional<place::RoutingStats> stats;
  if (measured) {
    in.stats = measured;
  } else if (!c.routing.empty()) {
    stats = place::RoutingStats::load(c.routing);
    if (stats->n_expert() != spec.n_expert)
      throw Error("--routing-from " + c.routing + " has " + std::to_string(stats->n_expert()) +
                  " experts per layer; the model has " + std::to_string(spec.n_expert));
    in.stats = &*stats;
  }
  in.workload.context = o.ctx;
  in.workload.prompt = std::max<int64_t>(1, prompt);
  in.workload.ubatch = o.batch;
  if (o.repack != "auto") in.repack = o.repack == "on";
  place::Plan plan = place::make_plan(in, *s);
  if (o.threads_given) plan.cpu_threads = o.threads;  // predictions keep the profile's cores
  check_runnable(plan, "--strategy " + plan.strategy + " on profile '" + hw.name + "'");
  if (c.profile.empty())
    plan.notes.push_back("no --profile: this machine's topology without measurements, so no speed "
                         "prediction; `hexe profile detect -o FILE` measures one for --profile FILE");
  return plan;
}

int gpu_layer_count(const place::Plan& plan) {
  int n = 0;
  while (n < int(plan.layers.size()) && plan.layers[n].attn == place::Device::Gpu) ++n;
  return n;
}

void apply_plan(const place::Plan& plan, const ModelOptions& o, EngineConfig& cfg) {
  const int n_gpu = gpu_layer_count(plan);
  if (n_gpu > 0) {
    cfg.offload.gpu_layers = n_gpu;
    cfg.offload.experts_on_gpu.assign(n_gpu, 0);
    cfg.offload.experts_stream.assign(n_gpu, 0);
    cfg.offload.hot_experts.assign(n_gpu, {});
    cfg.offload.cache_slots.assign(n_gpu, 0);
    for (int l = 0; l < n_gpu; ++l) {
      const auto& lp = plan.layers[l];
      cfg.offload.experts_on_gpu[l] = lp.moe && experts_on(lp, place::ExpertExec::Gpu);
      cfg.offload.experts_stream[l] = lp.moe && streams(lp);
      if (lp.moe && hot_set(lp)) cfg.offload.hot_experts[l] = lp.gpu_experts;
      if (lp.moe && cached(lp)) cfg.offload.cache_slots[l] = lp.cache_slots;
      if (cfg.offload.experts_stream[l] && lp.stream_chunk > 0) cfg.offload.stream_chunk = lp.stream_chunk;
      // Streamed decode: every pass copies its experts, single tokens included.
      if (cfg.offload.experts_stream[l] && lp.experts_decode == place::ExpertExec::Stream)
        cfg.offload.stream_min_tokens = 1;
    }
    cfg.offload.head_on_gpu = plan.head == place::Device::Gpu && n_gpu == int(plan.layers.size());
  }
  if (!o.threads_given) cfg.n_threads = plan.cpu_threads;
  if (!o.ctx_given) cfg.n_ctx = plan.workload.context * plan.workload.batch;
  if (!o.batch_given) cfg.n_batch = int(std::min<int64_t>(plan.workload.ubatch, 65536));
}

std::string plan_summary(const place::Plan& plan) {
  char buf[512];
  if (plan.decode.tokens_per_s <= 0 || plan.prefill.tokens_per_s <= 0) {
    std::snprintf(buf, sizeof buf, "plan '%s' for %s on %s: %d CPU threads, context %lld, chunk %lld; no prediction",
                  plan.strategy.c_str(), plan.model.c_str(), plan.profile.c_str(), plan.cpu_threads,
                  (long long)plan.workload.context, (long long)plan.workload.ubatch);
    std::string s = buf;
    for (const auto& n : plan.notes) s += "\n  note: " + n;
    return s;
  }
  std::snprintf(buf, sizeof buf,
                "plan '%s' for %s on %s: %d CPU threads, context %lld, chunk %lld; predicted prefill %.1f tok/s "
                "(%s, prompt %lld), decode %.2f tok/s (%s)",
                plan.strategy.c_str(), plan.model.c_str(), plan.profile.c_str(), plan.cpu_threads,
                (long long)plan.workload.context, (long long)plan.workload.ubatch, plan.prefill.tokens_per_s,
                plan.prefill.bottleneck.c_str(), (long long)plan.workload.prompt, plan.decode.tokens_per_s,
                plan.decode.bottleneck.c_str());
  std::string s = buf;
  for (const auto& n : plan.notes) s += "\n  note: " + n;
  return s;
}

}  // namespace hexe::cli

// Plan printing and JSON output.
#include "placement/plan.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"

namespace hexe::place {

using nlohmann::json;

const char* device_name(Device d) { return d == Device::Cpu ? "cpu" : "gpu"; }

const char* expert_exec_name(ExpertExec e) {
  switch (e) {
    case ExpertExec::Cpu: return "cpu";
    case ExpertExec::Gpu: return "gpu";
    case ExpertExec::Stream: return "stream";
    case ExpertExec::Cache: return "cache";
  }
  return "?";
}

std::string format_bytes(uint64_t b) {
  char buf[32];
  const double g = double(b) / (1024.0 * 1024.0 * 1024.0);
  if (g >= 1.0) std::snprintf(buf, sizeof buf, "%.1f GiB", g);
  else std::snprintf(buf, sizeof buf, "%.0f MiB", double(b) / (1024.0 * 1024.0));
  return buf;
}

namespace {
json mem_json(const MemoryUse& m) {
  return {{"weights", m.weights}, {"kv", m.kv}, {"activations", m.activations}, {"staging", m.staging},
          {"graphs", m.graphs}, {"reserved", m.reserved}, {"margin", m.margin},
          {"total", m.total()}, {"capacity", m.capacity}};
}
json phase_json(const PhasePrediction& p) {
  return {{"seconds", p.seconds}, {"tokens_per_s", p.tokens_per_s}, {"bottleneck", p.bottleneck}};
}
json plan_json(const Plan& p, bool with_tensors) {
  json layers = json::array();
  for (const auto& l : p.layers) {
    // The layer's KV cache lives where its attention runs.
    json jl = {{"layer", l.layer}, {"attn", device_name(l.attn)}, {"kv", device_name(l.attn)},
               {"ffn", device_name(l.ffn)}, {"moe", l.moe}};
    if (l.moe) {
      jl["experts_decode"] = expert_exec_name(l.experts_decode);
      jl["experts_prefill"] = expert_exec_name(l.experts_prefill);
      if (!l.gpu_experts.empty()) jl["gpu_experts"] = l.gpu_experts;
      if (l.cache_slots) jl["cache_slots"] = l.cache_slots;
      if (l.stream_chunk) jl["stream_chunk"] = l.stream_chunk;
      jl["gpu_hit"] = l.gpu_hit;
    }
    layers.push_back(jl);
  }
  json j = {{"strategy", p.strategy}, {"model", p.model}, {"quant", p.quant}, {"profile", p.profile},
            {"workload", {{"context", p.workload.context}, {"batch", p.workload.batch},
                          {"prompt", p.workload.prompt}, {"ubatch", p.workload.ubatch},
                          {"kv_elem_bytes", p.workload.kv_elem_bytes}}},
            {"fits", p.fits}, {"refusals", p.refusals}, {"notes", p.notes},
            {"head", device_name(p.head)}, {"gpu_layers", p.gpu_layers}, {"cpu_threads", p.cpu_threads},
            {"cpu_weight_layout", p.cpu_weight_layout}, {"repacked_bytes", p.repacked_bytes},
            {"cpu_copy_replaces_mapped_experts", p.cpu_copy_replaces_mapped_experts},
            {"memory", {{"gpu", mem_json(p.gpu)}, {"host", mem_json(p.host)}}},
            {"prediction", {{"prefill", phase_json(p.prefill)}, {"decode", phase_json(p.decode)},
                            {"ttft_s", p.ttft_s}}},
            {"layers", layers}};
  if (with_tensors) {
    json ts = json::array();
    for (const auto& t : p.tensors) {
      json jt = {{"name", t.name}, {"device", device_name(t.device)}, {"type", std::string(dtype_name(t.type))},
                 {"bytes", t.bytes}};
      if (t.gpu_experts) jt["gpu_experts"] = t.gpu_experts;
      if (!t.rule.empty()) jt["rule"] = t.rule;
      ts.push_back(jt);
    }
    j["tensors"] = ts;
  }
  return j;
}
}  // namespace

void to_json(json& j, const Plan& p) { j = plan_json(p, true); }

std::string plan_to_json_string(const Plan& p, bool with_tensors) { return plan_json(p, with_tensors).dump(2); }

void save_plan(const Plan& p, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw Error("cannot write plan " + path);
  out << plan_to_json_string(p, true) << "\n";
}

std::string describe_plan(const Plan& p) {
  std::string s;
  char buf[512];
  std::snprintf(buf, sizeof buf, "plan '%s' for %s (%s) on %s: context %lld, batch %lld, prompt %lld\n",
                p.strategy.c_str(), p.model.c_str(), p.quant.c_str(), p.profile.c_str(),
                (long long)p.workload.context, (long long)p.workload.batch, (long long)p.workload.prompt);
  s += buf;
  auto mem = [&](const char* dev, const MemoryUse& m) {
    std::snprintf(buf, sizeof buf,
                  "  %-4s memory %s of %s: weights %s, KV %s, activations %s, staging %s, graphs %s, "
                  "reserved %s, margin %s\n",
                  dev, format_bytes(m.total()).c_str(), format_bytes(m.capacity).c_str(),
                  format_bytes(m.weights).c_str(), format_bytes(m.kv).c_str(), format_bytes(m.activations).c_str(),
                  format_bytes(m.staging).c_str(), format_bytes(m.graphs).c_str(), format_bytes(m.reserved).c_str(),
                  format_bytes(m.margin).c_str());
    s += buf;
  };
  if (p.has_gpu) mem("gpu", p.gpu);
  mem("host", p.host);
  int attn_gpu = 0, exp_cpu = 0, exp_gpu = 0, exp_stream = 0, exp_cache = 0, moe = 0;
  for (const auto& l : p.layers) {
    attn_gpu += l.attn == Device::Gpu;
    if (!l.moe) continue;
    ++moe;
    switch (l.experts_decode) {
      case ExpertExec::Cpu: ++exp_cpu; break;
      case ExpertExec::Gpu: ++exp_gpu; break;
      case ExpertExec::Stream: ++exp_stream; break;
      case ExpertExec::Cache: ++exp_cache; break;
    }
  }
  std::snprintf(buf, sizeof buf,
                "  layers: %zu (attention on GPU: %d); MoE layers %d, routed experts in decode: cpu %d, gpu %d, "
                "stream %d, cache %d; head on %s; %d CPU threads; CPU experts read as %s\n",
                p.layers.size(), attn_gpu, moe, exp_cpu, exp_gpu, exp_stream, exp_cache, device_name(p.head),
                p.cpu_threads, p.cpu_weight_layout.c_str());
  s += buf;
  std::snprintf(buf, sizeof buf, "  prefill %.1f tok/s (%s), decode %.2f tok/s (%s), time to first token %.2f s\n",
                p.prefill.tokens_per_s, p.prefill.bottleneck.c_str(), p.decode.tokens_per_s,
                p.decode.bottleneck.c_str(), p.ttft_s);
  s += buf;
  for (const auto& r : p.refusals) s += "  does not fit: " + r + "\n";
  for (const auto& n : p.notes) s += "  note: " + n + "\n";
  return s;
}

}  // namespace hexe::place

// Reading a saved plan back (`hexe run/bench --plan FILE`): the inverse of plan.cpp's JSON, with
// every field checked so a hand-edited or foreign file fails with the field's name.
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "placement/plan.h"

namespace hexe::place {

using nlohmann::json;

namespace {

const json& field(const json& j, const char* key) {
  if (!j.is_object()) throw Error(std::string("expected an object holding '") + key + "'");
  auto it = j.find(key);
  if (it == j.end()) throw Error(std::string("missing field '") + key + "'");
  return *it;
}

template <class T>
T get(const json& j, const char* key) {
  const json& v = field(j, key);
  try {
    return v.get<T>();
  } catch (const json::exception&) {
    throw Error(std::string("field '") + key + "' has the wrong type: " + v.dump());
  }
}

template <class T>
T get_or(const json& j, const char* key, T fallback) {
  return j.is_object() && j.contains(key) ? get<T>(j, key) : fallback;
}

Device device_from(const json& j, const char* key) {
  const std::string s = get<std::string>(j, key);
  if (s == "cpu") return Device::Cpu;
  if (s == "gpu") return Device::Gpu;
  throw Error(std::string("field '") + key + "' is '" + s + "', expected cpu or gpu");
}

ExpertExec exec_from(const json& j, const char* key) {
  const std::string s = get<std::string>(j, key);
  for (ExpertExec e : {ExpertExec::Cpu, ExpertExec::Gpu, ExpertExec::Stream, ExpertExec::Cache})
    if (s == expert_exec_name(e)) return e;
  throw Error(std::string("field '") + key + "' is '" + s + "', expected cpu, gpu, stream or cache");
}

MemoryUse memory_from(const json& j) {
  MemoryUse m;
  m.weights = get<uint64_t>(j, "weights");
  m.kv = get<uint64_t>(j, "kv");
  m.activations = get<uint64_t>(j, "activations");
  m.staging = get<uint64_t>(j, "staging");
  m.graphs = get<uint64_t>(j, "graphs");
  m.reserved = get<uint64_t>(j, "reserved");
  m.margin = get<uint64_t>(j, "margin");
  m.capacity = get<uint64_t>(j, "capacity");
  return m;
}

PhasePrediction phase_from(const json& j) {
  return {get<double>(j, "seconds"), get<double>(j, "tokens_per_s"), get<std::string>(j, "bottleneck")};
}

}  // namespace

Plan plan_from_json(const json& j) {
  Plan p;
  p.strategy = get<std::string>(j, "strategy");
  p.model = get<std::string>(j, "model");
  p.quant = get<std::string>(j, "quant");
  p.profile = get<std::string>(j, "profile");
  const json& w = field(j, "workload");
  p.workload.context = get<int64_t>(w, "context");
  p.workload.batch = get<int64_t>(w, "batch");
  p.workload.prompt = get<int64_t>(w, "prompt");
  p.workload.ubatch = get<int64_t>(w, "ubatch");
  p.workload.kv_elem_bytes = get<int>(w, "kv_elem_bytes");
  if (p.workload.context < 1 || p.workload.batch < 1 || p.workload.ubatch < 1 || p.workload.prompt < 0)
    throw Error("workload: context, batch and ubatch must be >= 1 and prompt >= 0");
  p.fits = get<bool>(j, "fits");
  p.refusals = get<std::vector<std::string>>(j, "refusals");
  p.notes = get_or<std::vector<std::string>>(j, "notes", {});
  p.head = device_from(j, "head");
  p.gpu_layers = get<int>(j, "gpu_layers");
  p.cpu_threads = get<int>(j, "cpu_threads");
  if (p.cpu_threads < 1) throw Error("cpu_threads is " + std::to_string(p.cpu_threads) + ", expected >= 1");
  p.cpu_weight_layout = get_or<std::string>(j, "cpu_weight_layout", "gguf");
  if (p.cpu_weight_layout != "gguf" && p.cpu_weight_layout != "rows16")
    throw Error("field 'cpu_weight_layout' is '" + p.cpu_weight_layout + "', expected gguf or rows16");
  p.repacked_bytes = get_or<uint64_t>(j, "repacked_bytes", 0);
  p.cpu_copy_replaces_mapped_experts = get_or<bool>(j, "cpu_copy_replaces_mapped_experts", false);
  const json& mem = field(j, "memory");
  p.gpu = memory_from(field(mem, "gpu"));
  p.host = memory_from(field(mem, "host"));
  const json& pred = field(j, "prediction");
  p.prefill = phase_from(field(pred, "prefill"));
  p.decode = phase_from(field(pred, "decode"));
  p.ttft_s = get<double>(pred, "ttft_s");
  const json& layers = field(j, "layers");
  if (!layers.is_array()) throw Error("field 'layers' is not an array");
  for (const json& jl : layers) {
    LayerPlan l;
    l.layer = get<int>(jl, "layer");
    if (l.layer != int(p.layers.size()))
      throw Error("layers[" + std::to_string(p.layers.size()) + "] has layer " + std::to_string(l.layer));
    l.attn = device_from(jl, "attn");
    l.ffn = device_from(jl, "ffn");
    l.moe = get<bool>(jl, "moe");
    if (l.moe) {
      l.experts_decode = exec_from(jl, "experts_decode");
      l.experts_prefill = exec_from(jl, "experts_prefill");
      l.gpu_experts = get_or<std::vector<int>>(jl, "gpu_experts", {});
      l.cache_slots = get_or<int>(jl, "cache_slots", 0);
      l.stream_chunk = get_or<int>(jl, "stream_chunk", 0);
      l.gpu_hit = get_or<double>(jl, "gpu_hit", 0.0);
    }
    p.layers.push_back(std::move(l));
  }
  const json& tensors = field(j, "tensors");
  if (!tensors.is_array()) throw Error("field 'tensors' is not an array");
  for (const json& jt : tensors) {
    TensorPlacement t;
    t.name = get<std::string>(jt, "name");
    t.device = device_from(jt, "device");
    const std::string type = get<std::string>(jt, "type");
    auto dt = dtype_from_name(type);
    if (!dt) throw Error("tensor '" + t.name + "' has type '" + type + "', not a GGML type name");
    t.type = *dt;
    t.bytes = get<uint64_t>(jt, "bytes");
    t.gpu_experts = get_or<int>(jt, "gpu_experts", 0);
    t.rule = get_or<std::string>(jt, "rule", "");
    p.tensors.push_back(std::move(t));
  }
  p.has_gpu = p.gpu.capacity > 0 || plan_uses_gpu(p);
  return p;
}

Plan load_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open plan " + path);
  try {
    return plan_from_json(json::parse(in));
  } catch (const json::exception& e) {
    throw Error("plan " + path + ": not valid JSON: " + e.what());
  } catch (const Error& e) {
    throw Error("plan " + path + ": " + e.what());
  }
}

bool plan_uses_gpu(const Plan& p) {
  if (p.head == Device::Gpu || p.gpu_layers > 0) return true;
  for (const auto& l : p.layers) {
    if (l.attn == Device::Gpu || l.ffn == Device::Gpu) return true;
    if (l.moe && (l.experts_decode != ExpertExec::Cpu || l.experts_prefill != ExpertExec::Cpu)) return true;
    if (!l.gpu_experts.empty() || l.cache_slots > 0) return true;
  }
  for (const auto& t : p.tensors)
    if (t.device == Device::Gpu || t.gpu_experts > 0) return true;
  return false;
}

}  // namespace hexe::place

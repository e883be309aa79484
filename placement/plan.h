// A Plan: where every tensor lives and in what format, where every op runs, the KV cache,
// staging buffers, thread counts, per-device memory and the predicted speed. Printable and
// saveable as JSON; `hexe run/bench --plan FILE` follows one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "cpu_kernels/format.h"

namespace hexe::place {

enum class Device { Cpu, Gpu };
// Where a layer's routed experts run: on the CPU from host memory, on the GPU from VRAM,
// uploaded to the GPU per layer (double-buffered), or through a GPU expert cache (LRU).
enum class ExpertExec { Cpu, Gpu, Stream, Cache };

const char* device_name(Device d);
const char* expert_exec_name(ExpertExec e);

struct TensorPlacement {
  std::string name;
  Device device = Device::Cpu;
  DType type = DType::F32;
  uint64_t bytes = 0;
  int gpu_experts = 0;   // stacked expert tensors: experts also resident on the GPU (+hot)
  std::string rule;      // the user rule that placed it, empty when the strategy did
};

struct LayerPlan {
  int layer = 0;
  Device attn = Device::Gpu;       // norms, attention, and where this layer's KV cache lives
  Device ffn = Device::Gpu;        // router, shared experts, dense FFN
  bool moe = false;
  ExpertExec experts_decode = ExpertExec::Cpu;
  ExpertExec experts_prefill = ExpertExec::Cpu;
  std::vector<int> gpu_experts;    // +hot: expert ids resident in VRAM
  int cache_slots = 0;             // cache: experts the GPU cache holds for this layer
  int stream_chunk = 0;            // stream: experts per staging buffer (two buffers)
  double gpu_hit = 0;              // share of activations served from VRAM (hot set or cache)
};

// Whether a layer's routed experts are read from host memory only by the CPU (no stream, cache or
// hot set uploads them to the GPU): with the CPU's AVX-512 copy made, their mapped blocks are then
// never read again, and the copy can take their place in memory (Plan::
// cpu_copy_replaces_mapped_experts).
inline bool experts_read_only_by_cpu(const LayerPlan& l) {
  return l.experts_decode == ExpertExec::Cpu && l.experts_prefill == ExpertExec::Cpu && l.gpu_experts.empty() &&
         l.cache_slots == 0;
}

// Bytes one device needs, by purpose. `capacity` is what the device offers.
struct MemoryUse {
  uint64_t weights = 0, kv = 0, activations = 0, staging = 0, graphs = 0, reserved = 0, margin = 0;
  uint64_t capacity = 0;
  uint64_t total() const { return weights + kv + activations + staging + graphs + reserved + margin; }
};

struct PhasePrediction {
  double seconds = 0;          // for the whole phase (prefill: the prompt; decode: one step)
  double tokens_per_s = 0;
  std::string bottleneck;      // "DRAM", "PCIe", "GPU memory", "GPU compute", "CPU compute", "latency"
};

struct Workload {
  int64_t context = 4096;  // KV cache sized for this many tokens per sequence
  int64_t batch = 1;       // sequences decoded together
  int64_t prompt = 512;    // prompt tokens prefilled (time to first token)
  int64_t ubatch = 512;    // prefill chunk
  int kv_elem_bytes = 2;   // the GPU layers' F16 cache
};

// Bytes per cached value of the CPU layers: memory/kv_cache.h keeps f32 rows (the GPU's cache is
// F16, Workload::kv_elem_bytes).
inline constexpr int kCpuKvElemBytes = 4;

struct Plan {
  std::string strategy, model, quant, profile;
  Workload workload;
  std::vector<TensorPlacement> tensors;
  std::vector<LayerPlan> layers;
  Device head = Device::Gpu;       // output norm + output matmul
  int gpu_layers = 0;              // `layers`: whole layers on the GPU
  int cpu_threads = 1;
  bool has_gpu = false;
  // Layout the CPU kernels read weights in: "gguf" (the mapped file, or with repacked_bytes > 0 a
  // byte-identical copy in huge pages, made without VNNI) or "rows16" (a copy of the CPU-placed
  // quantised matrices (q8_0, q4_0/q4_1/q5_0/q5_1, q4_K, q5_K, q6_K) repacked at load for AVX-512
  // VNNI). repacked_bytes: the copy's size, counted in host.weights.
  std::string cpu_weight_layout = "gguf";
  uint64_t repacked_bytes = 0;
  // The copy did not fit beside the mapped file: the engine lets the pages of the routed experts
  // it copied go (layers where experts_read_only_by_cpu), and host.weights counts the copy in their
  // place. False: the copy sits beside the file, whose pages stay cached for the next start.
  bool cpu_copy_replaces_mapped_experts = false;
  MemoryUse gpu, host;
  PhasePrediction prefill, decode;
  double ttft_s = 0;
  bool fits = true;
  std::vector<std::string> refusals;  // why it does not fit: what is missing and by how much
  std::vector<std::string> notes;
};

void to_json(nlohmann::json& j, const Plan& p);
std::string plan_to_json_string(const Plan& p, bool with_tensors = true);
void save_plan(const Plan& p, const std::string& path);
// Reads a plan written by save_plan (`hexe plan -o FILE`); throws hexe::Error naming the file and
// the field on bad input.
Plan load_plan(const std::string& path);
Plan plan_from_json(const nlohmann::json& j);
// True when any tensor, layer part, expert execution or the head is placed on the GPU.
bool plan_uses_gpu(const Plan& p);
// Human-readable multi-line description (devices, memory, predictions, refusals).
std::string describe_plan(const Plan& p);
// "12.3 GiB"
std::string format_bytes(uint64_t b);

}  // namespace hexe::place

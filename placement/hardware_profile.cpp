// JSON (de)serialisation of hardware profiles, and loading them by name or path.
#include "placement/hardware_profile.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "placement/data_paths.h"

namespace hexe::place {

using nlohmann::json;

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// Byte sizes are written as GiB (readable, and what spec sheets use); read back exactly enough.
double to_gib(uint64_t b) { return double(b) / kGiB; }
uint64_t from_gib(double g) { return uint64_t(g * kGiB + 0.5); }
uint64_t gib_field(const json& j, const char* key) { return j.contains(key) ? from_gib(j.at(key).get<double>()) : 0; }
}  // namespace

void to_json(json& j, const CacheLevel& v) {
  j = json{{"level", v.level}, {"kib", v.bytes / 1024}, {"instances", v.instances}};
}
void from_json(const json& j, CacheLevel& v) {
  v.level = j.at("level").get<int>();
  v.bytes = j.at("kib").get<uint64_t>() * 1024;
  v.instances = j.value("instances", 1);
}

void to_json(json& j, const NumaNode& v) {
  j = json{{"id", v.id}, {"socket", v.socket}, {"cores", v.cores},
           {"memory_gib", to_gib(v.memory_bytes)}, {"read_gbps", v.read_gbps}};
}
void from_json(const json& j, NumaNode& v) {
  v.id = j.at("id").get<int>();
  v.socket = j.value("socket", 0);
  v.cores = j.at("cores").get<int>();
  v.memory_bytes = gib_field(j, "memory_gib");
  v.read_gbps = j.value("read_gbps", 0.0);
}

void to_json(json& j, const CpuProfile& v) {
  j = json{{"model", v.model}, {"sockets", v.sockets}, {"cores", v.cores}, {"threads", v.threads},
           {"ghz", v.ghz}, {"numa", v.numa}, {"caches", v.caches}, {"isa", v.isa},
           {"dram_read_gbps", v.dram_read_gbps}, {"peak_gops_int8", v.peak_gops_int8},
           {"peak_gflops_bf16", v.peak_gflops_bf16}, {"peak_gflops_fp32", v.peak_gflops_fp32}};
  if (!v.matmul_gops.empty()) j["matmul_gops"] = v.matmul_gops;
  if (!v.moe_prefill_gops.empty()) j["moe_prefill_gops"] = v.moe_prefill_gops;
  if (!v.moe_prefill_gops_8.empty()) j["moe_prefill_gops_8"] = v.moe_prefill_gops_8;
  if (!v.moe_prefill_gops_128.empty()) j["moe_prefill_gops_128"] = v.moe_prefill_gops_128;
  if (v.attention_gflops > 0) j["attention_gflops"] = v.attention_gflops;
}
void from_json(const json& j, CpuProfile& v) {
  v.model = j.value("model", std::string());
  v.sockets = j.value("sockets", 1);
  v.cores = j.at("cores").get<int>();
  v.threads = j.value("threads", v.cores);
  v.ghz = j.value("ghz", 0.0);
  v.numa = j.value("numa", std::vector<NumaNode>{});
  v.caches = j.value("caches", std::vector<CacheLevel>{});
  v.isa = j.value("isa", std::vector<std::string>{});
  v.dram_read_gbps = j.at("dram_read_gbps").get<double>();
  v.peak_gops_int8 = j.at("peak_gops_int8").get<double>();
  v.peak_gflops_bf16 = j.at("peak_gflops_bf16").get<double>();
  v.peak_gflops_fp32 = j.at("peak_gflops_fp32").get<double>();
  v.matmul_gops = j.value("matmul_gops", std::map<std::string, double>{});
  v.moe_prefill_gops = j.value("moe_prefill_gops", std::map<std::string, double>{});
  v.moe_prefill_gops_8 = j.value("moe_prefill_gops_8", std::map<std::string, double>{});
  v.moe_prefill_gops_128 = j.value("moe_prefill_gops_128", std::map<std::string, double>{});
  v.attention_gflops = j.value("attention_gflops", 0.0);
  if (v.attention_gflops < 0) throw Error("cpu.attention_gflops must be >= 0");
  for (const auto* m : {&v.matmul_gops, &v.moe_prefill_gops, &v.moe_prefill_gops_8, &v.moe_prefill_gops_128})
    for (const auto& [type, rate] : *m)
      if (!(rate > 0)) throw Error("cpu rate for " + type + " must be > 0, got " + std::to_string(rate));
}

void to_json(json& j, const GpuProfile& v) {
  j = json{{"name", v.name}, {"memory_gib", to_gib(v.memory_bytes)}, {"sms", v.sms},
           {"mem_gbps", v.mem_gbps}, {"peak_tflops_fp16", v.peak_tflops_fp16},
           {"peak_tops_int8", v.peak_tops_int8}, {"pcie_h2d_gbps", v.pcie_h2d_gbps},
           {"pcie_d2h_gbps", v.pcie_d2h_gbps}, {"reserved_gib", to_gib(v.reserved_bytes)}};
  if (v.gemv_gbps > 0) j["gemv_gbps"] = v.gemv_gbps;
  if (v.gemv_floor_us > 0) j["gemv_floor_us"] = v.gemv_floor_us;
  if (v.attention_tflops > 0) j["attention_tflops"] = v.attention_tflops;
  if (v.expert_prefill_us > 0) j["expert_prefill_us"] = v.expert_prefill_us;
  if (v.graph_kernel_us > 0) j["graph_kernel_us"] = v.graph_kernel_us;
  if (v.launch_us > 0) j["launch_us"] = v.launch_us;
  if (v.handoff_us > 0) j["handoff_us"] = v.handoff_us;
  if (v.flag_handoff_us > 0) j["flag_handoff_us"] = v.flag_handoff_us;
}
void from_json(const json& j, GpuProfile& v) {
  v.name = j.value("name", std::string());
  v.memory_bytes = from_gib(j.at("memory_gib").get<double>());
  v.sms = j.value("sms", 0);
  v.mem_gbps = j.at("mem_gbps").get<double>();
  v.peak_tflops_fp16 = j.at("peak_tflops_fp16").get<double>();
  v.peak_tops_int8 = j.value("peak_tops_int8", 2 * v.peak_tflops_fp16);
  v.pcie_h2d_gbps = j.at("pcie_h2d_gbps").get<double>();
  v.pcie_d2h_gbps = j.value("pcie_d2h_gbps", v.pcie_h2d_gbps);
  v.reserved_bytes = gib_field(j, "reserved_gib");
  v.gemv_gbps = j.value("gemv_gbps", 0.0);
  v.gemv_floor_us = j.value("gemv_floor_us", 0.0);
  v.attention_tflops = j.value("attention_tflops", 0.0);
  v.expert_prefill_us = j.value("expert_prefill_us", 0.0);
  v.graph_kernel_us = j.value("graph_kernel_us", 0.0);
  v.launch_us = j.value("launch_us", 0.0);
  v.handoff_us = j.value("handoff_us", 0.0);
  v.flag_handoff_us = j.value("flag_handoff_us", 0.0);
  for (double f : {v.gemv_gbps, v.gemv_floor_us, v.attention_tflops, v.expert_prefill_us, v.graph_kernel_us,
                   v.launch_us, v.handoff_us, v.flag_handoff_us})
    if (!(f >= 0)) throw Error("gpu measurements (gemv_gbps, *_us) must be >= 0, got " + std::to_string(f));
}

void to_json(json& j, const Efficiency& v) {
  j = json{{"cpu_dram", v.cpu_dram}, {"cpu_int8", v.cpu_int8}, {"cpu_float", v.cpu_float},
           {"gpu_mem", v.gpu_mem}, {"gpu_compute", v.gpu_compute}, {"pcie", v.pcie},
           {"gpu_launch_us", v.gpu_launch_us}, {"gpu_graph_launch_us", v.gpu_graph_launch_us},
           {"handoff_us", v.handoff_us}, {"flag_handoff_us", v.flag_handoff_us}, {"pcie_setup_us", v.pcie_setup_us},
           {"cpu_op_us", v.cpu_op_us}, {"gpu_kernels_per_layer", v.gpu_kernels_per_layer},
           {"gpu_gemv", v.gpu_gemv}, {"gpu_kernel_us", v.gpu_kernel_us},
           {"gpu_expert_prefill_us", v.gpu_expert_prefill_us}, {"gpu_gemv_floor_us", v.gpu_gemv_floor_us}};
  if (!v.cpu_dram_by_type.empty()) j["cpu_dram_by_type"] = v.cpu_dram_by_type;
  if (!v.cpu_moe_decode_by_type.empty()) j["cpu_moe_decode_by_type"] = v.cpu_moe_decode_by_type;
}
void from_json(const json& j, Efficiency& v) {
  Efficiency d;  // any field left out keeps hexe's default
  v.cpu_dram = j.value("cpu_dram", d.cpu_dram);
  v.cpu_int8 = j.value("cpu_int8", d.cpu_int8);
  v.cpu_float = j.value("cpu_float", d.cpu_float);
  v.gpu_mem = j.value("gpu_mem", d.gpu_mem);
  v.gpu_compute = j.value("gpu_compute", d.gpu_compute);
  v.pcie = j.value("pcie", d.pcie);
  v.gpu_launch_us = j.value("gpu_launch_us", d.gpu_launch_us);
  v.gpu_graph_launch_us = j.value("gpu_graph_launch_us", d.gpu_graph_launch_us);
  v.handoff_us = j.value("handoff_us", d.handoff_us);
  v.flag_handoff_us = j.value("flag_handoff_us", d.flag_handoff_us);
  v.pcie_setup_us = j.value("pcie_setup_us", d.pcie_setup_us);
  v.cpu_op_us = j.value("cpu_op_us", d.cpu_op_us);
  v.gpu_kernels_per_layer = j.value("gpu_kernels_per_layer", d.gpu_kernels_per_layer);
  v.gpu_gemv = j.value("gpu_gemv", d.gpu_gemv);
  v.gpu_kernel_us = j.value("gpu_kernel_us", d.gpu_kernel_us);
  v.gpu_expert_prefill_us = j.value("gpu_expert_prefill_us", d.gpu_expert_prefill_us);
  v.gpu_gemv_floor_us = j.value("gpu_gemv_floor_us", d.gpu_gemv_floor_us);
  if (!(v.gpu_gemv_floor_us >= 0))
    throw Error("efficiency.gpu_gemv_floor_us must be >= 0, got " + std::to_string(v.gpu_gemv_floor_us));
  v.cpu_dram_by_type = j.value("cpu_dram_by_type", std::map<std::string, double>{});
  v.cpu_moe_decode_by_type = j.value("cpu_moe_decode_by_type", std::map<std::string, double>{});
  for (const auto& [type, f] : v.cpu_moe_decode_by_type)
    if (!(f > 0 && f <= 1))
      throw Error("efficiency.cpu_moe_decode_by_type." + type + " must lie in (0, 1], got " + std::to_string(f));
  for (double f : {v.cpu_dram, v.cpu_int8, v.cpu_float, v.gpu_mem, v.gpu_compute, v.pcie, v.gpu_gemv}) {
    if (!(f > 0 && f <= 1)) throw Error("efficiency fractions must lie in (0, 1], got " + std::to_string(f));
  }
  for (const auto& [type, f] : v.cpu_dram_by_type)
    if (!(f > 0 && f <= 1))
      throw Error("efficiency.cpu_dram_by_type." + type + " must lie in (0, 1], got " + std::to_string(f));
}

void to_json(json& j, const HardwareProfile& v) {
  j = json{{"name", v.name}, {"sources", v.sources}, {"notes", v.notes},
           {"host_memory_gib", to_gib(v.host_memory_bytes)}, {"cpu", v.cpu}, {"gpus", v.gpus},
           {"efficiency", v.efficiency}, {"measured", v.measured}};
}
void from_json(const json& j, HardwareProfile& v) {
  v.name = j.at("name").get<std::string>();
  v.sources = j.value("sources", std::vector<std::string>{});
  v.notes = j.value("notes", std::string());
  v.host_memory_bytes = from_gib(j.at("host_memory_gib").get<double>());
  v.cpu = j.at("cpu").get<CpuProfile>();
  v.gpus = j.value("gpus", std::vector<GpuProfile>{});
  v.efficiency = j.contains("efficiency") ? j.at("efficiency").get<Efficiency>() : Efficiency{};
  v.measured = j.value("measured", false);
}

HardwareProfile load_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open hardware profile " + path);
  try {
    return json::parse(in).get<HardwareProfile>();
  } catch (const json::exception& e) {
    throw Error("hardware profile " + path + ": " + e.what());
  } catch (const Error& e) {
    throw Error("hardware profile " + path + ": " + e.what());
  }
}

void save_profile(const HardwareProfile& p, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw Error("cannot write hardware profile " + path);
  out << json(p).dump(2) << "\n";
  if (!out) throw Error("error writing hardware profile " + path);
}

HardwareProfile resolve_profile(const std::string& name_or_path) {
  return load_profile(resolve_data_file(name_or_path, "profiles/hardware"));
}

}  // namespace hexe::place

// A machine as the planner sees it: CPU topology, memory and compute rates, GPUs, PCIe, and the
// efficiencies a runtime achieves against those peaks. Read/written as JSON (profiles/hardware/).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace hexe::place {

struct CacheLevel {
  int level = 0;          // 1, 2, 3
  uint64_t bytes = 0;     // size of one instance
  int instances = 0;      // how many of them in the machine
};

struct NumaNode {
  int id = 0;
  int socket = 0;
  int cores = 0;              // physical cores with this node's memory local
  uint64_t memory_bytes = 0;
  double read_gbps = 0;       // DRAM read bandwidth of this node, GB/s (10^9 B/s)
};

// Peak rates of the whole CPU (all sockets), in 10^9 operations per second; one multiply-add
// counts as two operations. "int8" is the rate of the int8 dot-product path (VNNI/AVX2) that
// quantised weights use; "bf16" and "fp32" those of the float paths.
struct CpuProfile {
  std::string model;
  int sockets = 1;
  int cores = 0;                 // physical cores, all sockets
  int threads = 0;               // hardware threads
  double ghz = 0;                // sustained all-core clock the peaks assume (informational)
  std::vector<NumaNode> numa;
  std::vector<CacheLevel> caches;
  std::vector<std::string> isa;  // "avx2", "avx512f", "avx512_vnni", "amx_int8", ...
  double dram_read_gbps = 0;     // all nodes together
  double peak_gops_int8 = 0;
  double peak_gflops_bf16 = 0;
  double peak_gflops_fp32 = 0;
  // Measured by `hexe profile detect`: hexe's matmul rate per weight type (GGML type name, e.g.
  // "q4_K", or "q4_K+rows16" for the AVX-512 copy), 10^9 op/s with 128 activation rows and
  // cache-resident weights. Types left out use the int8/bf16/fp32 peaks above.
  std::map<std::string, double> matmul_gops;
  // Measured likewise: the routed-expert layer's prefill rate per weight type (peak_bench.h).
  std::map<std::string, double> moe_prefill_gops;
  // The same rate with 8 and with 128 tokens per expert: expert GEMMs speed up with their batch,
  // and skewed routing gives hot experts far more tokens than the mean (cost_model.h).
  std::map<std::string, double> moe_prefill_gops_8, moe_prefill_gops_128;
  // Measured: the CPU attention kernel (scores, softmax, values over a paged F32 cache), 10^9
  // FLOP/s over a 512-token causal prefill with 32 heads of 128; 0 when not measured.
  double attention_gflops = 0;
};

struct GpuProfile {
  std::string name;
  uint64_t memory_bytes = 0;
  int sms = 0;
  double mem_gbps = 0;           // device memory bandwidth
  double peak_tflops_fp16 = 0;   // dense tensor-core FP16/BF16 with FP32 accumulate
  double peak_tops_int8 = 0;     // dense tensor-core int8
  double pcie_h2d_gbps = 0;      // pinned host -> device
  double pcie_d2h_gbps = 0;      // device -> pinned host
  uint64_t reserved_bytes = 0;   // taken by the driver/context before hexe allocates anything
  // Measured by `hexe profile detect` with hexe's kernels (0: not measured): a decode GEMV's
  // bandwidth (Q4_K, attention-projection shape, weights larger than L2), one small kernel's time
  // inside a CUDA graph and launched alone, and the hybrid step's hand-off (kernel, 8 KB to
  // pinned memory, host waits, 8 KB back, kernel).
  double gemv_gbps = 0;
  // With gemv_floor_us (0: not measured, older profiles): gemv_gbps is the streaming rate of a
  // large matrix and each GEMV also costs this fixed time (activation quantisation, the
  // reduction, one memory round trip), from two shapes: t = floor + bytes / gemv_gbps.
  double gemv_floor_us = 0;
  double attention_tflops = 0;   // prefill attention core: a 4096-token prompt in 512-token chunks, 32/4 heads of 128
  double expert_prefill_us = 0;  // one routed expert's prefill on the GPU (32 tokens, Qwen3-30B expert shape)
  double graph_kernel_us = 0;
  double launch_us = 0;
  double handoff_us = 0;
  // A flagged decode pass's hand-off (gpu_kernels/handoff.h flag_rows_us): a kernel publishes
  // 8 KB and a count to mapped pinned memory, the host answers, the next (already queued) kernel
  // waits and adds 8 KB back. No launch or copy in between.
  double flag_handoff_us = 0;
};

// Fractions of the peaks above a runtime achieves, and fixed per-call costs. Defaults are hexe's
// targets until `hexe profile detect` measures them; a profile may set them per runtime
// (the KTransformers reference profile sets KTransformers' achieved figures).
struct Efficiency {
  double cpu_dram = 0.75;        // of CpuProfile::dram_read_gbps, streaming quantised weights
  double cpu_int8 = 0.35;        // of peak_gops_int8 (quantised-weight matmul)
  double cpu_float = 0.35;       // of peak_gflops_bf16/fp32
  double gpu_mem = 0.80;         // of GpuProfile::mem_gbps
  double gpu_compute = 0.45;     // of the tensor-core peaks
  double pcie = 0.85;            // of the PCIe bandwidths (pinned, large transfers)
  double gpu_launch_us = 5;      // per kernel launch outside a CUDA graph
  double gpu_graph_launch_us = 20;  // per CUDA-graph launch (one per decode step)
  double handoff_us = 15;        // per layer, GPU -> CPU -> GPU hand-off: event wait and copies
  double flag_handoff_us = 10;   // the same through pinned flags (a flagged decode pass; no copies,
                                 // no graph launch in between)
  double pcie_setup_us = 10;     // per DMA transfer
  double cpu_op_us = 2;          // per CPU op (thread-pool fork/join)
  // Kernels of one GPU layer's fused decode step (OffloadConfig::fused_decode; GQA: the CPU sum
  // added with the norm; q, k, v batched (wv apart when its type differs); q/k norm, RoPE and
  // cache store in one; attention and its combine; o into the residual; FFN norm with the router;
  // the publish): 8-9, 3 more with shared experts.
  int gpu_kernels_per_layer = 9;
  double gpu_gemv = 0.5;         // of GpuProfile::mem_gbps, a decode GEMV (few rows of activations)
  double gpu_gemv_floor_us = 0;  // per decode GEMV call on top of its bytes (measured; 0: none)
  double gpu_kernel_us = 3;      // per kernel of a CUDA-graphed decode step (small kernels)
  double gpu_expert_prefill_us = 60;  // per routed expert computed on the GPU in a prefill chunk
  // Measured: per weight type, the fraction of the DRAM read bandwidth a single-token matmul
  // streaming that type from memory reaches (decode). Types left out use cpu_dram.
  std::map<std::string, double> cpu_dram_by_type;
  // Measured likewise for the routed-expert layer in decode (peak_bench.h
  // measure_moe_decode): short per-layer jobs reach less than one long GEMV.
  std::map<std::string, double> cpu_moe_decode_by_type;
};

struct HardwareProfile {
  std::string name;
  std::vector<std::string> sources;  // where each figure came from (public specs, measurement)
  std::string notes;
  uint64_t host_memory_bytes = 0;
  CpuProfile cpu;
  std::vector<GpuProfile> gpus;
  Efficiency efficiency;
  bool measured = false;             // true when written by `hexe profile detect`
};

void to_json(nlohmann::json& j, const CacheLevel& v);
void from_json(const nlohmann::json& j, CacheLevel& v);
void to_json(nlohmann::json& j, const NumaNode& v);
void from_json(const nlohmann::json& j, NumaNode& v);
void to_json(nlohmann::json& j, const CpuProfile& v);
void from_json(const nlohmann::json& j, CpuProfile& v);
void to_json(nlohmann::json& j, const GpuProfile& v);
void from_json(const nlohmann::json& j, GpuProfile& v);
void to_json(nlohmann::json& j, const Efficiency& v);
void from_json(const nlohmann::json& j, Efficiency& v);
void to_json(nlohmann::json& j, const HardwareProfile& v);
void from_json(const nlohmann::json& j, HardwareProfile& v);

// Reads a profile file; throws hexe::Error naming the file and the field on bad input.
HardwareProfile load_profile(const std::string& path);
void save_profile(const HardwareProfile& p, const std::string& path);
// NAME (profiles/hardware/NAME.json) or a path; see data_paths.h for where NAME is looked up.
HardwareProfile resolve_profile(const std::string& name_or_path);

}  // namespace hexe::place

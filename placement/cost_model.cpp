// Roofline time per op per device, and critical-path bookkeeping by limiting resource.
#include "placement/cost_model.h"

#include <algorithm>

namespace hexe::place {

const char* limit_name(Limit l) {
  switch (l) {
    case Limit::Dram: return "DRAM";
    case Limit::CpuCompute: return "CPU compute";
    case Limit::GpuMemory: return "GPU memory";
    case Limit::GpuCompute: return "GPU compute";
    case Limit::Pcie: return "PCIe";
    case Limit::Latency: return "latency";
    case Limit::kCount: break;
  }
  return "?";
}

double Cost::seconds() const {
  double s = 0;
  for (double v : by) s += v;
  return s;
}

Limit Cost::dominant() const {
  size_t best = 0;
  for (size_t i = 1; i < by.size(); ++i)
    if (by[i] > by[best]) best = i;
  return Limit(best);
}

Cost& Cost::operator+=(const Cost& o) {
  for (size_t i = 0; i < by.size(); ++i) by[i] += o.by[i];
  return *this;
}

Cost Cost::scaled(double f) const {
  Cost c = *this;
  for (double& v : c.by) v *= f;
  return c;
}

Cost overlap(const Cost& a, const Cost& b) { return a.seconds() >= b.seconds() ? a : b; }

CostModel::CostModel(const HardwareProfile& hw) : eff_(hw.efficiency) {
  dram_ = hw.cpu.dram_read_gbps * 1e9;
  cpu_attention_ = hw.cpu.attention_gflops * 1e9;
  cpu_bw_ = dram_ * eff_.cpu_dram;
  // Measured per-type figures replace the generic ones for their type (names the profile does
  // not know as GGML types are ignored: profiles may come from newer versions).
  for (const auto& [name, gops] : hw.cpu.matmul_gops) {
    const size_t plus = name.find('+');
    auto t = dtype_from_name(name.substr(0, plus));
    if (!t) continue;
    if (plus == std::string::npos) cpu_rate_by_type_[*t] = gops * 1e9 * eff_.cpu_int8;
    else if (name.substr(plus + 1) == "rows16") cpu_rate_rows16_[*t] = gops * 1e9 * eff_.cpu_int8;
  }
  for (const auto& [name, gops] : hw.cpu.moe_prefill_gops) {
    const size_t plus = name.find('+');
    auto t = dtype_from_name(name.substr(0, plus));
    if (!t) continue;
    if (plus == std::string::npos) moe_rate_by_type_[*t] = gops * 1e9 * eff_.cpu_int8;
    else if (name.substr(plus + 1) == "rows16") moe_rate_rows16_[*t] = gops * 1e9 * eff_.cpu_int8;
  }
  for (const auto& [name, f] : eff_.cpu_dram_by_type) {
    const size_t plus = name.find('+');
    auto t = dtype_from_name(name.substr(0, plus));
    if (!t) continue;
    if (plus == std::string::npos) cpu_dram_by_type_[*t] = dram_ * f;
    else if (name.substr(plus + 1) == "rows16") cpu_dram_rows16_[*t] = dram_ * f;
  }
  cpu_int8_ = hw.cpu.peak_gops_int8 * 1e9 * eff_.cpu_int8;
  cpu_bf16_ = hw.cpu.peak_gflops_bf16 * 1e9 * eff_.cpu_float;
  cpu_fp32_ = hw.cpu.peak_gflops_fp32 * 1e9 * eff_.cpu_float;
  if (!hw.gpus.empty()) {
    const auto& g = hw.gpus.front();
    has_gpu_ = true;
    gpu_bw_ = g.mem_gbps * 1e9 * eff_.gpu_mem;
    gpu_rate_ = g.peak_tflops_fp16 * 1e12 * eff_.gpu_compute;
    // DMA reads host DRAM: an upload cannot run faster than the host memory it reads.
    pcie_bw_ = std::min(g.pcie_h2d_gbps * 1e9 * eff_.pcie, cpu_bw_);
  }
}

double CostModel::cpu_bw(DType t, bool rows16) const {
  if (rows16)
    if (auto r = cpu_dram_rows16_.find(t); r != cpu_dram_rows16_.end()) return r->second;
  auto it = cpu_dram_by_type_.find(t);
  return it != cpu_dram_by_type_.end() ? it->second : cpu_bw_;
}

double CostModel::cpu_rate(DType t, bool rows16) const {
  if (rows16)
    if (auto r = cpu_rate_rows16_.find(t); r != cpu_rate_rows16_.end()) return r->second;
  if (auto it = cpu_rate_by_type_.find(t); it != cpu_rate_by_type_.end()) return it->second;
  if (is_quantized(t)) return cpu_int8_;  // quantised weights x int8-quantised activations
  if (t == DType::BF16) return cpu_bf16_;
  return cpu_fp32_;                        // F32, and F16 (converted to F32)
}

Cost CostModel::cpu_op(double bytes, double flops, DType type, int calls, bool rows16) const {
  Cost c;
  const double tm = bytes / cpu_bw(type, rows16), tc = flops / cpu_rate(type, rows16);
  if (tm >= tc) c.by[size_t(Limit::Dram)] = tm;
  else c.by[size_t(Limit::CpuCompute)] = tc;
  c.by[size_t(Limit::Latency)] = calls * eff_.cpu_op_us * 1e-6;
  return c;
}

Cost CostModel::cpu_moe_op(double bytes, double flops, DType type, int calls, bool rows16) const {
  double rate = 0;
  if (rows16)
    if (auto r = moe_rate_rows16_.find(type); r != moe_rate_rows16_.end()) rate = r->second;
  if (rate == 0)
    if (auto r = moe_rate_by_type_.find(type); r != moe_rate_by_type_.end()) rate = r->second;
  if (rate == 0) return cpu_op(bytes, flops, type, calls, rows16);
  Cost c;
  const double tm = bytes / cpu_bw(type, rows16), tc = flops / rate;
  if (tm >= tc) c.by[size_t(Limit::Dram)] = tm;
  else c.by[size_t(Limit::CpuCompute)] = tc;
  c.by[size_t(Limit::Latency)] = calls * eff_.cpu_op_us * 1e-6;
  return c;
}

Cost CostModel::gpu_op(double bytes, double flops, int launches) const {
  Cost c;
  const double tm = bytes / gpu_bw_, tc = flops / gpu_rate_;
  if (tm >= tc) c.by[size_t(Limit::GpuMemory)] = tm;
  else c.by[size_t(Limit::GpuCompute)] = tc;
  c.by[size_t(Limit::Latency)] = launches * eff_.gpu_launch_us * 1e-6;
  return c;
}

Cost CostModel::h2d(double bytes, int transfers) const {
  Cost c;
  c.by[size_t(Limit::Pcie)] = bytes / pcie_bw_;
  c.by[size_t(Limit::Latency)] = transfers * eff_.pcie_setup_us * 1e-6;
  return c;
}

Cost CostModel::latency_us(double us) const {
  Cost c;
  c.by[size_t(Limit::Latency)] = us * 1e-6;
  return c;
}

}  // namespace hexe::place

// Roofline time per op per device, and critical-path bookkeeping by limiting resource.
#include "placement/cost_model.h"

#include <algorithm>
#include <cmath>

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
  // Measured per-type figures replace the generic ones for their type.
  matmul_rate_.load(hw.cpu.matmul_gops, 1e9 * eff_.cpu_int8);
  moe_rate_.load(hw.cpu.moe_prefill_gops, 1e9 * eff_.cpu_int8);
  moe_rate_8_.load(hw.cpu.moe_prefill_gops_8, 1e9 * eff_.cpu_int8);
  moe_rate_128_.load(hw.cpu.moe_prefill_gops_128, 1e9 * eff_.cpu_int8);
  dram_bw_.load(eff_.cpu_dram_by_type, dram_);
  moe_decode_bw_.load(eff_.cpu_moe_decode_by_type, dram_);
  cpu_int8_ = hw.cpu.peak_gops_int8 * 1e9 * eff_.cpu_int8;
  cpu_bf16_ = hw.cpu.peak_gflops_bf16 * 1e9 * eff_.cpu_float;
  cpu_fp32_ = hw.cpu.peak_gflops_fp32 * 1e9 * eff_.cpu_float;
  if (!hw.gpus.empty()) {
    const auto& g = hw.gpus.front();
    has_gpu_ = true;
    gpu_bw_ = g.mem_gbps * 1e9 * eff_.gpu_mem;
    gpu_gemv_bw_ = g.mem_gbps * 1e9 * eff_.gpu_gemv;
    gpu_attention_ = g.attention_tflops * 1e12;
    gpu_rate_ = g.peak_tflops_fp16 * 1e12 * eff_.gpu_compute;
    // DMA reads host DRAM: an upload cannot run faster than the host memory it reads.
    pcie_bw_ = std::min(g.pcie_h2d_gbps * 1e9 * eff_.pcie, cpu_bw_);
  }
}

void CostModel::PerType::load(const std::map<std::string, double>& named, double scale) {
  for (const auto& [name, v] : named) {
    const size_t plus = name.find('+');
    auto t = dtype_from_name(name.substr(0, plus));
    if (!t) continue;
    if (plus == std::string::npos) gguf[*t] = v * scale;
    else if (name.substr(plus + 1) == "rows16") rows16[*t] = v * scale;
  }
}

double CostModel::PerType::find(DType t, bool want_rows16) const {
  if (want_rows16)
    if (auto r = rows16.find(t); r != rows16.end()) return r->second;
  auto g = gguf.find(t);
  return g != gguf.end() ? g->second : 0;
}

double CostModel::cpu_bw(DType t, bool rows16) const {
  const double bw = dram_bw_.find(t, rows16);
  return bw > 0 ? bw : cpu_bw_;
}

double CostModel::cpu_rate(DType t, bool rows16) const {
  if (const double r = matmul_rate_.find(t, rows16); r > 0) return r;
  if (is_quantized(t)) return cpu_int8_;  // quantised weights x int8-quantised activations
  if (t == DType::BF16) return cpu_bf16_;
  return cpu_fp32_;                        // F32, and F16 (converted to F32)
}

Cost CostModel::cpu_roofline(double memory_s, double compute_s, int calls) const {
  Cost c;
  if (memory_s >= compute_s) c.by[size_t(Limit::Dram)] = memory_s;
  else c.by[size_t(Limit::CpuCompute)] = compute_s;
  c.by[size_t(Limit::Latency)] = calls * eff_.cpu_op_us * 1e-6;
  return c;
}

Cost CostModel::cpu_op(double bytes, double flops, DType type, int calls, bool rows16) const {
  return cpu_roofline(bytes / cpu_bw(type, rows16), flops / cpu_rate(type, rows16), calls);
}

double CostModel::cpu_moe_rate(DType type, bool rows16, double tpe) const {
  const double r32 = moe_rate_.find(type, rows16);
  if (r32 <= 0 || tpe <= 0) return r32;
  const double r8 = moe_rate_8_.find(type, rows16), r128 = moe_rate_128_.find(type, rows16);
  const double x = std::log2(std::clamp(tpe, 8.0, 128.0));  // 3 .. 7, 32 tokens at 5
  if (x < 5 && r8 > 0) return r8 + (r32 - r8) * (x - 3) / 2;
  if (x > 5 && r128 > 0) return r32 + (r128 - r32) * (x - 5) / 2;
  return r32;
}

Cost CostModel::cpu_moe_op(double bytes, double flops, DType type, int calls, bool rows16, bool decode,
                           double tokens_per_expert) const {
  double bw = cpu_bw(type, rows16);
  if (decode)
    if (const double d = moe_decode_bw_.find(type, rows16); d > 0) bw = d;
  const double rate = cpu_moe_rate(type, rows16, tokens_per_expert);
  if (rate <= 0) return cpu_roofline(bytes / bw, flops / cpu_rate(type, rows16), calls);
  return cpu_roofline(bytes / bw, flops / rate, calls);
}

Cost CostModel::gpu_op(double bytes, double flops, int launches, bool decode, int gemv_calls) const {
  Cost c;
  const double tm = bytes / (decode ? gpu_gemv_bw_ : gpu_bw_) + (decode ? gemv_calls * eff_.gpu_gemv_floor_us * 1e-6 : 0),
               tc = flops / gpu_rate_;
  if (tm >= tc) c.by[size_t(Limit::GpuMemory)] = tm;
  else c.by[size_t(Limit::GpuCompute)] = tc;
  c.by[size_t(Limit::Latency)] = launches * eff_.gpu_launch_us * 1e-6;
  return c;
}

Cost CostModel::gpu_attention(double flops) const {
  Cost c;
  c.by[size_t(Limit::GpuCompute)] = flops / (gpu_attention_ > 0 ? gpu_attention_ : gpu_rate_);
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

// The cost model's primitives: time of one op on one device from the bytes it moves and the
// FLOPs it does, over the profile's bandwidths and peak rates times the achieved efficiencies,
// plus per-call latency; and a critical-path accumulator that remembers what limited it.
// Equations: placement/README.md "Cost model".
#pragma once

#include <array>
#include <map>
#include <string>

#include "cpu_kernels/format.h"
#include "placement/hardware_profile.h"

namespace hexe::place {

// What limited a stretch of time.
enum class Limit { Dram, CpuCompute, GpuMemory, GpuCompute, Pcie, Latency, kCount };
const char* limit_name(Limit l);

// Time split by limit; `seconds()` is the sum.
struct Cost {
  std::array<double, size_t(Limit::kCount)> by{};
  double seconds() const;
  Limit dominant() const;
  Cost& operator+=(const Cost& o);
  Cost scaled(double f) const;
};
// The longer of two branches that run at the same time (the shorter one is hidden).
Cost overlap(const Cost& a, const Cost& b);

class CostModel {
 public:
  explicit CostModel(const HardwareProfile& hw);

  // One CPU op over all cores: max(bytes / B_cpu, flops / R_cpu(type)) + calls * t_op.
  // rows16: the weights are read from the AVX-512 copy (repack.h), whose rates the profile may
  // list under "<type>+rows16" (matmul_gops, cpu_dram_by_type); without them the GGUF figures.
  Cost cpu_op(double bytes, double flops, DType type, int calls = 1, bool rows16 = false) const;
  // The routed-expert layer on the CPU: as cpu_op, but compute at the profile's measured MoE
  // prefill rate for the type when it has one (the layer's own kernel, not a plain matmul).
  // decode: one token; its weights stream at the measured MoE-decode efficiency for the type
  // (Efficiency::cpu_moe_decode_by_type) where the profile has one.
  // tokens_per_expert (prefill): the routed-expert GEMMs' batch, FLOP-weighted; the rate follows
  // the profile's measurements at 8, 32 and 128 tokens per expert (log-linear between, clamped).
  Cost cpu_moe_op(double bytes, double flops, DType type, int calls = 1, bool rows16 = false,
                  bool decode = false, double tokens_per_expert = 0) const;
  double cpu_moe_rate(DType type, bool rows16, double tokens_per_expert) const;  // FLOP/s; 0: none
  // One GPU op: max(bytes / B_gpu, flops / R_gpu) + launches * t_launch (0 launches inside a
  // captured CUDA graph). decode: GEMVs over few activation rows, which reach the measured GEMV
  // bandwidth (Efficiency::gpu_gemv) rather than the device's streaming read, plus the measured
  // fixed time of each of its gemv_calls calls (Efficiency::gpu_gemv_floor_us).
  Cost gpu_op(double bytes, double flops, int launches = 1, bool decode = false, int gemv_calls = 0) const;
  // The GPU attention core (scores, softmax, values) at the measured kernel rate.
  Cost gpu_attention(double flops) const;
  double gpu_attention_rate() const { return gpu_attention_; }
  // Host -> device copy of `bytes` in `transfers` DMA transfers.
  Cost h2d(double bytes, int transfers = 1) const;
  // Fixed latency (hand-offs, graph launches), in microseconds.
  Cost latency_us(double us) const;
  // A CPU op whose memory and compute times are known: the longer of the two, booked to DRAM or
  // CPU compute, plus calls * t_op (cpu_op and cpu_moe_op are this with the profile's rates).
  Cost cpu_roofline(double memory_s, double compute_s, int calls) const;

  bool has_gpu() const { return has_gpu_; }
  double cpu_bw() const { return cpu_bw_; }          // B/s achieved
  double cpu_bw(DType t, bool rows16) const;          // B/s achieved streaming weights of type t
  // FLOP/s of the CPU attention kernel (measured; 0: unknown, attention costed as a matmul).
  double cpu_attention_rate() const { return cpu_attention_; }
  double cpu_rate(DType t, bool rows16 = false) const;  // FLOP/s achieved on the path `t` uses
  double gpu_bw() const { return gpu_bw_; }
  double gpu_rate() const { return gpu_rate_; }
  double pcie_bw() const { return pcie_bw_; }
  const Efficiency& eff() const { return eff_; }

 private:
  double cpu_attention_ = 0;
  Efficiency eff_;
  double dram_ = 0;  // B/s, the profile's plain read bandwidth
  // A profile's measured figures per weight type, keyed "<type>" or "<type>+rows16" there.
  struct PerType {
    std::map<DType, double> gguf, rows16;
    // Names that are no GGML type or layout this version knows are skipped (newer profiles).
    void load(const std::map<std::string, double>& named, double scale);
    double find(DType t, bool rows16) const;  // the rows16 figure, else the GGUF one; 0: none
  };
  PerType matmul_rate_, moe_rate_, moe_rate_8_, moe_rate_128_, dram_bw_, moe_decode_bw_;
  bool has_gpu_ = false;
  double cpu_bw_ = 0, cpu_int8_ = 0, cpu_bf16_ = 0, cpu_fp32_ = 0;
  double gpu_bw_ = 0, gpu_gemv_bw_ = 0, gpu_rate_ = 0, pcie_bw_ = 0, gpu_attention_ = 0;
};

}  // namespace hexe::place

// Cost model equations on hand-computed cases: roofline per device, PCIe bounded by DRAM,
// overlap, expected experts touched, and one decode layer of a hybrid plan.
#include <gtest/gtest.h>

#include <cmath>

#include "placement/cost_model.h"
#include "placement/model_digest.h"
#include "placement/predict.h"

namespace hexe::place {
namespace {

// A round-number machine: 100 GB/s DRAM, 1000 GOP/s int8, 500 GFLOP/s bf16/fp32; a GPU with
// 1000 GB/s, 100 TFLOP/s, 20 GB/s PCIe. Efficiencies of 0.5 everywhere.
HardwareProfile toy_profile() {
  HardwareProfile hw;
  hw.name = "toy";
  hw.host_memory_bytes = 64ull << 30;
  hw.cpu.cores = 8;
  hw.cpu.dram_read_gbps = 100;
  hw.cpu.peak_gops_int8 = 1000;
  hw.cpu.peak_gflops_bf16 = 500;
  hw.cpu.peak_gflops_fp32 = 500;
  GpuProfile g;
  g.memory_bytes = 16ull << 30;
  g.mem_gbps = 1000;
  g.peak_tflops_fp16 = 100;
  g.pcie_h2d_gbps = 20;
  hw.gpus.push_back(g);
  Efficiency& e = hw.efficiency;
  e.cpu_dram = e.cpu_int8 = e.cpu_float = e.gpu_mem = e.gpu_compute = e.pcie = e.gpu_gemv = 0.5;
  e.gpu_kernel_us = 3;
  e.gpu_kernels_per_layer = 20;
  e.cpu_op_us = 10;
  e.gpu_launch_us = 5;
  e.pcie_setup_us = 20;
  e.handoff_us = 100;
  return hw;
}

TEST(CostModel, RooflinePerDevice) {
  CostModel cm(toy_profile());
  // CPU, memory-bound: 1 GB at 50 GB/s = 20 ms; 1 GFLOP at 500 GOP/s = 2 ms; + 10 us.
  Cost c = cm.cpu_op(1e9, 1e9, DType::Q4_K, 1);
  EXPECT_NEAR(c.by[size_t(Limit::Dram)], 0.020, 1e-12);
  EXPECT_EQ(c.by[size_t(Limit::CpuCompute)], 0.0);
  EXPECT_NEAR(c.seconds(), 0.020010, 1e-12);
  EXPECT_EQ(c.dominant(), Limit::Dram);
  // CPU, compute-bound on the float path: 1 TFLOP at 250 GFLOP/s = 4 s, 1 MB of bytes is nothing.
  Cost f = cm.cpu_op(1e6, 1e12, DType::BF16, 0);
  EXPECT_NEAR(f.seconds(), 4.0, 1e-9);
  EXPECT_EQ(f.dominant(), Limit::CpuCompute);
  // GPU: 1 GB at 500 GB/s = 2 ms vs 1 TFLOP at 50 TFLOP/s = 20 ms; 3 launches of 5 us.
  Cost g = cm.gpu_op(1e9, 1e12, 3);
  EXPECT_NEAR(g.by[size_t(Limit::GpuCompute)], 0.020, 1e-12);
  EXPECT_NEAR(g.by[size_t(Limit::Latency)], 15e-6, 1e-15);
  // PCIe: 1 GB at min(10 GB/s link, 50 GB/s DRAM) = 100 ms, plus 2 setups of 20 us.
  EXPECT_NEAR(cm.h2d(1e9, 2).seconds(), 0.1 + 40e-6, 1e-12);
}

TEST(CostModel, MeasuredPerTypeFiguresReplaceTheGenericOnes) {
  HardwareProfile hw = toy_profile();
  hw.cpu.matmul_gops["q4_K"] = 200;             // x 0.5 efficiency = 100 GOP/s for q4_K only
  hw.efficiency.cpu_dram_by_type["q8_0"] = 0.8;  // q8_0 decode streams at 80 GB/s
  hw.efficiency.cpu_dram_by_type["q99"] = 0.1;   // unknown names are ignored
  CostModel cm(hw);
  EXPECT_NEAR(cm.cpu_op(1e3, 1e9, DType::Q4_K, 0).seconds(), 0.010, 1e-12);  // 1 GFLOP / 100 G
  EXPECT_NEAR(cm.cpu_op(1e3, 1e9, DType::Q6_K, 0).seconds(), 0.002, 1e-12);  // generic int8: 500 G
  EXPECT_NEAR(cm.cpu_op(1e9, 0, DType::Q8_0, 0).seconds(), 1.0 / 80, 1e-12);
  EXPECT_NEAR(cm.cpu_op(1e9, 0, DType::Q4_K, 0).seconds(), 1.0 / 50, 1e-12);  // generic 0.5 x 100
  // The repacked decode layout has its own figure; without one the GGUF figure stands.
  hw.efficiency.cpu_dram_by_type["q8_0+rows16"] = 0.9;
  CostModel cm2(hw);
  EXPECT_NEAR(cm2.cpu_op(1e9, 0, DType::Q8_0, 0, true).seconds(), 1.0 / 90, 1e-12);
  EXPECT_NEAR(cm2.cpu_op(1e9, 0, DType::Q8_0, 0, false).seconds(), 1.0 / 80, 1e-12);
  EXPECT_NEAR(cm2.cpu_op(1e9, 0, DType::Q4_K, 0, true).seconds(), 1.0 / 50, 1e-12);
}

TEST(CostModel, PcieCannotOutrunDram) {
  HardwareProfile hw = toy_profile();
  hw.gpus[0].pcie_h2d_gbps = 400;  // a link faster than the host memory behind it
  CostModel cm(hw);
  EXPECT_NEAR(cm.pcie_bw(), 50e9, 1);  // DRAM 100 GB/s x 0.5
}

TEST(CostModel, OverlapKeepsTheLongerBranch) {
  CostModel cm(toy_profile());
  Cost a = cm.cpu_op(1e9, 0, DType::Q4_K, 0);  // 20 ms DRAM
  Cost b = cm.gpu_op(1e9, 0, 0);              // 2 ms GPU memory
  EXPECT_NEAR(overlap(a, b).seconds(), 0.020, 1e-12);
  EXPECT_NEAR(overlap(b, a).seconds(), 0.020, 1e-12);
  Cost s = a;
  s += b;
  EXPECT_NEAR(s.seconds(), 0.022, 1e-12);
}

TEST(CostModel, ExpertsTouched) {
  EXPECT_NEAR(experts_touched(128, 8, 1), 8.0, 1e-9);
  EXPECT_NEAR(experts_touched(128, 8, 2), 128 * (1 - std::pow(120.0 / 128, 2)), 1e-9);
  EXPECT_NEAR(experts_touched(256, 8, 4096), 256.0, 1e-6);
  EXPECT_EQ(experts_touched(128, 8, 0), 0.0);
}

// A one-layer MoE model with round sizes, all weights in q8_0-like bytes set by hand.
PlanModel toy_model() {
  PlanModel m;
  auto& s = m.spec;
  s.name = "toy";
  s.n_layers = 1;
  s.n_embd = 1024;
  s.n_vocab = 1000;
  s.n_head = 8;
  s.n_head_kv = 8;
  s.head_dim = 128;
  s.n_expert = 16;
  s.n_expert_used = 2;
  s.n_ff_exp = 512;
  auto add = [&](const char* n, std::vector<int64_t> ne, TensorRole r, uint64_t bytes, int experts = 1) {
    TensorSpec t;
    t.name = n;
    t.ne = ne;
    t.role = r;
    t.layer = 0;
    t.bytes = bytes;
    t.type = DType::Q8_0;
    t.experts = experts;
    s.tensors.push_back(t);
  };
  add("blk.0.attn_q.weight", {1024, 1024}, TensorRole::AttnQ, 1'000'000);
  add("blk.0.ffn_gate_shexp.weight", {1024, 512}, TensorRole::SharedGate, 500'000);
  add("blk.0.ffn_gate_exps.weight", {1024, 512, 16}, TensorRole::ExpertGate, 16'000'000, 16);
  m.attn.n_head = 8;
  m.attn.n_head_kv = 8;
  m.attn.head_dim_k = m.attn.head_dim_v = 128;
  return m;
}

TEST(CostModel, HybridDecodeLayerByHand) {
  HardwareProfile hw = toy_profile();
  CostModel cm(hw);
  PlanModel m = toy_model();
  ModelDigest d = digest_model(m);
  ASSERT_TRUE(d.layers[0].moe);
  EXPECT_EQ(d.layers[0].expert_bytes(), 1e6);
  LayerPlan lp;
  lp.moe = true;
  lp.attn = lp.ffn = Device::Gpu;
  lp.experts_decode = ExpertExec::Cpu;
  // One token at context 1000, F16 cache: the attention op reads 1 MB of weights and
  // 1000 x 8 x 256 x 2 = 4.096 MB of cache at 500 GB/s; its FLOPs are far below the rate.
  const double attn = (1e6 + 4.096e6) / 500e9;
  // Shared expert on the GPU: 0.5 MB / 500 GB/s. Routed: 2 experts x 1 MB from DRAM at
  // 50 GB/s + 3 CPU ops of 10 us, + the hand-off (100 us + 2 x 1024 x 4 B over 10 GB/s).
  const double shared = 0.5e6 / 500e9;
  // The GPU's work after the hand-off is a new graph launch (20 us), and the engine moves one
  // buffer more than the measured hand-off (one more DMA setup, 20 us).
  const double routed = 2e6 / 50e9 + 30e-6 + 100e-6 + 8192.0 / 10e9 + 20e-6 + 20e-6;
  // The layer's 20 kernels replayed from a CUDA graph at 3 us each.
  const double graphed = 20 * 3e-6;
  const double want = attn + std::max(shared, routed) + graphed;
  const Cost c = layer_cost(lp, d.layers[0], m, cm, 1, 1000, 1, true, 2);
  EXPECT_NEAR(c.seconds(), want, 1e-9);
  // A flagged decode pass: the pinned-flag hand-off (7 us, its 8 KB each way measured with it:
  // 1024 floats each way move nothing more), no graph launch or DMA setup on the critical path.
  hw.efficiency.flag_handoff_us = 7;
  const CostModel cm_flags(hw);
  const double routed_flags = 2e6 / 50e9 + 30e-6 + 7e-6;
  const Cost cf = layer_cost(lp, d.layers[0], m, cm_flags, 1, 1000, 1, true, 2, false, true);
  EXPECT_NEAR(cf.seconds(), attn + std::max(shared, routed_flags) + graphed, 1e-9);
  // All on the GPU instead: the routed experts (2 MB) read from VRAM, in parallel with nothing;
  // the host routes them (a 100 us hand-off) and launches 6 kernels for them together (gather,
  // batched GEMVs, SwiGLU, combine) at 5 us, between the layer's 20 graphed kernels.
  lp.experts_decode = ExpertExec::Gpu;
  // (plus the next graph launch and two DMA setups more than the hand-off's: 20 + 2 x 20 us).
  const double host_routed = 100e-6 + 20 * 3e-6 + 6 * 5e-6 + 20e-6 + 2 * 20e-6;
  const Cost g = layer_cost(lp, d.layers[0], m, cm, 1, 1000, 1, true, 2);
  EXPECT_NEAR(g.seconds(), attn + shared + 2e6 / 500e9 + host_routed, 1e-9);
  // Cache with a 50% hit rate: one expert of the two crosses PCIe (1 MB at 10 GB/s + 20 us).
  lp.experts_decode = ExpertExec::Cache;
  lp.gpu_hit = 0.5;
  const Cost k = layer_cost(lp, d.layers[0], m, cm, 1, 1000, 1, true, 2);
  EXPECT_NEAR(k.seconds(), attn + shared + (1e6 / 10e9 + 20e-6) + 2e6 / 500e9 + host_routed, 1e-9);
  // A measured GEMV floor of 4 us: each decode GEMV call costs it on top of its bytes: the
  // attention projection, the shared expert's matrix, and the routed experts' three batched calls.
  lp.experts_decode = ExpertExec::Gpu;
  lp.gpu_hit = 0;
  hw.efficiency.gpu_gemv_floor_us = 4;
  const CostModel cm_floor(hw);
  const Cost f = layer_cost(lp, d.layers[0], m, cm_floor, 1, 1000, 1, true, 2);
  EXPECT_NEAR(f.seconds() - g.seconds(), 4e-6 * (1 + 1 + 3), 1e-9);
}

// The routed experts' prefill rate follows the measured points at 8, 32 and 128 tokens per
// expert, log-linear between them and flat outside; skewed routing raises the batch.
TEST(CostModel, MoePrefillRateFollowsTokensPerExpert) {
  HardwareProfile hw = toy_profile();
  hw.cpu.moe_prefill_gops["q4_K"] = 400;
  hw.cpu.moe_prefill_gops_8["q4_K"] = 200;
  hw.cpu.moe_prefill_gops_128["q4_K"] = 500;
  CostModel cm(hw);
  const double s = 1e9 * 0.5;  // the toy profile's e_int8
  EXPECT_NEAR(cm.cpu_moe_rate(DType::Q4_K, false, 32), 400 * s, 1);
  EXPECT_NEAR(cm.cpu_moe_rate(DType::Q4_K, false, 16), 300 * s, 1);
  EXPECT_NEAR(cm.cpu_moe_rate(DType::Q4_K, false, 64), 450 * s, 1);
  EXPECT_NEAR(cm.cpu_moe_rate(DType::Q4_K, false, 2), 200 * s, 1);
  EXPECT_NEAR(cm.cpu_moe_rate(DType::Q4_K, false, 4096), 500 * s, 1);
  EXPECT_NEAR(cm.cpu_moe_rate(DType::Q4_K, false, 0), 400 * s, 1);  // unknown batch: the 32-token rate

  LayerDigest ld;
  ld.n_expert = 4;
  ld.n_expert_used = 2;
  EXPECT_DOUBLE_EQ(ld.tokens_per_expert(100), 50);  // uniform: T k / E
  ld.pick = {1.0, 1.0, 0.0, 0.0};                    // every token picks experts 0 and 1
  EXPECT_DOUBLE_EQ(ld.tokens_per_expert(100), 100);
  EXPECT_DOUBLE_EQ(ld.touched(100), 2);
  // With a hot set on the GPU the CPU's batches are those of the other experts.
  ld.pick = {1.0, 0.6, 0.3, 0.1};
  const std::vector<int> hot = {0};
  EXPECT_DOUBLE_EQ(ld.tokens_per_expert(100, &hot), 100 * (0.36 + 0.09 + 0.01) / (0.6 + 0.3 + 0.1));
}

}  // namespace
}  // namespace hexe::place

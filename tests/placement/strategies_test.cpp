// Strategies and memory fit: every strategy is planned, refusals say what is missing and by
// how much, `auto` picks the fastest plan that fits, and predictions respect the physics
// DESIGN.md names (DRAM bound on decode, the n* streaming break-even).
#include <gtest/gtest.h>

#include <cmath>

#include "placement/cost_model.h"
#include "placement/hardware_profile.h"
#include "placement/memory_fit.h"
#include "placement/model_digest.h"
#include "placement/model_shapes.h"
#include "placement/predict.h"
#include "cpu_kernels/repack.h"
#include "placement/routing_stats.h"
#include "placement/strategies.h"

namespace hexe::place {
namespace {

struct Scenario {
  PlanModel m;
  HardwareProfile hw;
  PlanInputs in;
  Scenario(const char* model, const char* profile, int64_t context) {
    m = load_model_shape(model, QuantRecipe::Q4_K_M);
    hw = resolve_profile(profile);
    in.model = &m;
    in.hw = &hw;
    in.workload.context = context;
  }
};

// Qwen3-30B-A3B on a desktop with AVX-512 VNNI and room in host memory: the CPU copy's cases.
struct VnniScenario : Scenario {
  VnniScenario() : Scenario("qwen3-30b-a3b", "ryzen-7950x-rtx4080", 4096) {
    hw.cpu.isa = {"avx2", "avx512f", "avx512bw", "avx512_vnni"};
    hw.host_memory_bytes = 256ull << 30;
  }
};

TEST(Strategies, NamesRoundTrip) {
  for (Strategy s : all_strategies()) EXPECT_EQ(strategy_from_name(strategy_name(s)), s);
  EXPECT_FALSE(strategy_from_name("experts-gpu"));
}

TEST(Strategies, DeepSeekOnTheSeedDesktopIsRefusedWithAmounts) {
  Scenario s("deepseek-v3", "seed-desktop", 32768);
  auto plans = compare_plans(s.in);
  ASSERT_EQ(plans.size(), all_strategies().size());
  for (const auto& p : plans) {
    SCOPED_TRACE(p.strategy);
    // 377 GiB of weights cannot fit 64 GiB of RAM + 16 GiB of VRAM in any placement.
    EXPECT_FALSE(p.fits);
    ASSERT_FALSE(p.refusals.empty());
    bool host_refused = false;
    for (const auto& r : p.refusals) {
      EXPECT_NE(r.find("missing"), std::string::npos) << r;
      host_refused |= r.rfind("host", 0) == 0 || r.rfind("GPU", 0) == 0;
    }
    EXPECT_TRUE(host_refused);
    EXPECT_GT(p.decode.tokens_per_s, 0);  // still predicted, for comparison
  }
  // The amount missing is exactly the excess over capacity.
  const Plan& gpu = plans[1];
  ASSERT_EQ(gpu.strategy, "gpu");
  EXPECT_NE(gpu.refusals[0].find(format_bytes(gpu.gpu.total() - gpu.gpu.capacity) + " missing"), std::string::npos)
      << gpu.refusals[0];
  // MLA: the GPU holds the latent cache, 576 values x 61 layers x 32768 tokens x 2 bytes.
  EXPECT_EQ(gpu.gpu.kv, uint64_t(576) * 61 * 32768 * 2);
  // The CPU's cache holds f32 values (memory/kv_cache.h): 4 bytes each in host memory.
  const Plan& cpu = plans[0];
  ASSERT_EQ(cpu.strategy, "cpu");
  EXPECT_EQ(cpu.host.kv, uint64_t(576) * 61 * 32768 * 4);
  EXPECT_EQ(cpu.gpu.kv, 0u);
}

TEST(Strategies, DeepSeekFitsTheKTransformersMachine) {
  Scenario s("deepseek-v3", "ktransformers-ref", 32768);
  Plan p = make_plan(s.in, Strategy::ExpertsCpu);
  EXPECT_TRUE(p.fits) << describe_plan(p);
  EXPECT_LE(p.gpu.total(), p.gpu.capacity);
  EXPECT_FALSE(make_plan(s.in, Strategy::Gpu).fits);
  Plan a = make_plan(s.in, Strategy::Auto);
  EXPECT_TRUE(a.fits);
  EXPECT_EQ(a.strategy, "auto");
}

TEST(Strategies, AutoIsTheFastestFittingPlan) {
  Scenario s("qwen3-30b-a3b", "seed-desktop", 32768);
  auto plans = compare_plans(s.in);
  const Plan& a = plans.back();
  ASSERT_EQ(a.strategy, "auto");
  ASSERT_TRUE(a.fits);
  for (const auto& p : plans) {
    if (!p.fits || p.strategy == "auto") continue;
    // auto considers cpu, gpu, layers and the hybrid (+hot, streamed prefill).
    if (p.strategy == "cpu" || p.strategy == "gpu" || p.strategy == "layers" || p.strategy == "experts-cpu") {
      EXPECT_GE(a.decode.tokens_per_s, p.decode.tokens_per_s) << p.strategy;
    }
  }
  const Plan& layers = plans[2];
  ASSERT_EQ(layers.strategy, "layers");
  EXPECT_TRUE(layers.fits);
  EXPECT_GT(layers.gpu_layers, 0);
  EXPECT_LT(layers.gpu_layers, 48);
  // One more layer would not have fitted: the spare VRAM is below one layer's weights.
  ModelDigest d = digest_model(s.m);
  const auto& l = d.layers[size_t(layers.gpu_layers)];
  EXPECT_LT(gpu_spare_bytes(layers), int64_t(l.attn.bytes + l.router.bytes + l.experts.bytes));
}

TEST(Strategies, NoGpuProfileRefusesGpuStrategies) {
  Scenario s("qwen3-30b-a3b", "seed-desktop", 4096);
  s.hw.gpus.clear();
  Plan g = make_plan(s.in, Strategy::ExpertsCpu);
  EXPECT_FALSE(g.fits);
  ASSERT_FALSE(g.refusals.empty());
  EXPECT_NE(g.refusals[0].find("needs a GPU"), std::string::npos);
  Plan c = make_plan(s.in, Strategy::Cpu);
  EXPECT_TRUE(c.fits) << describe_plan(c);
  EXPECT_EQ(make_plan(s.in, Strategy::Auto).decode.tokens_per_s, c.decode.tokens_per_s);
}

TEST(Strategies, DecodeRespectsTheDramBound) {
  // experts-cpu decode cannot beat DRAM bandwidth / routed bytes read per token.
  for (const char* model : {"deepseek-v3", "qwen3-235b-a22b", "glm-4.5", "kimi-k2"}) {
    Scenario s(model, "epyc-9654-rtx4090", 8192);
    Plan p = make_plan(s.in, Strategy::ExpertsCpu);
    ModelDigest d = digest_model(s.m);
    double routed = 0;
    for (const auto& l : d.layers) routed += l.n_expert_used * l.expert_bytes();
    EXPECT_LT(p.decode.tokens_per_s, s.hw.cpu.dram_read_gbps * 1e9 / routed) << model;
    EXPECT_EQ(p.decode.bottleneck, "DRAM") << model;
  }
}

TEST(Strategies, StreamingWinsPrefillAboveBreakEven) {
  // n* = CPU FLOP/s x bytes per weight / (2 x PCIe B/s) tokens per expert. Below it the CPU
  // computes the experts faster than PCIe can upload them; far above it streaming wins.
  Scenario s("qwen3-235b-a22b", "epyc-9654-rtx4090", 65536);
  CostModel cm(s.hw);
  ModelDigest d = digest_model(s.m);
  const auto& l = d.layers[10];
  const double bpw = l.expert_bytes() / l.expert_params();
  const double n_star = cm.cpu_rate(l.experts.type) * bpw / (2 * cm.pcie_bw());
  auto tokens_for = [&](double per_expert) { return per_expert * l.n_expert / l.n_expert_used; };
  auto prefill = [&](Strategy st, double tokens) {
    Scenario t("qwen3-235b-a22b", "epyc-9654-rtx4090", 65536);
    t.in.workload.prompt = t.in.workload.ubatch = int64_t(tokens);
    return make_plan(t.in, st).prefill.tokens_per_s;
  };
  EXPECT_GT(prefill(Strategy::ExpertsCpu, tokens_for(n_star / 4)), prefill(Strategy::Stream, tokens_for(n_star / 4)));
  EXPECT_LT(prefill(Strategy::ExpertsCpu, tokens_for(n_star * 4)), prefill(Strategy::Stream, tokens_for(n_star * 4)));
}

// Stream staging holds about an eighth of a layer's experts per buffer (at least top-k), so the
// engine's copy of chunk j+1 runs under chunk j's compute; the staging still fits the card.
TEST(Strategies, StreamChunksPipelineALayersExperts) {
  Scenario s("qwen3-30b-a3b", "ryzen-7950x-rtx4080", 4096);
  const Plan p = make_plan(s.in, Strategy::Stream);
  const int E = s.m.spec.n_expert, k = s.m.spec.n_expert_used;
  int streamed = 0;
  for (const auto& l : p.layers) {
    if (!l.moe || l.experts_prefill != ExpertExec::Stream) continue;
    ++streamed;
    EXPECT_GE(l.stream_chunk, k) << l.layer;
    EXPECT_LE(l.stream_chunk, std::max(k, E / 8)) << l.layer;
  }
  EXPECT_GT(streamed, 0);
  EXPECT_TRUE(p.fits);
}

// Stream prefill is a pipeline: chunk j + 1's copy runs under chunk j's compute, so with compute-
// bound chunks a layer costs its first chunk's copy and then the compute; making each expert's
// compute dearer hides the later chunks' copies instead of adding to them.
TEST(Strategies, StreamPrefillHidesLaterCopiesUnderCompute) {
  Scenario s("qwen3-30b-a3b", "ryzen-7950x-rtx4080", 4096);
  const Plan p = make_plan(s.in, Strategy::Stream);
  const ModelDigest d = digest_model(s.m);
  const LayerPlan* lp = nullptr;
  for (const auto& l : p.layers)
    if (l.moe && l.experts_prefill == ExpertExec::Stream) lp = &l;
  ASSERT_NE(lp, nullptr);
  const LayerDigest& ld = d.layers[size_t(lp->layer)];
  const double T = 512, U = ld.touched(T), first = std::min(U, double(lp->stream_chunk));
  const double chunks = std::ceil(U / first);
  ASSERT_GT(chunks, 2);
  auto layer_s = [&](double expert_us) {
    HardwareProfile hw = s.hw;
    hw.efficiency.gpu_expert_prefill_us = expert_us;
    const CostModel cm(hw);
    return layer_cost(*lp, ld, s.m, cm, T, T / 2, 1, false).seconds();
  };
  const double chunk_copy = CostModel(s.hw).h2d(first * ld.expert_bytes(), 1).seconds();
  const double te = 2e-3;  // per expert: compute-bound chunks
  ASSERT_GT(te * first, chunk_copy);
  // Copy-bound at te = 0: n copies; compute-bound: one copy, then U x te.
  const double added = layer_s(te * 1e6) - layer_s(0);
  EXPECT_LT(added, U * te - 0.5 * (chunks - 1) * chunk_copy);
  EXPECT_GT(added, U * te - (chunks - 1) * chunk_copy - 1e-9);
}

TEST(Strategies, DecodeCopyOfTheExpertsOnlyWhereItFitsAndPays) {
  VnniScenario s;
  const Plan roomy = make_plan(s.in, Strategy::Cpu);
  ASSERT_EQ(roomy.cpu_weight_layout, "rows16");
  uint64_t repackable = 0;  // the q4_K, q6_K and q8_0 matrices (rows16_supported), not the embedding
  uint64_t expert_blocks = 0;  // the routed experts' GGUF bytes among them: the copy replaces those
  for (const auto& t : s.m.spec.tensors)
    if (t.role != TensorRole::TokenEmbd && (t.type == DType::Q4_K || t.type == DType::Q6_K || t.type == DType::Q8_0)) {
      repackable += cpu::rows16_group_bytes(t.type, t.ne[0]) * uint64_t((t.ne[1] + 15) / 16) * uint64_t(t.experts);
      if (t.experts > 1) expert_blocks += t.bytes;
    }
  EXPECT_EQ(roomy.repacked_bytes, repackable);
  ASSERT_GT(expert_blocks, repackable / 2);
  s.in.repack = false;  // the mapped blocks
  const Plan plain = make_plan(s.in, Strategy::Cpu);
  EXPECT_EQ(plain.cpu_weight_layout, "gguf");
  EXPECT_EQ(plain.repacked_bytes, 0u);
  s.in.repack.reset();
  // AVX2 without VNNI: the q4_K, q8_0, q4_0 and q4_1 matrices repacked (AVX2 Rows16 tiles), every other
  // matrix the CPU multiplies copied as it is (huge pages), the embedding not.
  s.hw.cpu.isa = {"avx2"};
  const Plan avx2 = make_plan(s.in, Strategy::Cpu);
  EXPECT_EQ(avx2.cpu_weight_layout, "rows16");
  uint64_t avx2_copy = 0, avx2_rows16 = 0;
  for (const auto& t : s.m.spec.tensors) {
    if (t.role == TensorRole::TokenEmbd || t.ne.size() < 2) continue;
    if (t.type == DType::Q4_K || t.type == DType::Q8_0 || t.type == DType::Q4_0 || t.type == DType::Q4_1) {
      const uint64_t b = cpu::rows16_group_bytes(t.type, t.ne[0]) * uint64_t((t.ne[1] + 15) / 16) * uint64_t(t.experts);
      avx2_copy += b, avx2_rows16 += b;
    } else {
      avx2_copy += t.bytes;
    }
  }
  ASSERT_GT(avx2_rows16, 0u);
  ASSERT_LT(avx2_rows16, avx2_copy);  // the q6_K matrices stay GGUF rows
  EXPECT_EQ(avx2.repacked_bytes, avx2_copy);
  EXPECT_EQ(avx2.host.weights - plain.host.weights, avx2_copy);
  // Neither AVX2 nor VNNI: every matrix copied as it is.
  s.hw.cpu.isa = {};
  const Plan scalar = make_plan(s.in, Strategy::Cpu);
  EXPECT_EQ(scalar.cpu_weight_layout, "gguf");
  uint64_t matrices = 0;
  for (const auto& t : s.m.spec.tensors)
    if (t.role != TensorRole::TokenEmbd && t.ne.size() >= 2) matrices += t.bytes;
  EXPECT_EQ(scalar.repacked_bytes, matrices);
  // Room for both: the copy sits beside the mapped file.
  EXPECT_FALSE(roomy.cpu_copy_replaces_mapped_experts);
  EXPECT_EQ(roomy.host.weights - plain.host.weights, repackable);
  s.hw.cpu.isa = {"avx512_vnni"};
  // The copy fits in place of the experts' blocks (only the CPU reads them here) but not beside
  // them (the margin is 1/33 of the capacity) ...
  const uint64_t added = repackable - expert_blocks;
  s.hw.host_memory_bytes = (plain.host.total() - plain.host.margin + added + expert_blocks / 2) * 33 / 32;
  const Plan in_place = make_plan(s.in, Strategy::Cpu);
  EXPECT_TRUE(in_place.fits);
  EXPECT_EQ(in_place.cpu_weight_layout, "rows16");
  EXPECT_TRUE(in_place.cpu_copy_replaces_mapped_experts);
  EXPECT_EQ(in_place.host.weights - plain.host.weights, added);
  // ... the model fits, the copy does not even in place.
  s.hw.host_memory_bytes = (plain.host.total() - plain.host.margin + added / 2) * 33 / 32;
  const Plan tight = make_plan(s.in, Strategy::Cpu);
  EXPECT_TRUE(tight.fits);
  EXPECT_EQ(tight.cpu_weight_layout, "gguf");
}

// Where the GPU uploads routed experts from host memory (a hot set's, at load), their mapped blocks
// stay in use, so the CPU's copy of them only ever sits beside the mapping.
TEST(Strategies, HotSetExpertsKeepTheirMappedBlocksBesideTheCopy) {
  VnniScenario s;
  RoutingStats st(s.m.spec.name, s.m.spec.n_expert, s.m.spec.n_expert_used);
  for (int l = 0; l < s.m.spec.n_layers; ++l)
    for (int e = 0; e < s.m.spec.n_expert; ++e) st.add(l, e, 1 + (e * 7 + l) % 13);
  s.in.stats = &st;
  const Plan hot = make_plan(s.in, Strategy::ExpertsCpuHot);
  ASSERT_EQ(hot.cpu_weight_layout, "rows16");
  for (const auto& l : hot.layers) {
    ASSERT_TRUE(!l.moe || !l.gpu_experts.empty()) << "layer " << l.layer << " has no hot set";
    EXPECT_FALSE(l.moe && experts_read_only_by_cpu(l));
  }
  s.in.repack = false;
  const Plan mapped = make_plan(s.in, Strategy::ExpertsCpuHot);
  EXPECT_EQ(hot.host.weights - mapped.host.weights, hot.repacked_bytes);
  s.in.repack.reset();  // no room beside: no copy, where a CPU-only plan would take it in place
  s.hw.host_memory_bytes = (mapped.host.total() - mapped.host.margin + hot.repacked_bytes / 2) * 33 / 32;
  const Plan tight = make_plan(s.in, Strategy::ExpertsCpuHot);
  EXPECT_EQ(tight.cpu_weight_layout, "gguf");
  EXPECT_FALSE(tight.cpu_copy_replaces_mapped_experts);
}

// --repack on|off (PlanInputs::repack) decides over the fit rule: off keeps the mapped blocks where
// the copy fits; on takes the copy where it does not, and the plan then says it does not fit.
TEST(Strategies, UsersRepackChoiceWinsOverTheFitRule) {
  VnniScenario s;
  s.in.repack = false;
  const Plan off = make_plan(s.in, Strategy::Cpu);
  EXPECT_EQ(off.cpu_weight_layout, "gguf");
  EXPECT_EQ(off.repacked_bytes, 0u);
  EXPECT_TRUE(off.fits);
  s.in.repack.reset();
  const Plan roomy = make_plan(s.in, Strategy::Cpu);
  ASSERT_EQ(roomy.cpu_weight_layout, "rows16");
  // The model just fits, the copy does not even in place of the experts' blocks: auto reads the
  // mapped blocks, on copies and does not fit.
  s.hw.host_memory_bytes = (off.host.total() - off.host.margin + 1) * 33 / 32;
  EXPECT_EQ(make_plan(s.in, Strategy::Cpu).cpu_weight_layout, "gguf");
  s.in.repack = true;
  const Plan on = make_plan(s.in, Strategy::Cpu);
  EXPECT_EQ(on.cpu_weight_layout, "rows16");
  EXPECT_EQ(on.repacked_bytes, roomy.repacked_bytes);
  EXPECT_FALSE(on.fits);
}

// experts-cpu+hot whose statistics saw only experts that are all hot (gpu_hit 1 in every layer):
// the CPU still computes the others when they come up, so it still gets the AVX-512 copy.
TEST(Strategies, HotSetsKeepTheCpuCopyOfTheOtherExperts) {
  VnniScenario s;
  RoutingStats st(s.m.spec.name, s.m.spec.n_expert, s.m.spec.n_expert_used);
  for (int l = 0; l < s.m.spec.n_layers; ++l)
    for (int e = 0; e < s.m.spec.n_expert_used; ++e) st.add(l, e, 100);
  s.in.stats = &st;
  const Plan hot = make_plan(s.in, Strategy::ExpertsCpuHot);
  int covered = 0;  // layers whose hot set holds (nearly) every activation the statistics saw
  for (const auto& l : hot.layers)
    if (l.moe && !l.gpu_experts.empty() && l.gpu_hit >= 0.95) ++covered;
  ASSERT_GT(covered, 0);
  EXPECT_EQ(hot.cpu_weight_layout, "rows16");
}

// The engine hands a decode step over by pinned flags when every GPU layer's routed experts run
// on the CPU (experts-cpu), not when some run on the GPU (gpu, a hot set); the flagged step's
// prediction pays the flag hand-off, not the event one.
TEST(Strategies, FlaggedDecodeWhereEveryGpuLayersExpertsAreOnTheCpu) {
  Scenario s("qwen3-30b-a3b", "ryzen-7950x-rtx4080", 4096);
  s.hw.host_memory_bytes = 256ull << 30;
  const Plan cpu = make_plan(s.in, Strategy::ExpertsCpu);
  EXPECT_TRUE(flagged_decode(cpu));
  EXPECT_FALSE(flagged_decode(make_plan(s.in, Strategy::Gpu)));
  Plan hot = cpu;
  for (auto& l : hot.layers)
    if (l.moe) l.gpu_experts = {0};
  EXPECT_FALSE(flagged_decode(hot));
  // A slower flag hand-off slows the experts-cpu decode prediction; the event one does not.
  const double base = cpu.decode.seconds;
  s.hw.efficiency.handoff_us += 1000;
  EXPECT_NEAR(make_plan(s.in, Strategy::ExpertsCpu).decode.seconds, base, 1e-12);
  s.hw.efficiency.flag_handoff_us += 1000;
  EXPECT_GT(make_plan(s.in, Strategy::ExpertsCpu).decode.seconds, base + 0.9e-3 * s.m.spec.n_layers);
}

}  // namespace
}  // namespace hexe::place

// User placement rules: parsing, first-match-wins, refusals of bad rules, and their effect on a
// plan's tensors, ops and memory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "memory/error.h"
#include "placement/hardware_profile.h"
#include "placement/model_shapes.h"
#include "placement/override_rules.h"
#include "placement/strategies.h"
#include "scratch_path.h"

namespace hexe::place {
namespace {

TEST(OverrideRules, ParseAndMatch) {
  OverrideRules r;
  r.add("blk\\.(1[0-9])\\.ffn_.*_exps=gpu");
  r.add("ffn_.*_exps=cpu");
  r.add("a=b=c=cpu");  // the last '=' splits: the regex is "a=b=c"
  ASSERT_EQ(r.size(), 3u);
  ASSERT_NE(r.match("blk.12.ffn_up_exps.weight"), nullptr);
  EXPECT_EQ(r.match("blk.12.ffn_up_exps.weight")->device, Device::Gpu);  // first match wins
  EXPECT_EQ(r.match("blk.2.ffn_up_exps.weight")->device, Device::Cpu);
  EXPECT_EQ(r.match("blk.2.attn_q.weight"), nullptr);
  EXPECT_EQ(r.match("xa=b=cx")->pattern, "a=b=c");
}

TEST(OverrideRules, BadRulesAreRefused) {
  OverrideRules r;
  EXPECT_THROW(r.add("ffn_.*_exps"), Error);       // no device
  EXPECT_THROW(r.add("ffn_.*_exps=tpu"), Error);   // unknown device
  EXPECT_THROW(r.add("ffn_(=cpu"), Error);         // bad regex
  try {
    r.add("ffn_(=cpu");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ffn_("), std::string::npos) << e.what();
  }
  EXPECT_TRUE(r.empty());
}

TEST(OverrideRulesJson, RulesFile) {
  const std::string path = hexe::testing::scratch_path("rules_test.json");
  std::ofstream(path) << R"({"rules": [{"match": "output\\.weight", "device": "cpu"}, {"match": "exps", "device": "gpu"}]})";
  OverrideRules r;
  r.load_file(path);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.match("output.weight")->device, Device::Cpu);
  std::ofstream(path) << R"({"rules": [{"match": "x"}]})";
  OverrideRules bad;
  EXPECT_THROW(bad.load_file(path), Error);
  std::filesystem::remove(path);
}

TEST(OverrideRules, OverrideAStrategy) {
  PlanModel m = load_model_shape("qwen3-30b-a3b", QuantRecipe::Q4_K_M);
  HardwareProfile hw = resolve_profile("seed-desktop");
  PlanInputs in;
  in.model = &m;
  in.hw = &hw;
  in.workload.context = 4096;
  in.repack = false;  // host memory holds the mapped blocks only (the CPU's copy: strategies_test)
  Plan base = make_plan(in, Strategy::ExpertsCpu);
  // Routed experts of layers 0-9 onto the GPU, like `-ot 'blk\.[0-9]\.ffn_.*_exps=CUDA0'`.
  OverrideRules r;
  r.add("blk\\.[0-9]\\.ffn_.*_exps=gpu");
  in.rules = &r;
  Plan p = make_plan(in, Strategy::ExpertsCpu);
  int moved = 0;
  for (const auto& t : p.tensors)
    if (!t.rule.empty()) {
      ++moved;
      EXPECT_EQ(t.device, Device::Gpu) << t.name;
    }
  EXPECT_EQ(moved, 30);  // 10 layers x gate/up/down
  for (const auto& l : p.layers)
    EXPECT_EQ(l.experts_decode, l.layer < 10 ? ExpertExec::Gpu : ExpertExec::Cpu) << l.layer;
  uint64_t exp_bytes = 0;
  for (const auto& t : m.spec.tensors)
    if (t.layer >= 0 && t.layer < 10 && is_routed_expert(t.role)) exp_bytes += t.bytes;
  EXPECT_EQ(p.gpu.weights, base.gpu.weights + exp_bytes);
  EXPECT_EQ(p.host.weights, base.host.weights - exp_bytes);
  // The prediction follows the move (VRAM reads and the host's routing instead of DRAM reads).
  EXPECT_NE(p.decode.tokens_per_s, base.decode.tokens_per_s);
  // Attention forced to the CPU: the layer's attention op moves with its weights.
  OverrideRules a;
  a.add("blk\\.0\\.attn_=cpu");
  in.rules = &a;
  Plan q = make_plan(in, Strategy::Gpu);
  EXPECT_EQ(q.layers[0].attn, Device::Cpu);
  EXPECT_EQ(q.layers[1].attn, Device::Gpu);
}

}  // namespace
}  // namespace hexe::place

// A plan saved as JSON carries every tensor's device and type, every layer's op devices and the
// predictions, consistent with the in-memory plan.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "placement/hardware_profile.h"
#include "placement/model_shapes.h"
#include "placement/strategies.h"
#include "scratch_path.h"

namespace hexe::place {
namespace {

TEST(PlanJson, SavedPlanMatchesThePlan) {
  PlanModel m = load_model_shape("glm-4.5-air", QuantRecipe::Q4_K_M);
  HardwareProfile hw = resolve_profile("threadripper-7965wx-rtx4090");
  PlanInputs in;
  in.model = &m;
  in.hw = &hw;
  in.workload.context = 16384;
  Plan p = make_plan(in, Strategy::ExpertsCpuHot);
  const std::string path = hexe::testing::scratch_path("plan_json_test.json");
  save_plan(p, path);
  nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
  std::filesystem::remove(path);
  EXPECT_EQ(j.at("strategy"), "experts-cpu+hot");
  EXPECT_EQ(j.at("fits"), p.fits);
  ASSERT_EQ(j.at("tensors").size(), m.spec.tensors.size());
  uint64_t gpu_bytes = 0;
  for (size_t i = 0; i < m.spec.tensors.size(); ++i) {
    const auto& t = j.at("tensors")[i];
    EXPECT_EQ(t.at("name"), m.spec.tensors[i].name);
    EXPECT_EQ(t.at("type"), std::string(dtype_name(m.spec.tensors[i].type)));
    if (t.at("device") == "gpu") gpu_bytes += t.at("bytes").get<uint64_t>();
  }
  EXPECT_LE(gpu_bytes, j.at("memory").at("gpu").at("weights").get<uint64_t>());
  EXPECT_EQ(j.at("memory").at("gpu").at("total").get<uint64_t>(), p.gpu.total());
  ASSERT_EQ(j.at("layers").size(), size_t(m.spec.n_layers));
  EXPECT_EQ(j.at("layers")[0].at("moe"), false);  // GLM-4.5-Air: first layer dense
  EXPECT_EQ(j.at("layers")[1].at("experts_decode"), "cpu");
  EXPECT_EQ(j.at("layers")[1].at("kv"), "gpu");
  EXPECT_DOUBLE_EQ(j.at("prediction").at("decode").at("tokens_per_s").get<double>(), p.decode.tokens_per_s);
  EXPECT_EQ(j.at("workload").at("context"), 16384);
}

Plan sample_plan(Strategy s) {
  static PlanModel m = load_model_shape("qwen3-30b-a3b", QuantRecipe::Q4_K_M);
  static HardwareProfile hw = resolve_profile("ryzen-7950x-rtx4080");
  PlanInputs in;
  in.model = &m;
  in.hw = &hw;
  in.workload.context = 8192;
  return make_plan(in, s);
}

TEST(PlanJson, LoadGivesBackTheSavedPlan) {
  for (Strategy s : {Strategy::Cpu, Strategy::ExpertsCpuHot, Strategy::Cache}) {
    Plan p = sample_plan(s);
    p.cpu_copy_replaces_mapped_experts = s == Strategy::Cpu;  // a field a default would hide
    const std::string path = hexe::testing::scratch_path("plan_load_test.json");
    save_plan(p, path);
    const Plan q = load_plan(path);
    std::filesystem::remove(path);
    // Same JSON both ways: every field survived.
    EXPECT_EQ(plan_to_json_string(q), plan_to_json_string(p)) << p.strategy;
    EXPECT_EQ(plan_uses_gpu(q), s != Strategy::Cpu) << p.strategy;
  }
}

TEST(PlanJson, BadPlansNameTheField) {
  const nlohmann::json good = nlohmann::json::parse(plan_to_json_string(sample_plan(Strategy::Cpu)));
  auto expect_error = [&](nlohmann::json j, const std::string& needle) {
    try {
      plan_from_json(j);
      ADD_FAILURE() << "accepted a plan that should fail with " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  nlohmann::json j = good;
  j.erase("cpu_threads");
  expect_error(j, "missing field 'cpu_threads'");
  j = good;
  j["layers"][3]["attn"] = "tpu";
  expect_error(j, "'attn' is 'tpu'");
  j = good;
  j["tensors"][0]["type"] = "q9_9";
  expect_error(j, "type 'q9_9'");
  j = good;
  j["workload"]["context"] = "big";
  expect_error(j, "'context' has the wrong type");
  j = good;
  j["layers"].erase(2);
  expect_error(j, "layers[2] has layer 3");
  expect_error(nlohmann::json::array(), "expected an object");
  EXPECT_THROW(load_plan("/nonexistent/plan.json"), Error);
}

}  // namespace
}  // namespace hexe::place

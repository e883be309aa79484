// Shipped model shapes: parameter counts against the published totals/active counts, MLA and GQA
// KV sizes, and shape-file validation.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "placement/model_shapes.h"

namespace hexe::place {
namespace {

struct Published {
  const char* name;
  double total_b, active_b;  // billions, as the model cards state them
};

// Model cards: DeepSeek-V3 671B/37B, Kimi-K2 1T (1.04T)/32B, Qwen3-235B-A22B 235B/22B,
// Qwen3-30B-A3B 30.5B/3.3B, GLM-4.5 355B/32B, GLM-4.5-Air 106B/12B, gpt-oss-120b 117B/5.1B,
// Llama 4 Maverick 400B/17B, MiniMax-M2 230B/10B, Mixtral-8x22B 141B/39B.
const Published kModels[] = {
    {"deepseek-v3", 671, 37},       {"kimi-k2", 1040, 32},     {"qwen3-235b-a22b", 235, 22},
    {"qwen3-30b-a3b", 30.5, 3.3},   {"glm-4.5", 355, 32},      {"glm-4.5-air", 106, 12},
    {"gpt-oss-120b", 117, 5.1},     {"llama-4-maverick", 400, 17}, {"minimax-m2", 230, 10},
    {"mixtral-8x22b", 141, 39},
};

TEST(ModelShapes, ParameterCountsMatchModelCards) {
  for (const auto& pub : kModels) {
    SCOPED_TRACE(pub.name);
    PlanModel m = load_model_shape(pub.name, QuantRecipe::BF16);
    const double total = double(m.spec.params_total()) / 1e9, active = double(m.spec.params_active()) / 1e9;
    double embd = 0;
    for (const auto& t : m.spec.tensors)
      if (t.role == TensorRole::TokenEmbd) embd = double(t.n_elements()) / 1e9;
    // Totals are rounded on the cards (and MTP layers are left out here): 3%. Cards differ in
    // whether the input embedding counts as active (gpt-oss does not): either reading, 12%.
    EXPECT_NEAR(total / pub.total_b, 1.0, 0.03) << total << "B";
    const double err = std::min(std::abs(active / pub.active_b - 1.0), std::abs((active - embd) / pub.active_b - 1.0));
    EXPECT_LT(err, 0.12) << active << "B active, " << embd << "B of it the embedding";
    for (const auto& t : m.spec.tensors) {
      // bf16 recipe: matrices bf16 (GPT-OSS experts stay MXFP4), vectors and the router f32.
      const bool ok = t.type == DType::BF16 || t.type == DType::F32 || t.type == DType::MXFP4;
      EXPECT_TRUE(ok) << t.name << " " << dtype_name(t.type);
      EXPECT_EQ(t.bytes, tensor_bytes(t.type, t.ne)) << t.name;
    }
  }
}

TEST(ModelShapes, DeepSeekMlaCachesTheLatent) {
  PlanModel m = load_model_shape("deepseek-r1", QuantRecipe::Q4_K_M);  // alias of deepseek-v3
  EXPECT_EQ(m.spec.name, "DeepSeek-V3");
  ASSERT_TRUE(m.attn.mla);
  EXPECT_EQ(m.attn.kv_lora_rank, 512);
  EXPECT_EQ(m.attn.qk_rope_dim, 64);
  EXPECT_EQ(m.attn.kv_values_per_token_layer(), 576);
  // 32768 tokens x 61 layers x 576 values x 2 bytes.
  EXPECT_EQ(m.attn.kv_bytes(32768, 61, 2), uint64_t(32768) * 61 * 576 * 2);
  // The same geometry comes back when derived from the tensor list alone (the -m FILE path).
  AttentionShape a = attention_shape(m.spec);
  EXPECT_TRUE(a.mla);
  EXPECT_EQ(a.kv_lora_rank, 512);
  EXPECT_EQ(a.qk_rope_dim, 64);
  EXPECT_EQ(a.head_dim_k, 192);
  EXPECT_EQ(a.head_dim_v, 128);
  // Absorbed decode attention: 2 x heads x ctx x (2 x 512 + 64).
  EXPECT_DOUBLE_EQ(a.flops_per_query(1000), 2.0 * 128 * 1000 * (2 * 512 + 64));
}

TEST(ModelShapes, GqaAndSlidingWindowKv) {
  PlanModel q = load_model_shape("qwen3-30b-a3b", QuantRecipe::Q8_0);
  EXPECT_FALSE(q.attn.mla);
  EXPECT_EQ(q.attn.kv_values_per_token_layer(), 4 * 256);  // 4 KV heads x (128 + 128)
  AttentionShape a = attention_shape(q.spec);
  EXPECT_EQ(a.n_head_kv, 4);
  EXPECT_EQ(a.head_dim_k, 128);
  PlanModel g = load_model_shape("gpt-oss-120b", QuantRecipe::Q4_K_M);
  // 18 full layers x 4096 tokens + 18 sliding layers x 128 tokens, 8 x (64 + 64) values, F16.
  EXPECT_EQ(g.attn.kv_bytes(4096, 36, 2), uint64_t(18 * 4096 + 18 * 128) * 8 * 128 * 2);
}

TEST(ModelShapesJson, BadShapesNameTheField) {
  nlohmann::json j = {{"name", "x"}, {"arch", "qwen3moe"}, {"n_layers", 2}, {"n_embd", 64}, {"n_vocab", 100},
                      {"attention", {{"type", "gqa"}, {"n_head", 4}, {"n_head_kv", 2}, {"head_dim", 16}}},
                      {"ffn", {{"n_expert", 4}, {"n_expert_used", 8}, {"n_ff_exp", 32}}}};
  try {
    model_from_shape(j, QuantRecipe::F16, "t.json");
    FAIL() << "n_expert_used > n_expert accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.json ffn"), std::string::npos) << e.what();
  }
  j["ffn"]["n_expert_used"] = 2;
  j["attention"].erase("head_dim");
  try {
    model_from_shape(j, QuantRecipe::F16, "t.json");
    FAIL() << "missing head_dim accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'head_dim'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_model_shape("no-such-model", QuantRecipe::Q4_K_M), Error);
}

}  // namespace
}  // namespace hexe::place

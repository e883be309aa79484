// Quantisation recipes: per-tensor types as llama.cpp's llama-quantize assigns them, tensor
// bytes by hand, and whole-model sizes against published GGUF files.
#include <gtest/gtest.h>

#include "placement/model_shapes.h"
#include "placement/quant_recipe.h"

namespace hexe::place {
namespace {

const TensorSpec& find(const ModelSpec& s, const std::string& name) {
  for (const auto& t : s.tensors)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

TEST(QuantRecipe, NamesRoundTrip) {
  for (const auto& n : recipe_names()) {
    auto r = recipe_from_name(n);
    ASSERT_TRUE(r) << n;
    EXPECT_EQ(recipe_name(*r), n);
  }
  EXPECT_EQ(recipe_from_name("Q4_K_M"), QuantRecipe::Q4_K_M);
  EXPECT_FALSE(recipe_from_name("q3_k_xl"));
}

TEST(QuantRecipe, TensorBytesByHand) {
  // 1536 rows of 4096: 16 q4_K blocks of 144 bytes per row.
  EXPECT_EQ(tensor_bytes(DType::Q4_K, {4096, 1536}), uint64_t(1536) * 16 * 144);
  // Stacked experts [2048, 768, 128] in q6_K: 8 blocks of 210 bytes per row, 768 x 128 rows.
  EXPECT_EQ(tensor_bytes(DType::Q6_K, {2048, 768, 128}), uint64_t(768) * 128 * 8 * 210);
  EXPECT_EQ(tensor_bytes(DType::F32, {2048}), uint64_t(2048) * 4);
}

TEST(QuantRecipe, Q4KMFollowsLlamaCppRules) {
  PlanModel m = load_model_shape("qwen3-30b-a3b", QuantRecipe::Q4_K_M);  // 48 layers
  const auto& s = m.spec;
  EXPECT_EQ(find(s, "token_embd.weight").type, DType::Q4_K);
  EXPECT_EQ(find(s, "output.weight").type, DType::Q6_K);
  EXPECT_EQ(find(s, "output_norm.weight").type, DType::F32);
  EXPECT_EQ(find(s, "blk.5.ffn_gate_inp.weight").type, DType::F32);  // router
  EXPECT_EQ(find(s, "blk.5.attn_q_norm.weight").type, DType::F32);
  EXPECT_EQ(find(s, "blk.5.attn_q.weight").type, DType::Q4_K);
  EXPECT_EQ(find(s, "blk.5.ffn_gate_exps.weight").type, DType::Q4_K);
  // use_more_bits(i, 48): i < 6, i >= 42, or (i - 6) % 3 == 2.
  for (int il = 0; il < 48; ++il) {
    const bool more = il < 6 || il >= 42 || (il - 6) % 3 == 2;
    const DType want = more ? DType::Q6_K : DType::Q4_K;
    EXPECT_EQ(find(s, "blk." + std::to_string(il) + ".ffn_down_exps.weight").type, want) << il;
    EXPECT_EQ(find(s, "blk." + std::to_string(il) + ".attn_v.weight").type, want) << il;
    EXPECT_EQ(find(s, "blk." + std::to_string(il) + ".attn_k.weight").type, DType::Q4_K) << il;
  }
  const auto& t = find(s, "blk.8.ffn_down_exps.weight");
  EXPECT_EQ(t.bytes, tensor_bytes(DType::Q6_K, t.ne));
}

TEST(QuantRecipe, MixtralAndRowFallbacks) {
  PlanModel mx = load_model_shape("mixtral-8x22b", QuantRecipe::Q4_K_M);
  EXPECT_EQ(find(mx.spec, "blk.20.attn_v.weight").type, DType::Q8_0);  // 8 experts: attn_v/k q8_0
  EXPECT_EQ(find(mx.spec, "blk.20.attn_k.weight").type, DType::Q8_0);
  EXPECT_EQ(find(mx.spec, "blk.20.attn_output.weight").type, DType::Q5_K);
  PlanModel g = load_model_shape("gpt-oss-120b", QuantRecipe::Q4_K_M);
  // Rows of 2880 hold no whole 256-blocks: q4_K -> q5_0; the output head -> q8_0.
  EXPECT_EQ(find(g.spec, "blk.3.attn_q.weight").type, DType::Q5_0);
  EXPECT_EQ(find(g.spec, "output.weight").type, DType::Q8_0);
  EXPECT_EQ(find(g.spec, "blk.3.ffn_up_exps.weight").type, DType::MXFP4);  // shipped MXFP4, kept
  PlanModel q8 = load_model_shape("qwen3-30b-a3b", QuantRecipe::Q8_0);
  EXPECT_EQ(find(q8.spec, "output.weight").type, DType::Q8_0);
  EXPECT_EQ(find(q8.spec, "blk.0.ffn_down_exps.weight").type, DType::Q8_0);
  PlanModel q40 = load_model_shape("qwen3-30b-a3b", QuantRecipe::Q4_0);
  EXPECT_EQ(find(q40.spec, "output.weight").type, DType::Q6_K);
  EXPECT_EQ(find(q40.spec, "blk.0.ffn_down_exps.weight").type, DType::Q4_0);
}

TEST(QuantRecipe, ModelSizesMatchPublishedGgufs) {
  // File sizes of widely used Q4_K_M GGUFs (decimal GB, tensor data dominates): DeepSeek-R1
  // 404 GB (unsloth), Qwen3-235B-A22B 142 GB, Qwen3-30B-A3B 18.6 GB, Llama 4 Maverick 243 GB
  // (ollama llama4:maverick-q4_K_M), Mixtral-8x22B 85.6 GB.
  struct Case { const char* name; double gb; };
  for (const Case& c : {Case{"deepseek-r1", 404.4}, Case{"qwen3-235b-a22b", 142.2}, Case{"qwen3-30b-a3b", 18.6},
                        Case{"llama-4-maverick", 243.0}, Case{"mixtral-8x22b", 85.6}}) {
    PlanModel m = load_model_shape(c.name, QuantRecipe::Q4_K_M);
    const double gb = double(m.spec.bytes_total()) / 1e9;
    EXPECT_NEAR(gb / c.gb, 1.0, 0.03) << c.name << ": " << gb << " GB";
  }
}

}  // namespace
}  // namespace hexe::place

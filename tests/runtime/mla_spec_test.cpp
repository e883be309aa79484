// deepseek2/glm4moe hyper-parameters read from GGUF and HF (both MLA layouts), the MLA KV-cache
// size, and the latent cache's lazy allocation.
#include <gtest/gtest.h>

#include <cmath>

#include "memory/kv_cache.h"
#include "placement/model_spec.h"
#include "runtime/model/model_file.h"
#include "runtime/model/spec_builder.h"

namespace hexe {
namespace {

std::string fixture(const std::string& rel) {
  return std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/models/" + rel;
}

place::ModelSpec spec_of(const std::string& rel) { return build_model_spec(*ModelFile::open(fixture(rel), false)); }

TEST(MlaSpec, BothGgufLayoutsAndHfGiveTheSameMlaShape) {
  // deepseek3-a: newer layout (attn_k_b/attn_v_b, head_count_kv 1, key_length 48 = kv_lora + rope).
  for (const char* rel : {"deepseek3-a/deepseek3-a-f32.gguf", "deepseek3-a/hf"}) {
    const auto s = spec_of(rel);
    SCOPED_TRACE(rel);
    EXPECT_EQ(s.arch, "deepseek2");
    EXPECT_EQ(s.q_lora_rank, 48);
    EXPECT_EQ(s.kv_lora_rank, 32);
    EXPECT_EQ(s.qk_nope_dim, 32);
    EXPECT_EQ(s.qk_rope_dim, 16);
    EXPECT_EQ(s.v_head_dim, 32);
    EXPECT_EQ(s.head_dim, 48);
    EXPECT_EQ(s.n_head_kv, 4);
    EXPECT_EQ(s.n_group, 4);
    EXPECT_EQ(s.topk_group, 2);
    EXPECT_EQ(s.n_leading_dense, 1);
    EXPECT_EQ(s.n_ff_shexp, 16);
    EXPECT_EQ(s.router_fn, place::RouterFn::Sigmoid);
    EXPECT_TRUE(s.norm_topk_prob);
    EXPECT_FLOAT_EQ(s.routed_scaling, 2.5f);
    EXPECT_EQ(s.rope_type, place::RopeType::Interleaved);
    EXPECT_FLOAT_EQ(s.rope_scaling_factor, 8.f);
    EXPECT_EQ(s.rope_orig_ctx, 64);
    const double m = 1 + 0.1 * std::log(8.0);
    EXPECT_NEAR(s.attn_scale_mul, m * m, 1e-6);
    EXPECT_FLOAT_EQ(s.rope_attn_factor, 1.f);
    EXPECT_EQ(s.kv_bytes_per_token(2), 3u * (32 + 16) * 2);  // latent + rope per layer, no V
  }
  // deepseek3-b: older layout (attn_kv_b), no q_lora, plain RoPE.
  for (const char* rel : {"deepseek3-b/deepseek3-b-f32.gguf", "deepseek3-b/hf"}) {
    const auto s = spec_of(rel);
    SCOPED_TRACE(rel);
    EXPECT_EQ(s.q_lora_rank, 0);
    EXPECT_EQ(s.kv_lora_rank, 32);
    EXPECT_EQ(s.qk_nope_dim, 32);
    EXPECT_EQ(s.v_head_dim, 32);
    EXPECT_EQ(s.n_group, 2);
    EXPECT_EQ(s.topk_group, 1);
    EXPECT_EQ(s.n_ff_shexp, 32);  // 2 shared experts fused
    EXPECT_FALSE(s.norm_topk_prob);
    EXPECT_FLOAT_EQ(s.rope_scaling_factor, 1.f);
    EXPECT_FLOAT_EQ(s.attn_scale_mul, 1.f);
  }
}

// DeepSeek-V2 (deepseek2-lite-a): softmax routing (GGUF expert_gating_func 1; HF: the
// DeepseekV2ForCausalLM architecture), group-limited over 4 groups, no selection bias.
TEST(MlaSpec, DeepseekV2SoftmaxGroupRouting) {
  for (const char* rel : {"deepseek2-lite-a/deepseek2-lite-a-f32.gguf", "deepseek2-lite-a/hf"}) {
    const auto s = spec_of(rel);
    SCOPED_TRACE(rel);
    EXPECT_EQ(s.router_fn, place::RouterFn::Softmax);
    EXPECT_EQ(s.gating, place::GatingOrder::SoftmaxThenTopK);
    EXPECT_EQ(s.n_group, 4);
    EXPECT_EQ(s.topk_group, 2);
    EXPECT_EQ(s.n_expert_used, 3);
    EXPECT_FALSE(s.norm_topk_prob);
    EXPECT_FLOAT_EQ(s.routed_scaling, 2.f);
    EXPECT_EQ(s.q_lora_rank, 0);
    EXPECT_EQ(s.n_leading_dense, 1);
    EXPECT_FLOAT_EQ(s.rope_scaling_factor, 40.f);
    EXPECT_EQ(s.rope_orig_ctx, 64);
    const double m = 1 + 0.1 * 0.707 * std::log(40.0);
    EXPECT_NEAR(s.attn_scale_mul, m * m, 1e-5);
  }
}

TEST(MlaSpec, Glm4MoePartialRopeAndNextnBlock) {
  const auto g = spec_of("glm4moe-a/glm4moe-a-f32.gguf");
  EXPECT_EQ(g.n_layers, 4);
  EXPECT_EQ(g.n_nextn, 1);
  EXPECT_EQ(g.rope_dim, 16);
  EXPECT_TRUE(g.attn_qkv_bias);
  EXPECT_EQ(g.router_fn, place::RouterFn::Sigmoid);
  const auto h = spec_of("glm4moe-a/hf");
  EXPECT_EQ(h.n_layers, 3);  // HF has no MTP block
  EXPECT_EQ(h.n_nextn, 0);
  EXPECT_EQ(h.rope_dim, 16);
  EXPECT_EQ(h.rope_type, place::RopeType::Neox);
}

TEST(MlaSpec, DeepseekV3KvCacheIsTheLatent) {
  place::ModelSpec s;  // DeepSeek-V3's attention shape
  s.n_layers = 61;
  s.n_head = s.n_head_kv = 128;
  s.head_dim = 192;
  s.kv_lora_rank = 512;
  s.qk_rope_dim = 64;
  s.qk_nope_dim = 128;
  s.v_head_dim = 128;
  EXPECT_EQ(s.kv_bytes_per_token(2), 70272u);  // 61 x 576 x 2
  EXPECT_EQ(s.kv_bytes_per_token(2) * 131072, 9210691584u);  // 9.2 GB at 128K tokens

  // The cache holds 576 floats per token per layer, no V, and allocates pages only as tokens come.
  mem::KvCacheConfig c;
  c.n_layers = 61;
  c.k_row_floats = 576;
  c.v_row_floats = 0;
  c.page_tokens = 64;
  c.max_tokens = 131072;
  mem::KvCache kv(c);
  EXPECT_EQ(kv.bytes_allocated(), 0u);
  const int seq = kv.create_sequence();
  kv.reserve(seq, 65);
  EXPECT_EQ(kv.pages_in_use(), 2);
  EXPECT_EQ(kv.bytes_allocated(), 2u * 61 * 64 * 576 * sizeof(float));
  EXPECT_EQ(kv.k_row(seq, 60, 1) - kv.k_row(seq, 60, 0), 576);  // one latent row per token
}

}  // namespace
}  // namespace hexe

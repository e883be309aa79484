// ModelSpec: derived figures on a hand-computed spec, and build_model_spec on small written files.
#include <gtest/gtest.h>

#include "memory/error.h"
#include "runtime/model/model_file.h"
#include "runtime/model/spec_builder.h"
#include "tests/runtime/gguf_test_util.h"

namespace hexe {
namespace {

using place::GatingOrder;
using place::ModelSpec;
using place::RopeType;
using place::TensorRole;
using place::TensorSpec;

TensorSpec ts(std::string name, TensorRole role, std::vector<int64_t> ne, DType type = DType::F32) {
  TensorSpec t;
  t.name = std::move(name);
  t.role = role;
  t.ne = std::move(ne);
  t.type = type;
  t.bytes = row_bytes(type, uint64_t(t.ne[0])) * uint64_t(t.n_elements() / t.ne[0]);
  if (t.ne.size() == 3) t.experts = int(t.ne[2]);
  return t;
}

// One layer, hidden 64, 4 experts (top-1) of ffn 32 in Q8_0, vocab 100 in F16, 2 kv heads x 16.
ModelSpec hand_spec(bool tied) {
  ModelSpec s;
  s.n_layers = 1;
  s.n_head_kv = 2;
  s.head_dim = 16;
  s.n_expert = 4;
  s.n_expert_used = 1;
  s.tied_embeddings = tied;
  s.tensors.push_back(ts("token_embd.weight", TensorRole::TokenEmbd, {64, 100}, DType::F16));
  if (!tied) s.tensors.push_back(ts("output.weight", TensorRole::Output, {64, 100}, DType::F16));
  s.tensors.push_back(ts("blk.0.attn_q.weight", TensorRole::AttnQ, {64, 64}));
  s.tensors.push_back(ts("blk.0.ffn_gate_exps.weight", TensorRole::ExpertGate, {64, 32, 4}, DType::Q8_0));
  s.tensors.push_back(ts("blk.0.ffn_down_exps.weight", TensorRole::ExpertDown, {32, 64, 4}, DType::Q8_0));
  s.tensors.push_back(ts("blk.0.ffn_gate_shexp.weight", TensorRole::SharedGate, {64, 32}));
  return s;
}

TEST(ModelSpecDerived, HandComputedFigures) {
  const ModelSpec s = hand_spec(false);
  // Elements: embd 6400, output 6400, q 4096, gate 8192, down 8192, shared 2048.
  EXPECT_EQ(s.params_total(), 6400u + 6400 + 4096 + 8192 + 8192 + 2048);
  // Active: routed tensors count 1/4.
  EXPECT_EQ(s.params_active(), 6400u + 6400 + 4096 + 2048 + 2048 + 2048);
  // Bytes: f16 12800 each; q 16384; q8_0 8192 elements = 256 blocks x 34 = 8704 each; shared 8192.
  EXPECT_EQ(s.bytes_total(), 12800u + 12800 + 16384 + 8704 + 8704 + 8192);
  // Per decoded token: one embedding row (128 bytes), the rest of the dense part, 1/4 of experts.
  EXPECT_EQ(s.bytes_per_token(), 128u + 12800 + 16384 + 8192 + 8704 / 4 + 8704 / 4);
  // K and V: 1 layer x 2 x 2 heads x 16.
  EXPECT_EQ(s.kv_bytes_per_token(2), 128u);
  EXPECT_EQ(s.kv_bytes_per_token(4), 256u);
}

TEST(ModelSpecDerived, TiedEmbeddingIsReadWhole) {
  const ModelSpec s = hand_spec(true);
  EXPECT_EQ(s.bytes_per_token(), 12800u + 16384 + 8192 + 8704 / 4 + 8704 / 4);
  EXPECT_EQ(s.params_total(), 6400u + 4096 + 8192 + 8192 + 2048);
}

TEST(ModelSpecDerived, RoleNames) {
  EXPECT_STREQ(place::role_name(TensorRole::ExpertUp), "expert_up");
  EXPECT_STREQ(place::role_name(TensorRole::Router), "router");
  EXPECT_TRUE(place::is_routed_expert(TensorRole::ExpertDown));
  EXPECT_FALSE(place::is_routed_expert(TensorRole::SharedDown));
  EXPECT_FALSE(place::is_routed_expert(TensorRole::Router));
}

TEST(ModelSpecClassify, TensorNames) {
  auto c = classify_tensor("blk.3.ffn_up_exps.weight");
  EXPECT_EQ(c.role, TensorRole::ExpertUp);
  EXPECT_EQ(c.layer, 3);
  EXPECT_EQ(c.expert, -1);
  c = classify_tensor("blk.12.ffn_gate.7.weight");
  EXPECT_EQ(c.role, TensorRole::ExpertGate);
  EXPECT_EQ(c.layer, 12);
  EXPECT_EQ(c.expert, 7);
  EXPECT_EQ(classify_tensor("blk.0.ffn_down.0.weight").role, TensorRole::ExpertDown);
  EXPECT_EQ(classify_tensor("blk.0.ffn_gate.weight").role, TensorRole::DenseGate);
  EXPECT_EQ(classify_tensor("blk.0.ffn_up_shexp.weight").role, TensorRole::SharedUp);
  EXPECT_EQ(classify_tensor("blk.0.ffn_gate_inp.weight").role, TensorRole::Router);
  EXPECT_EQ(classify_tensor("blk.0.exp_probs_b.bias").role, TensorRole::RouterBias);
  EXPECT_EQ(classify_tensor("blk.0.attn_q.bias").role, TensorRole::AttnBias);
  EXPECT_EQ(classify_tensor("blk.0.attn_output.weight").role, TensorRole::AttnOut);
  EXPECT_EQ(classify_tensor("blk.0.attn_k_norm.weight").role, TensorRole::AttnKNorm);
  EXPECT_EQ(classify_tensor("token_embd.weight").role, TensorRole::TokenEmbd);
  EXPECT_EQ(classify_tensor("token_embd.weight").layer, -1);
  EXPECT_EQ(classify_tensor("output.weight").role, TensorRole::Output);
  EXPECT_EQ(classify_tensor("rope_freqs.weight").role, TensorRole::Other);
  EXPECT_EQ(classify_tensor("blk.x.attn_q.weight").layer, -1);
  EXPECT_EQ(classify_tensor("blk.0.ffn_gate.x.weight").role, TensorRole::Other);
}

TEST(ModelSpecBuild, Qwen3MoeFromGguf) {
  test::TempDir dir;
  const std::string path = dir.file("q.gguf");
  test::write_tiny_moe(path, {});
  auto m = ModelFile::open(path, false);
  const ModelSpec s = build_model_spec(*m);
  EXPECT_EQ(s.arch, "qwen3moe");
  EXPECT_EQ(s.name, "tiny-qwen3moe");
  EXPECT_EQ(s.n_layers, 2);
  EXPECT_EQ(s.n_embd, 8);
  EXPECT_EQ(s.n_head, 2);
  EXPECT_EQ(s.n_head_kv, 1);
  EXPECT_EQ(s.head_dim, 4);
  EXPECT_EQ(s.n_expert, 4);
  EXPECT_EQ(s.n_expert_used, 2);
  EXPECT_EQ(s.n_ff_exp, 4);
  EXPECT_EQ(s.n_ff, 0);  // no dense layer, whatever feed_forward_length says
  EXPECT_EQ(s.n_vocab, 16);
  EXPECT_EQ(s.n_ctx_train, 64);
  EXPECT_FLOAT_EQ(s.rope_theta, 1e6f);
  EXPECT_FLOAT_EQ(s.rms_eps, 1e-6f);
  EXPECT_EQ(s.rope_type, RopeType::Neox);
  EXPECT_EQ(s.gating, GatingOrder::SoftmaxThenTopK);
  EXPECT_TRUE(s.norm_topk_prob);  // llama.cpp's default for qwen3moe
  EXPECT_FALSE(s.tied_embeddings);
  // Hand count: embd 128 + output 128 + norm 8; per layer 248 dense-part + 3 x 128 routed.
  EXPECT_EQ(s.params_total(), 1528u);
  EXPECT_EQ(s.params_active(), 1144u);
  EXPECT_EQ(s.bytes_total(), 1528u * 4);
  EXPECT_EQ(s.bytes_per_token(), 4096u);
  EXPECT_EQ(s.kv_bytes_per_token(2), 32u);
  int routed = 0;
  for (const auto& t : s.tensors)
    if (place::is_routed_expert(t.role)) {
      ++routed;
      EXPECT_EQ(t.experts, 4) << t.name;
    }
  EXPECT_EQ(routed, 6);
}

TEST(ModelSpecBuild, NormTopkFromKeyAndTiedOutput) {
  test::TempDir dir;
  const std::string path = dir.file("q.gguf");
  test::TinyMoe o;
  o.tied = true;
  test::write_tiny_moe(path, o, [](Metadata& md) { md.set_bool("qwen3moe.expert_weights_norm", false); });
  const ModelSpec s = build_model_spec(*ModelFile::open(path, false));
  EXPECT_FALSE(s.norm_topk_prob);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_EQ(s.bytes_per_token(), 4096u - 512 - 32 + 512);
}

TEST(ModelSpecBuild, MixtralPerExpertGguf) {
  test::TempDir dir;
  const std::string path = dir.file("mix.gguf");
  test::TinyMoe o;
  o.arch = "llama";
  o.per_expert = true;
  o.stacked_keys = false;
  test::write_tiny_moe(path, o);
  const ModelSpec s = build_model_spec(*ModelFile::open(path, false));
  EXPECT_EQ(s.gating, GatingOrder::TopKThenSoftmax);
  EXPECT_EQ(s.rope_type, RopeType::Interleaved);
  EXPECT_EQ(s.n_ff_exp, 4);  // from feed_forward_length, as Mixtral GGUFs store it
  EXPECT_EQ(s.n_ff, 0);
  int per_expert = 0;
  for (const auto& t : s.tensors)
    if (place::is_routed_expert(t.role)) {
      ++per_expert;
      EXPECT_EQ(t.experts, 1);
    }
  EXPECT_EQ(per_expert, 2 * 4 * 3);
  // Same routed share as the stacked layout: 1528 - 2 x 8 (no q/k norms) elements in all.
  EXPECT_EQ(s.params_total(), 1512u);
  EXPECT_EQ(s.params_active(), 1128u);

  test::write_tiny_moe(path, o, [](Metadata& md) { md.set_bool("hexe.rope.neox_from_hf", true); });
  EXPECT_EQ(build_model_spec(*ModelFile::open(path, false)).rope_type, RopeType::Neox);
}

std::string build_error(const std::string& path) {
  try {
    build_model_spec(*ModelFile::open(path, false));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelSpecBuild, ShapeMismatchAndMissingKeysAreNamed) {
  test::TempDir dir;
  const std::string path = dir.file("bad.gguf");
  test::write_tiny_moe(path, {}, {}, [](std::string& n, std::vector<int64_t>& ne) {
    if (n == "blk.1.attn_k.weight") ne = {8, 8};
  });
  std::string msg = build_error(path);
  EXPECT_NE(msg.find(path + ": tensor 'blk.1.attn_k.weight' has shape [8, 8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected [8, 4]"), std::string::npos) << msg;

  test::write_tiny_moe(path, {}, {}, [](std::string& n, std::vector<int64_t>& ne) {
    if (n == "blk.0.ffn_up_exps.weight") ne = {8, 4, 3};
  });
  msg = build_error(path);
  EXPECT_NE(msg.find("'blk.0.ffn_up_exps.weight' has shape [8, 4, 3]"), std::string::npos) << msg;

  test::write_tiny_moe(path, {}, [](Metadata& md) { md.values.erase("qwen3moe.attention.head_count"); });
  msg = build_error(path);
  EXPECT_NE(msg.find("key 'qwen3moe.attention.head_count' is missing"), std::string::npos) << msg;

  test::write_tiny_moe(path, {}, [](Metadata& md) { md.set_int("qwen3moe.expert_used_count", 5); });
  msg = build_error(path);
  EXPECT_NE(msg.find("'qwen3moe.expert_used_count' is 5, expected 1 to"), std::string::npos) << msg;

  test::write_tiny_moe(path, {}, [](Metadata& md) { md.set_int("qwen3moe.block_count", 1); });
  msg = build_error(path);
  EXPECT_NE(msg.find("'blk.1."), std::string::npos) << msg;
  EXPECT_NE(msg.find("block_count is 1"), std::string::npos) << msg;
}

TEST(ModelSpecBuild, UnknownArchitectureIsReadAsFarAsKeysGo) {
  test::TempDir dir;
  const std::string path = dir.file("other.gguf");
  test::TinyMoe o;
  o.arch = "somethingnew";
  test::write_tiny_moe(path, o, [](Metadata& md) { md.values.erase("somethingnew.attention.head_count"); });
  const ModelSpec s = build_model_spec(*ModelFile::open(path, false));
  EXPECT_EQ(s.arch, "somethingnew");
  EXPECT_EQ(s.n_layers, 2);
  EXPECT_EQ(s.n_head, 0);
  EXPECT_EQ(s.n_expert, 4);
  EXPECT_EQ(s.rope_type, RopeType::Interleaved);
  EXPECT_EQ(s.params_total(), 1512u);  // q/k norms are written for qwen3moe only
}

}  // namespace
}  // namespace hexe

// safetensors: parsing, HF -> GGUF names and keys, shards, and hostile headers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "runtime/model/hf_model.h"
#include "runtime/model/model_file.h"
#include "runtime/model/safetensors_reader.h"
#include "runtime/model/spec_builder.h"
#include "tests/runtime/gguf_test_util.h"

namespace hexe {
namespace {

using nlohmann::json;

struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;  // HF order
};

size_t dtype_size(const std::string& d) { return d == "F32" ? 4 : d == "F8_E4M3" ? 1 : 2; }

// A safetensors file with data bytes k*3+i for tensor i; returns each tensor's [begin, end).
std::vector<uint8_t> make_st(const std::vector<StTensor>& ts, json* header_out = nullptr) {
  json h = json::object();
  uint64_t off = 0;
  for (const auto& t : ts) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= uint64_t(d);
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + n}}};
    off += n;
  }
  h["__metadata__"] = {{"format", "pt"}};
  if (header_out) *header_out = h;
  std::string text = h.dump();
  while ((text.size() + 8) % 8) text += ' ';
  test::Bytes out;
  out.u64(text.size()).raw(text.data(), text.size());
  std::vector<uint8_t>& b = out.b;
  for (size_t i = 0; i < ts.size(); ++i) {
    uint64_t n = dtype_size(ts[i].dtype);
    for (int64_t d : ts[i].shape) n *= uint64_t(d);
    for (uint64_t k = 0; k < n; ++k) b.push_back(uint8_t(k * 3 + i));
  }
  return b;
}

std::vector<uint8_t> with_header(const std::string& text, size_t data_bytes = 16) {
  test::Bytes b;
  b.u64(text.size()).raw(text.data(), text.size()).zeros(data_bytes);
  return b.b;
}

const std::string kName = "model.safetensors";

std::string parse_error(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> copy(bytes);
  try {
    parse_safetensors(copy.data(), copy.size(), kName);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ST_REFUSED(bytes, ...)                                                       \
  do {                                                                                      \
    const std::string msg_ = parse_error(bytes);                                            \
    ASSERT_FALSE(msg_.empty()) << "accepted";                                               \
    EXPECT_EQ(msg_.rfind(kName + ": ", 0), 0u) << msg_;                                     \
    for (const std::string& want_ : std::initializer_list<std::string>{__VA_ARGS__})        \
      EXPECT_NE(msg_.find(want_), std::string::npos) << "'" << want_ << "' not in: " << msg_; \
  } while (0)

TEST(SafetensorsParse, ShapesReversedAndDataInPlace) {
  std::vector<uint8_t> b = make_st({{"a", "F32", {3, 2}}, {"b", "BF16", {5}}, {"c", "F16", {}}});
  SafetensorsHeader h = parse_safetensors(b.data(), b.size(), kName);
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.meta.at("format"), "pt");
  const TensorRef& a = h.tensors[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.type, DType::F32);
  EXPECT_EQ(a.ne, (std::vector<int64_t>{2, 3}));  // HF [3, 2] -> ne {2, 3}
  EXPECT_EQ(a.bytes, 24u);
  EXPECT_EQ(a.data, b.data() + h.data_offset);
  EXPECT_EQ(h.tensors[1].type, DType::BF16);
  EXPECT_EQ(h.tensors[1].data[1], uint8_t(3 + 1));
  EXPECT_EQ(h.tensors[2].ne, std::vector<int64_t>{1});  // a scalar
  EXPECT_EQ(h.tensors[2].bytes, 2u);
}

TEST(SafetensorsHostile, HeaderLengthAndJson) {
  EXPECT_ST_REFUSED(std::vector<uint8_t>(3, 1), "truncated");
  std::vector<uint8_t> b = with_header("{}");
  uint64_t huge = uint64_t(1) << 40;
  std::memcpy(b.data(), &huge, 8);
  EXPECT_ST_REFUSED(b, "header length 1099511627776 runs past the end of the file");
  EXPECT_ST_REFUSED(with_header("{\"a\": [1, 2"), "not valid JSON");
  EXPECT_ST_REFUSED(with_header("not json at all"), "not valid JSON");
  EXPECT_ST_REFUSED(with_header("[1, 2, 3]"), "expected an object");
  EXPECT_ST_REFUSED(with_header(std::string(5000, '[') + std::string(5000, ']')), "nests deeper");
  EXPECT_EQ(parse_error(with_header("{}")), "");
}

TEST(SafetensorsHostile, MissingFieldsAndBadTypes) {
  EXPECT_ST_REFUSED(with_header(R"({"w": {"shape": [2], "data_offsets": [0, 8]}})"), "tensor 'w'", "'dtype'");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})"), "tensor 'w'", "'shape'");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [2]}})"), "tensor 'w'", "data_offsets");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})"), "tensor 'w'");
  EXPECT_ST_REFUSED(with_header(R"({"w": 5})"), "tensor 'w'", "expected an object");
  EXPECT_ST_REFUSED(with_header(R"({"lm_head.weight": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})"),
                    "tensor 'lm_head.weight'", "dtype I64 is not supported");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F8_E5M2", "shape": [2], "data_offsets": [0, 2]}})"),
                    "F8_E5M2");
  // F8_E4M3 is read (as raw bytes): one byte per element, so 3 values cannot take 2 bytes.
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F8_E4M3", "shape": [3], "data_offsets": [0, 2]}})"),
                    "tensor 'w'", "needs 3");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 8]}})"),
                    "tensor 'w'", "dimension");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [2, 0], "data_offsets": [0, 0]}})"),
                    "tensor 'w'", ">= 1");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [1,1,1,1,1], "data_offsets": [0, 4]}})"),
                    "more than 4");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})"),
                    "overflows");
  EXPECT_ST_REFUSED(with_header(R"({"__metadata__": [1]})"), "__metadata__");
}

TEST(SafetensorsHostile, OffsetsOutsideOrInconsistent) {
  // 16 data bytes after the header.
  EXPECT_EQ(parse_error(with_header(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})")), "");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 20]}})"),
                    "tensor 'w'", "past the data section");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})"),
                    "tensor 'w'", "past the data section");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})"),
                    "tensor 'w'", "hold 16 bytes", "needs 12");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})"),
                    "tensor 'w'", "begin <= end");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})"), "tensor 'w'");
  EXPECT_ST_REFUSED(with_header(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}})"),
                    "tensor 'w'");
  EXPECT_ST_REFUSED(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})"),
                    "overlaps");
}

TEST(SafetensorsHostile, TruncatedAtEveryByte) {
  const std::vector<uint8_t> full = make_st({{"a", "F32", {3, 2}}, {"b", "BF16", {5}}});
  for (size_t cut = 0; cut < full.size(); ++cut) {
    std::vector<uint8_t> b(full.begin(), full.begin() + cut);
    const std::string msg = parse_error(b);
    ASSERT_FALSE(msg.empty()) << "cut " << cut;
    EXPECT_EQ(msg.rfind(kName + ": ", 0), 0u) << msg;
  }
}

// The config.json transformers 5.24 writes for a tiny Qwen3MoeForCausalLM.
const char* kQwen3MoeConfig = R"({
  "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false, "bos_token_id": null,
  "decoder_sparse_step": 1, "dtype": "float32", "eos_token_id": 3, "head_dim": 4,
  "hidden_act": "silu", "hidden_size": 8, "intermediate_size": 12,
  "max_position_embeddings": 64, "mlp_only_layers": [], "model_type": "qwen3_moe",
  "moe_intermediate_size": 4, "norm_topk_prob": true, "num_attention_heads": 2,
  "num_experts_per_tok": 2, "num_hidden_layers": 2, "num_key_value_heads": 1,
  "num_local_experts": 4, "rms_norm_eps": 1e-06,
  "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
  "tie_word_embeddings": false, "transformers_version": "5.24.0", "vocab_size": 16})";

// HF tensors of that model, as save_pretrained writes them (per-expert; F32).
std::vector<StTensor> qwen3moe_tensors(bool fused) {
  std::vector<StTensor> ts = {{"model.embed_tokens.weight", "F32", {16, 8}},
                              {"model.norm.weight", "F32", {8}},
                              {"lm_head.weight", "F32", {16, 8}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ts.push_back({p + "input_layernorm.weight", "F32", {8}});
    ts.push_back({p + "post_attention_layernorm.weight", "F32", {8}});
    ts.push_back({p + "self_attn.q_proj.weight", "F32", {8, 8}});
    ts.push_back({p + "self_attn.k_proj.weight", "F32", {4, 8}});
    ts.push_back({p + "self_attn.v_proj.weight", "F32", {4, 8}});
    ts.push_back({p + "self_attn.o_proj.weight", "F32", {8, 8}});
    ts.push_back({p + "self_attn.q_norm.weight", "F32", {4}});
    ts.push_back({p + "self_attn.k_norm.weight", "F32", {4}});
    ts.push_back({p + "mlp.gate.weight", "F32", {4, 8}});
    if (fused) {
      ts.push_back({p + "mlp.experts.gate_up_proj", "F32", {4, 8, 8}});
      ts.push_back({p + "mlp.experts.down_proj", "F32", {4, 8, 4}});
    } else {
      for (int e = 0; e < 4; ++e) {
        const std::string x = p + "mlp.experts." + std::to_string(e) + ".";
        ts.push_back({x + "gate_proj.weight", "F32", {4, 8}});
        ts.push_back({x + "up_proj.weight", "F32", {4, 8}});
        ts.push_back({x + "down_proj.weight", "F32", {8, 4}});
      }
    }
  }
  return ts;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(SafetensorsModel, Qwen3MoeDirectoryMapsToGgufNamesAndKeys) {
  test::TempDir dir;
  test::write_bytes(dir.file("model.safetensors"), make_st(qwen3moe_tensors(false)));
  write_text(dir.file("config.json"), kQwen3MoeConfig);
  write_text(dir.file("tokenizer.json"), "{}");
  write_text(dir.file("tokenizer_config.json"), R"({"chat_template": "{{ messages }}"})");
  auto m = ModelFile::open(dir.path().string(), false);
  EXPECT_EQ(m->format(), ModelFormat::Safetensors);
  const Metadata& md = m->metadata();
  EXPECT_EQ(md.require_string("general.architecture"), "qwen3moe");
  EXPECT_EQ(md.require_int("qwen3moe.block_count"), 2);
  EXPECT_EQ(md.require_int("qwen3moe.context_length"), 64);
  EXPECT_EQ(md.require_int("qwen3moe.embedding_length"), 8);
  EXPECT_EQ(md.require_int("qwen3moe.feed_forward_length"), 12);
  EXPECT_EQ(md.require_int("qwen3moe.attention.head_count"), 2);
  EXPECT_EQ(md.require_int("qwen3moe.attention.head_count_kv"), 1);
  EXPECT_EQ(md.require_int("qwen3moe.attention.key_length"), 4);
  EXPECT_EQ(md.require_int("qwen3moe.attention.value_length"), 4);
  EXPECT_DOUBLE_EQ(md.require_float("qwen3moe.rope.freq_base"), 1e6);
  EXPECT_FLOAT_EQ(float(md.require_float("qwen3moe.attention.layer_norm_rms_epsilon")), 1e-6f);
  EXPECT_EQ(md.require_int("qwen3moe.expert_count"), 4);
  EXPECT_EQ(md.require_int("qwen3moe.expert_used_count"), 2);
  EXPECT_EQ(md.require_int("qwen3moe.expert_feed_forward_length"), 4);
  EXPECT_EQ(md.get_bool("qwen3moe.expert_weights_norm"), true);
  EXPECT_EQ(md.require_int("qwen3moe.vocab_size"), 16);
  EXPECT_EQ(md.get_bool("hexe.rope.neox_from_hf"), true);
  EXPECT_EQ(md.require_int("tokenizer.ggml.eos_token_id"), 3);
  EXPECT_FALSE(md.has("tokenizer.ggml.bos_token_id"));  // null in config.json
  EXPECT_EQ(md.require_string("tokenizer.chat_template"), "{{ messages }}");
  const std::string tj = md.require_string("hexe.tokenizer_json");
  EXPECT_TRUE(std::filesystem::equivalent(tj, dir.file("tokenizer.json"))) << tj;

  EXPECT_EQ(m->require("token_embd.weight").ne, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(m->require("blk.1.attn_k.weight").ne, (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(m->require("blk.0.attn_output.weight").ne, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(m->require("blk.0.ffn_gate_inp.weight").ne, (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(m->require("blk.1.ffn_down.3.weight").ne, (std::vector<int64_t>{4, 8}));
  for (const char* n : {"output.weight", "output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight",
                        "blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight", "blk.1.ffn_gate.0.weight",
                        "blk.1.ffn_up.2.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight"})
    EXPECT_NE(m->find(n), nullptr) << n;
  for (const auto& t : m->tensors()) EXPECT_EQ(t.name.find("model."), std::string::npos) << t.name;

  // The spec built from it matches the same model written as GGUF.
  const place::ModelSpec s = build_model_spec(*m);
  EXPECT_EQ(s.arch, "qwen3moe");
  EXPECT_EQ(s.n_expert, 4);
  EXPECT_EQ(s.n_ff_exp, 4);
  EXPECT_EQ(s.n_vocab, 16);
  EXPECT_EQ(s.rope_type, place::RopeType::Neox);
  EXPECT_TRUE(s.norm_topk_prob);
  EXPECT_EQ(s.params_total(), 1528u);
  EXPECT_EQ(s.params_active(), 1144u);
  EXPECT_EQ(s.bytes_per_token(), 4096u);
}

TEST(SafetensorsModel, FusedExpertsBecomePerExpertViews) {
  test::TempDir dir;
  const auto ts = qwen3moe_tensors(true);
  test::write_bytes(dir.file("model.safetensors"), make_st(ts));
  write_text(dir.file("config.json"), kQwen3MoeConfig);
  auto m = ModelFile::open(dir.file("model.safetensors"), false);
  SafetensorsFile raw = read_safetensors(dir.file("model.safetensors"));
  const TensorRef* gate_up = nullptr;
  const TensorRef* down = nullptr;
  for (const auto& t : raw.header.tensors) {
    if (t.name == "model.layers.1.mlp.experts.gate_up_proj") gate_up = &t;
    if (t.name == "model.layers.1.mlp.experts.down_proj") down = &t;
  }
  ASSERT_TRUE(gate_up && down);
  const uint64_t per_expert = 8 * 8 * 4;  // [2F=8, H=8] f32
  for (int e = 0; e < 4; ++e) {
    const TensorRef& g = m->require("blk.1.ffn_gate." + std::to_string(e) + ".weight");
    const TensorRef& u = m->require("blk.1.ffn_up." + std::to_string(e) + ".weight");
    const TensorRef& d = m->require("blk.1.ffn_down." + std::to_string(e) + ".weight");
    EXPECT_EQ(g.ne, (std::vector<int64_t>{8, 4}));
    EXPECT_EQ(u.ne, (std::vector<int64_t>{8, 4}));
    EXPECT_EQ(d.ne, (std::vector<int64_t>{4, 8}));
    EXPECT_EQ(g.bytes, per_expert / 2);
    // Offsets within the fused tensor: gate rows first, then up rows, per expert.
    EXPECT_EQ(std::memcmp(g.data, gate_up->data + e * per_expert, g.bytes), 0);
    EXPECT_EQ(std::memcmp(u.data, gate_up->data + e * per_expert + per_expert / 2, u.bytes), 0);
    EXPECT_EQ(std::memcmp(d.data, down->data + e * (4 * 8 * 4), d.bytes), 0);
  }
  EXPECT_EQ(build_model_spec(*m).params_total(), 1528u);
}

TEST(SafetensorsModel, MixtralNamesAndLlamaKeys) {
  test::TempDir dir;
  std::vector<StTensor> ts = {{"model.embed_tokens.weight", "BF16", {16, 8}}, {"model.norm.weight", "BF16", {8}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ts.push_back({p + "input_layernorm.weight", "BF16", {8}});
    ts.push_back({p + "post_attention_layernorm.weight", "BF16", {8}});
    ts.push_back({p + "self_attn.q_proj.weight", "BF16", {8, 8}});
    ts.push_back({p + "self_attn.k_proj.weight", "BF16", {4, 8}});
    ts.push_back({p + "self_attn.v_proj.weight", "BF16", {4, 8}});
    ts.push_back({p + "self_attn.o_proj.weight", "BF16", {8, 8}});
    ts.push_back({p + "block_sparse_moe.gate.weight", "BF16", {4, 8}});
    for (int e = 0; e < 4; ++e) {
      const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
      ts.push_back({x + "w1.weight", "BF16", {6, 8}});
      ts.push_back({x + "w2.weight", "BF16", {8, 6}});
      ts.push_back({x + "w3.weight", "BF16", {6, 8}});
    }
  }
  test::write_bytes(dir.file("model.safetensors"), make_st(ts));
  // transformers 5.24 MixtralConfig: head_dim null, rope_theta inside rope_parameters.
  write_text(dir.file("config.json"), R"({"architectures": ["MixtralForCausalLM"], "bos_token_id": 1,
    "eos_token_id": [2, 7], "head_dim": null, "hidden_size": 8, "intermediate_size": 6,
    "max_position_embeddings": 128, "model_type": "mixtral", "num_attention_heads": 2,
    "num_experts_per_tok": 2, "num_hidden_layers": 2, "num_key_value_heads": 1,
    "num_local_experts": 4, "rms_norm_eps": 1e-05,
    "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
    "tie_word_embeddings": true, "vocab_size": 16})");
  write_text(dir.file("chat_template.jinja"), "{% for m in messages %}{{ m.content }}{% endfor %}");
  auto m = ModelFile::open(dir.path().string(), false);
  const Metadata& md = m->metadata();
  EXPECT_EQ(md.require_string("general.architecture"), "llama");
  EXPECT_EQ(md.require_int("llama.expert_count"), 4);
  EXPECT_EQ(md.require_int("llama.feed_forward_length"), 6);
  EXPECT_EQ(md.require_int("llama.rope.dimension_count"), 4);
  EXPECT_FALSE(md.has("llama.attention.key_length"));
  EXPECT_EQ(md.require_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(md.require_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(md.require_string("tokenizer.chat_template"), "{% for m in messages %}{{ m.content }}{% endfor %}");
  EXPECT_FALSE(md.has("hexe.tokenizer_json"));
  EXPECT_EQ(m->require("blk.0.ffn_gate.3.weight").ne, (std::vector<int64_t>{8, 6}));
  EXPECT_EQ(m->require("blk.0.ffn_down.3.weight").ne, (std::vector<int64_t>{6, 8}));
  EXPECT_EQ(m->require("blk.1.ffn_up.0.weight").type, DType::BF16);
  EXPECT_EQ(m->find("output.weight"), nullptr);  // tied
  const place::ModelSpec s = build_model_spec(*m);
  EXPECT_EQ(s.gating, place::GatingOrder::TopKThenSoftmax);
  EXPECT_EQ(s.rope_type, place::RopeType::Neox);  // HF q/k are not permuted
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_EQ(s.n_ff_exp, 6);
  EXPECT_EQ(s.head_dim, 4);
}

TEST(SafetensorsModel, ShardedIndex) {
  test::TempDir dir;
  const auto ts = qwen3moe_tensors(false);
  std::vector<StTensor> a(ts.begin(), ts.begin() + 20), b(ts.begin() + 20, ts.end());
  test::write_bytes(dir.file("model-00001-of-00002.safetensors"), make_st(a));
  test::write_bytes(dir.file("model-00002-of-00002.safetensors"), make_st(b));
  json idx = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (const auto& t : a) idx["weight_map"][t.name] = "model-00001-of-00002.safetensors";
  for (const auto& t : b) idx["weight_map"][t.name] = "model-00002-of-00002.safetensors";
  write_text(dir.file("model.safetensors.index.json"), idx.dump());
  write_text(dir.file("config.json"), kQwen3MoeConfig);
  auto m = ModelFile::open(dir.path().string(), false);
  EXPECT_EQ(m->tensors().size(), ts.size());
  EXPECT_EQ(m->require("token_embd.weight").file, dir.file("model-00001-of-00002.safetensors"));
  EXPECT_EQ(m->require("blk.1.ffn_down.3.weight").file, dir.file("model-00002-of-00002.safetensors"));
  EXPECT_EQ(build_model_spec(*m).params_total(), 1528u);
  EXPECT_EQ(ModelFile::open(dir.file("model.safetensors.index.json"), false)->tensors().size(), ts.size());

  // An index naming a shard that is not there names both.
  idx["weight_map"]["lm_head.weight"] = "model-00003-of-00002.safetensors";
  write_text(dir.file("model.safetensors.index.json"), idx.dump());
  try {
    ModelFile::open(dir.path().string(), false);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model.safetensors.index.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model-00003-of-00002.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;
  }
  // An index that says a tensor is in a shard that does not hold it.
  idx["weight_map"]["lm_head.weight"] = "model-00002-of-00002.safetensors";
  write_text(dir.file("model.safetensors.index.json"), idx.dump());
  EXPECT_THROW(ModelFile::open(dir.path().string(), false), Error);
  write_text(dir.file("model.safetensors.index.json"), "{\"weight_map\": 3}");
  EXPECT_THROW(ModelFile::open(dir.path().string(), false), Error);
  idx["weight_map"]["lm_head.weight"] = "../evil.safetensors";
  write_text(dir.file("model.safetensors.index.json"), idx.dump());
  EXPECT_THROW(ModelFile::open(dir.path().string(), false), Error);
}

TEST(SafetensorsModel, ConfigErrorsNameTheKey) {
  test::TempDir dir;
  test::write_bytes(dir.file("model.safetensors"), make_st({{"model.norm.weight", "F32", {8}}}));
  write_text(dir.file("config.json"), R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": "8"})");
  try {
    ModelFile::open(dir.path().string(), false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: key 'hidden_size' is \"8\", expected an integer"),
              std::string::npos) << e.what();
  }
  write_text(dir.file("config.json"), R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 8})");
  try {
    ModelFile::open(dir.path().string(), false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("key 'num_attention_heads' is missing"), std::string::npos) << e.what();
  }
  write_text(dir.file("config.json"), "{ not json");
  EXPECT_THROW(ModelFile::open(dir.path().string(), false), Error);
}

// Block-FP8: the weight keeps its bytes (I8) with the scales attached, the scale tensor is no
// model tensor; a weight without scales, a wrong scale grid or another quant_method is refused.
TEST(SafetensorsModel, Fp8WeightsPairWithTheirScales) {
  test::TempDir dir;
  const std::string cfg = R"({"architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 8, "num_attention_heads": 1,
    "num_hidden_layers": 1, "vocab_size": 4, "kv_lora_rank": 4, "qk_rope_head_dim": 2, "qk_nope_head_dim": 2,
    "v_head_dim": 2, "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}})";
  write_text(dir.file("config.json"), cfg);
  test::write_bytes(dir.file("model.safetensors"),
                    make_st({{"model.layers.0.self_attn.o_proj.weight", "F8_E4M3", {200, 8}},
                             {"model.layers.0.self_attn.o_proj.weight_scale_inv", "F32", {2, 1}}}));
  {
    auto m = ModelFile::open(dir.path().string(), false);
    ASSERT_EQ(m->tensors().size(), 1u);
    const TensorRef& t = m->tensors()[0];
    EXPECT_EQ(t.name, "blk.0.attn_output.weight");
    EXPECT_EQ(t.type, DType::I8);
    EXPECT_EQ(t.ne, (std::vector<int64_t>{8, 200}));
    EXPECT_NE(t.fp8.data, nullptr);
    EXPECT_EQ(t.fp8.block_rows, 128);
  }
  auto refused = [&](const std::vector<StTensor>& ts, const std::string& config, const std::string& want) {
    write_text(dir.file("config.json"), config);
    test::write_bytes(dir.file("model.safetensors"), make_st(ts));
    try {
      ModelFile::open(dir.path().string(), false);
      ADD_FAILURE() << "accepted; wanted an error with: " << want;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  refused({{"model.layers.0.self_attn.o_proj.weight", "F8_E4M3", {200, 8}}}, cfg,
          "'model.layers.0.self_attn.o_proj.weight' is F8_E4M3 but the checkpoint has no "
          "'model.layers.0.self_attn.o_proj.weight_scale_inv'");
  refused({{"model.layers.0.self_attn.o_proj.weight", "F8_E4M3", {200, 8}},
           {"model.layers.0.self_attn.o_proj.weight_scale_inv", "F32", {1, 1}}},
          cfg, "scale shape [1, 1], expected [2, 1] for weight [200, 8]");
  std::string gptq = cfg;
  gptq.replace(gptq.find("\"fp8\""), 5, "\"gptq\"");
  refused({{"model.norm.weight", "F32", {8}}}, gptq, "quantization_config.quant_method is \"gptq\"");
}

// DeepSeek-V2 configs: softmax routing, never renormalised; topk_method "greedy" ignores
// n_group / topk_group.
TEST(SafetensorsModel, DeepseekV2RoutingKeys) {
  test::TempDir dir;
  test::write_bytes(dir.file("model.safetensors"), make_st({{"model.norm.weight", "F32", {8}}}));
  auto keys = [&](const std::string& method) {
    write_text(dir.file("config.json"),
               R"({"architectures": ["DeepseekV2ForCausalLM"], "hidden_size": 8, "num_attention_heads": 1,
                   "num_hidden_layers": 1, "vocab_size": 4, "kv_lora_rank": 4, "qk_rope_head_dim": 2,
                   "qk_nope_head_dim": 2, "v_head_dim": 2, "n_routed_experts": 8, "num_experts_per_tok": 2,
                   "n_group": 4, "topk_group": 2, "norm_topk_prob": true, "topk_method": ")" + method + R"("})");
    return ModelFile::open(dir.path().string(), false)->metadata();
  };
  const Metadata g = keys("group_limited_greedy");
  EXPECT_EQ(g.get_int("deepseek2.expert_gating_func"), 1);
  EXPECT_EQ(g.get_int("deepseek2.expert_group_count"), 4);
  EXPECT_EQ(g.get_int("deepseek2.expert_group_used_count"), 2);
  EXPECT_EQ(g.get_bool("deepseek2.expert_weights_norm"), false);  // transformers' V2 router ignores it
  const Metadata n = keys("greedy");
  EXPECT_EQ(n.get_int("deepseek2.expert_gating_func"), 1);
  EXPECT_FALSE(n.has("deepseek2.expert_group_count"));
}

}  // namespace
}  // namespace hexe

// Test helpers for model-file tests: temp dirs, raw GGUF byte builders, small valid files.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cpu_kernels/format.h"
#include "runtime/model/gguf_writer.h"

namespace hexe::test {

// A fresh directory under the test temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("hexe_model_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// Little-endian byte builder for hand-made (often hostile) GGUF files.
struct Bytes {
  std::vector<uint8_t> b;
  template <class T>
  Bytes& put(T v) {
    return raw(&v, sizeof(T));
  }
  Bytes& u8(uint8_t v) { return put(v); }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  // resize + memcpy rather than insert: GCC 12 warns falsely about insert at -O3.
  Bytes& raw(const void* p, size_t n) {
    const size_t at = b.size();
    b.resize(at + n);
    if (n > 0) std::memcpy(b.data() + at, p, n);
    return *this;
  }
  Bytes& pad(uint64_t alignment) {
    while (b.size() % alignment) b.push_back(0);
    return *this;
  }
  Bytes& zeros(uint64_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
  size_t size() const { return b.size(); }
};

// GGUF header: magic, version, tensor count, key/value count.
inline Bytes gguf_header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Bytes h;
  h.raw("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
  return h;
}

// One tensor info.
inline void tensor_info(Bytes& b, const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                        uint64_t offset) {
  b.str(name).u32(uint32_t(ne.size()));
  for (uint64_t d : ne) b.u64(d);
  b.u32(type).u64(offset);
}

// A small but complete GGUF with a marker of where each region starts, for truncation tests.
struct MarkedGguf {
  Bytes bytes;
  std::vector<size_t> kv_starts;      // offset of each key/value
  std::vector<size_t> info_starts;    // offset of each tensor info
  size_t infos_end = 0;               // end of the tensor infos (padding follows)
  size_t data_start = 0;
  std::vector<std::pair<size_t, size_t>> tensor_data;  // [begin, end) of each tensor's bytes
  std::vector<std::string> tensor_names;
};

inline MarkedGguf marked_gguf() {
  MarkedGguf m;
  Bytes& b = m.bytes;
  struct T {
    std::string name;
    std::vector<uint64_t> ne;
    DType type;
  };
  const std::vector<T> ts = {{"token_embd.weight", {32, 4}, DType::F16},
                             {"blk.0.ffn_up_exps.weight", {32, 2, 2}, DType::Q8_0},
                             {"output_norm.weight", {7}, DType::F32}};
  b = gguf_header(ts.size(), 4);
  m.kv_starts.push_back(b.size());
  b.str("general.architecture").u32(8).str("qwen3moe");
  m.kv_starts.push_back(b.size());
  b.str("qwen3moe.block_count").u32(4).u32(1);
  m.kv_starts.push_back(b.size());
  b.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(3).str("a").str("bc").str("def");
  m.kv_starts.push_back(b.size());
  b.str("tokenizer.ggml.scores").u32(9).u32(6).u64(3).put<float>(0.f).put<float>(-1.f).put<float>(-2.f);
  uint64_t off = 0;
  std::vector<uint64_t> offsets;
  for (const auto& t : ts) {
    m.info_starts.push_back(b.size());
    tensor_info(b, t.name, t.ne, uint32_t(t.type), off);
    offsets.push_back(off);
    uint64_t rows = 1;
    for (size_t i = 1; i < t.ne.size(); ++i) rows *= t.ne[i];
    off += (row_bytes(t.type, t.ne[0]) * rows + 31) / 32 * 32;
    m.tensor_names.push_back(t.name);
  }
  m.infos_end = b.size();
  b.pad(32);
  m.data_start = b.size();
  std::mt19937 rng(7);
  for (size_t i = 0; i < ts.size(); ++i) {
    uint64_t rows = 1;
    for (size_t d = 1; d < ts[i].ne.size(); ++d) rows *= ts[i].ne[d];
    uint64_t n = row_bytes(ts[i].type, ts[i].ne[0]) * rows;
    size_t begin = m.data_start + offsets[i];
    b.zeros(begin - b.size());
    for (uint64_t k = 0; k < n; ++k) b.u8(uint8_t(rng()));
    m.tensor_data.push_back({begin, begin + n});
  }
  b.pad(32);
  return m;
}

// A tiny but complete MoE model: 2 layers, hidden 8, 2 q heads / 1 kv head of 4, 4 experts
// (top-2) of ffn 4, vocab 16, all F32. `per_expert` writes Mixtral-style "ffn_gate.E" tensors
// instead of stacked "_exps". Values are small and deterministic.
struct TinyMoe {
  std::string arch = "qwen3moe";
  bool per_expert = false;
  bool tied = false;         // no output.weight
  bool stacked_keys = true;  // write expert_feed_forward_length (qwen3moe) vs feed_forward_length
};

inline void write_tiny_moe(const std::string& path, const TinyMoe& o,
                           const std::function<void(Metadata&)>& edit_md = {},
                           const std::function<void(std::string&, std::vector<int64_t>&)>& edit_t = {}) {
  GgufWriter w(path);
  Metadata& md = w.metadata();
  const std::string p = o.arch + ".";
  md.set_string("general.architecture", o.arch);
  md.set_string("general.name", "tiny-" + o.arch);
  md.set_int(p + "block_count", 2);
  md.set_int(p + "context_length", 64);
  md.set_int(p + "embedding_length", 8);
  md.set_int(p + "attention.head_count", 2);
  md.set_int(p + "attention.head_count_kv", 1);
  md.set_int(p + "attention.key_length", 4);
  md.set_int(p + "attention.value_length", 4);
  md.set_float(p + "rope.freq_base", 1000000.0);
  md.set_float(p + "attention.layer_norm_rms_epsilon", 1e-6);
  md.set_int(p + "expert_count", 4);
  md.set_int(p + "expert_used_count", 2);
  if (o.stacked_keys) {
    md.set_int(p + "expert_feed_forward_length", 4);
    md.set_int(p + "feed_forward_length", 12);
  } else {
    md.set_int(p + "feed_forward_length", 4);
  }
  md.set_string("tokenizer.ggml.model", "gpt2");
  MetaValue toks;
  toks.type = GgufValueType::Array;
  toks.elem_type = GgufValueType::String;
  for (int i = 0; i < 16; ++i) {
    std::string t = "t";  // not "t" + to_string: GCC 12 -O3 warns falsely (-Wrestrict)
    t += std::to_string(i);
    toks.strings.push_back(t);
  }
  md.values["tokenizer.ggml.tokens"] = toks;
  md.set_int("tokenizer.ggml.eos_token_id", 15);
  if (edit_md) edit_md(md);

  std::vector<std::pair<std::string, std::vector<int64_t>>> ts = {{"token_embd.weight", {8, 16}},
                                                                  {"output_norm.weight", {8}}};
  if (!o.tied) ts.push_back({"output.weight", {8, 16}});
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    ts.push_back({b + "attn_norm.weight", {8}});
    ts.push_back({b + "attn_q.weight", {8, 8}});
    ts.push_back({b + "attn_k.weight", {8, 4}});
    ts.push_back({b + "attn_v.weight", {8, 4}});
    ts.push_back({b + "attn_output.weight", {8, 8}});
    if (o.arch == "qwen3moe") {
      ts.push_back({b + "attn_q_norm.weight", {4}});
      ts.push_back({b + "attn_k_norm.weight", {4}});
    }
    ts.push_back({b + "ffn_norm.weight", {8}});
    ts.push_back({b + "ffn_gate_inp.weight", {8, 4}});
    if (o.per_expert) {
      for (int e = 0; e < 4; ++e) {
        ts.push_back({b + "ffn_gate." + std::to_string(e) + ".weight", {8, 4}});
        ts.push_back({b + "ffn_down." + std::to_string(e) + ".weight", {4, 8}});
        ts.push_back({b + "ffn_up." + std::to_string(e) + ".weight", {8, 4}});
      }
    } else {
      ts.push_back({b + "ffn_gate_exps.weight", {8, 4, 4}});
      ts.push_back({b + "ffn_down_exps.weight", {4, 8, 4}});
      ts.push_back({b + "ffn_up_exps.weight", {8, 4, 4}});
    }
  }
  for (auto& [name, ne] : ts) {
    if (edit_t) edit_t(name, ne);
    w.add_tensor(name, DType::F32, ne);
  }
  w.write_header();
  for (size_t i = 0; i < ts.size(); ++i) {
    std::vector<float> v(w.tensor_bytes(i) / 4);
    for (size_t k = 0; k < v.size(); ++k) v[k] = 0.01f * float(int(k % 17) - 8);
    w.write_tensor_data(v.data(), w.tensor_bytes(i));
  }
  w.finish();
}

}  // namespace hexe::test

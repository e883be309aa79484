// hexe quantize: type names, llama.cpp's fallbacks, expert stacking by byte copy, dry-run sizes,
// recipe types and quantisation error on the fixture models.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cpu_kernels/quant.h"
#include "memory/error.h"
#include "runtime/model/model_file.h"
#include "runtime/model/quantize.h"

namespace hexe {
namespace {

const std::string kModels = std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/models";

std::string temp_path(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

QuantizeOptions quiet(bool verbose = false) {
  QuantizeOptions o;
  o.threads = 2;
  o.progress = false;
  o.verbose = verbose;
  return o;
}

TEST(Quantize, TargetNames) {
  EXPECT_EQ(parse_quant_target("q4_k_m").name, "Q4_K_M");
  EXPECT_EQ(parse_quant_target("Q4_K_M").file_type, 15u);
  EXPECT_EQ(parse_quant_target("q8_0").file_type, 7u);
  EXPECT_EQ(parse_quant_target("bf16").file_type, 32u);
  EXPECT_EQ(parse_quant_target("f16").base, DType::F16);
  try {
    parse_quant_target("q3_k_xl");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_K_M"), std::string::npos) << e.what();
  }
}

TEST(Quantize, FallbacksForRowsWithoutWholeBlocks) {
  EXPECT_EQ(plain_tensor_type(DType::Q4_K, "blk.0.attn_q.weight", {256, 64}), DType::Q4_K);
  EXPECT_EQ(plain_tensor_type(DType::Q4_K, "blk.0.attn_q.weight", {96, 64}), DType::Q5_0);
  EXPECT_EQ(plain_tensor_type(DType::Q5_K, "blk.0.attn_q.weight", {96, 64}), DType::Q5_1);
  EXPECT_EQ(plain_tensor_type(DType::Q6_K, "blk.0.attn_q.weight", {96, 64}), DType::Q8_0);
  EXPECT_EQ(plain_tensor_type(DType::Q4_K, "blk.0.ffn_down_exps.weight", {8, 96, 4}), DType::F16);
  EXPECT_EQ(plain_tensor_type(DType::Q8_0, "blk.0.attn_norm.weight", {96}), DType::F32);
  EXPECT_EQ(plain_tensor_type(DType::Q8_0, "blk.0.ffn_gate_inp.weight", {96, 8}), DType::F32);
}

// The old per-expert layout re-stacked into ffn_*_exps: same type, so the bytes are copied and
// the file equals the stacked reference exactly.
TEST(Quantize, PerExpertGgufRestacksByteForByte) {
  auto src = ModelFile::open(kModels + "/mixtral-a/mixtral-a-q8_0-per-expert.gguf", false);
  const std::string out = temp_path("mixtral-a-restacked.gguf");
  quantize_model(*src, out, parse_quant_target("q8_0"), quiet());
  auto got = ModelFile::open(out, false);
  auto want = ModelFile::open(kModels + "/mixtral-a/mixtral-a-q8_0.gguf", false);
  ASSERT_EQ(got->tensors().size(), want->tensors().size());
  for (const TensorRef& w : want->tensors()) {
    const TensorRef* g = got->find(w.name);
    ASSERT_NE(g, nullptr) << w.name;
    EXPECT_EQ(int(g->type), int(w.type)) << w.name;
    EXPECT_EQ(g->ne, w.ne) << w.name;
    ASSERT_EQ(g->bytes, w.bytes) << w.name;
    EXPECT_EQ(std::memcmp(g->data, w.data, w.bytes), 0) << w.name;
  }
  std::filesystem::remove(out);
}

// F32 -> Q8_0 gives the reference Q8_0 file's types and shapes, and values within half a step.
TEST(Quantize, Q8_0FromF32MatchesTheReferenceLayout) {
  auto src = ModelFile::open(kModels + "/qwen3moe-a/qwen3moe-a-f32.gguf", false);
  const std::string out = temp_path("qwen3moe-a-q8_0.gguf");
  QuantizeResult dry = quantize_model(*src, out, parse_quant_target("q8_0"),
                                      [] { auto o = quiet(); o.dry_run = true; return o; }());
  EXPECT_FALSE(std::filesystem::exists(out));
  QuantizeResult r = quantize_model(*src, out, parse_quant_target("q8_0"), quiet(true));
  EXPECT_EQ(dry.file_bytes, r.file_bytes);
  EXPECT_EQ(r.file_bytes, std::filesystem::file_size(out));
  auto got = ModelFile::open(out, false);
  auto want = ModelFile::open(kModels + "/qwen3moe-a/qwen3moe-a-q8_0.gguf", false);
  EXPECT_EQ(got->metadata().get_int("general.file_type"), 7);
  EXPECT_EQ(got->metadata().get_int("general.quantization_version"), 2);
  ASSERT_EQ(got->tensors().size(), want->tensors().size());
  for (const TensorRef& w : want->tensors()) {
    const TensorRef* g = got->find(w.name);
    ASSERT_NE(g, nullptr) << w.name;
    EXPECT_EQ(int(g->type), int(w.type)) << w.name;
    EXPECT_EQ(g->ne, w.ne) << w.name;
    const int64_t n = w.n_elements();
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    for (int64_t r0 = 0; r0 < w.rows(); ++r0) {
      cpu::dequantize_row(w.type, w.data + r0 * w.row_bytes(), a.data() + r0 * w.ne[0], w.ne[0]);
      cpu::dequantize_row(g->type, g->data + r0 * g->row_bytes(), b.data() + r0 * w.ne[0], w.ne[0]);
    }
    size_t differ = 0;
    for (int64_t k = 0; k < n; ++k) differ += a[size_t(k)] != b[size_t(k)];
    // Python rounds half to even, GGML half away from zero: only exact ties may differ.
    EXPECT_LE(differ, size_t(n / 1000 + 1)) << w.name;
  }
  for (const auto& t : r.tensors) {
    if (t.to == DType::Q8_0) {
      EXPECT_GT(t.rmse, 0.0) << t.name;
      EXPECT_LT(t.rmse / t.source_rms, 0.01) << t.name;  // 8-bit: well under 1%
    } else {
      EXPECT_EQ(t.rmse, 0.0) << t.name;  // F32 kept exactly
    }
  }
  std::filesystem::remove(out);
}

// Q4_K_M on 96-wide rows: every K-quant falls back to a legacy type, the router stays F32, and the
// error is what 4-6 bits give.
TEST(Quantize, Q4_K_MRecipeOnSmallRows) {
  auto src = ModelFile::open(kModels + "/qwen3moe-a/qwen3moe-a-f32.gguf", false);
  const std::string out = temp_path("qwen3moe-a-q4_k_m.gguf");
  QuantizeResult r = quantize_model(*src, out, parse_quant_target("q4_k_m"), quiet(true));
  auto got = ModelFile::open(out, false);
  EXPECT_EQ(got->metadata().get_int("general.file_type"), 15);
  for (const auto& t : r.tensors) {
    if (t.ne.size() == 1 || t.name.find("ffn_gate_inp") != std::string::npos) {
      EXPECT_EQ(t.to, DType::F32) << t.name;
      continue;
    }
    EXPECT_NE(t.to, DType::Q4_K) << t.name << ": rows of " << t.ne[0] << " hold no q4_K block";
    EXPECT_TRUE(is_quantized(t.to) || t.to == DType::F16) << t.name;
    EXPECT_LT(t.rmse / t.source_rms, 0.12) << t.name;
  }
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace hexe

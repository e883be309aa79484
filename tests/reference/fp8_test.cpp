// Block-FP8 HF checkpoints (DeepSeek-V3's float8_e4m3fn + weight_scale_inv): hexe's reader,
// `hexe convert` and the engine against tools/reference/make_fp8_model.py's fixture — the
// dequantised values bit for bit, and HF's logits on those values.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "fixtures.h"
#include "memory/error.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/model.h"
#include "runtime/model/fp8_blocks.h"
#include "runtime/model/hf_model.h"
#include "runtime/model/quantize.h"
#include "runtime/model/safetensors_reader.h"
#include "runtime/tokenizer/tokenizer.h"

namespace hexe::testing {
namespace {

namespace fs = std::filesystem;

std::string fixture_dir() { return std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/fp8/deepseek3-fp8"; }

nlohmann::json reference() {
  std::ifstream f(fixture_dir() + "/reference.json");
  return nlohmann::json::parse(f);
}

// Every tensor of dequantised.safetensors (HF names, float32) must appear in `model` under its
// GGUF name as float32 with exactly these bytes. Returns how many were compared.
int expect_dequantised_bitwise(const ModelFile& model, const char* what) {
  SafetensorsFile want = read_safetensors(fixture_dir() + "/dequantised.safetensors");
  int n = 0;
  for (const TensorRef& hf : want.header.tensors) {
    const TensorRef w = hf_to_gguf_tensors(hf).at(0);
    const TensorRef* got = model.find(w.name);
    if (got == nullptr) {
      ADD_FAILURE() << what << ": no tensor " << w.name << " (" << hf.name << ")";
      continue;
    }
    EXPECT_EQ(got->type, DType::F32) << what << " " << w.name;
    EXPECT_EQ(got->ne, w.ne) << what << " " << w.name;
    if (got->type == DType::F32 && got->bytes == w.bytes) {
      EXPECT_EQ(std::memcmp(got->data, w.data, w.bytes), 0) << what << " " << w.name << ": values differ from Python's";
    }
    ++n;
  }
  return n;
}

TEST(Fp8Blocks, E4m3Codes) {
  EXPECT_EQ(f8_e4m3_to_float(0x00), 0.f);
  EXPECT_TRUE(std::signbit(f8_e4m3_to_float(0x80)));
  EXPECT_EQ(f8_e4m3_to_float(0x38), 1.f);            // exponent 7 = bias
  EXPECT_EQ(f8_e4m3_to_float(0x7E), 448.f);          // largest finite
  EXPECT_EQ(f8_e4m3_to_float(0xFE), -448.f);
  EXPECT_EQ(f8_e4m3_to_float(0x01), std::ldexp(1.f, -9));  // smallest subnormal
  EXPECT_EQ(f8_e4m3_to_float(0x08), std::ldexp(1.f, -6));  // smallest normal
  EXPECT_TRUE(std::isnan(f8_e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isnan(f8_e4m3_to_float(0xFF)));
}

TEST(Fp8Blocks, ScaleShapeMustMatchTheBlockGrid) {
  std::vector<uint8_t> w(200 * 72, 0x38);  // 1.0
  std::vector<float> s = {2.f, 3.f}, out(w.size());
  TensorRef wt{"m.weight", DType::I8, {72, 200}, w.data(), w.size(), "x.safetensors", true, {}};
  TensorRef st{"m.weight_scale_inv", DType::F32, {1, 2}, reinterpret_cast<const uint8_t*>(s.data()), 8, "x.safetensors",
               true, {}};
  wt.fp8 = fp8_scales(wt, st, {});
  dequantize_fp8_rows(wt, 0, 200, out.data());
  EXPECT_EQ(out[127 * 72 + 71], 2.f);  // last row of the first block row
  EXPECT_EQ(out[128 * 72], 3.f);       // first row of the partial second one
  EXPECT_EQ(out[199 * 72 + 71], 3.f);
  st.ne = {2, 1};  // [1, 2]: blocks along the wrong dimension
  try {
    fp8_scales(wt, st, {});
    ADD_FAILURE() << "accepted a [1, 2] scale grid for a [200, 72] weight";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [2, 1]"), std::string::npos) << e.what();
  }
}

// The reader keeps FP8 weights as on disk (1 byte per value) with their scales attached, and the
// scale tensors are no model tensors; the engine's model holds the float values.
TEST(Fp8Checkpoint, ReaderKeepsFp8AndTheEngineDequantisesBitwiseAsPython) {
  const auto ref = reference();
  auto file = ModelFile::open(fixture_dir() + "/hf", false);
  int n_fp8 = 0;
  for (const TensorRef& t : file->tensors()) {
    EXPECT_EQ(t.name.find("scale_inv"), std::string::npos) << "scale tensor kept as a model tensor: " << t.name;
    if (t.fp8.data == nullptr) continue;
    ++n_fp8;
    EXPECT_EQ(t.type, DType::I8) << t.name;
    EXPECT_EQ(t.bytes, uint64_t(t.n_elements())) << t.name;
  }
  EXPECT_EQ(n_fp8, int(ref.at("fp8_tensors").size()));
  auto model = Model::load(fixture_dir() + "/hf", false);
  EXPECT_EQ(expect_dequantised_bitwise(model->file(), "engine model"), int(ref.at("fp8_tensors").size()));
}

TEST(Fp8Checkpoint, ConvertWritesTheDequantisedValues) {
  const auto ref = reference();
  auto src = ModelFile::open(fixture_dir() + "/hf", false);
  const fs::path out = fs::temp_directory_path() / ("hexe_fp8_test_" + std::to_string(::getpid()) + ".gguf");
  QuantizeOptions opt;
  opt.threads = 2;
  opt.progress = false;
  quantize_model(*src, out.string(), parse_quant_target("F32"), opt);
  {
    auto gguf = ModelFile::open(out.string(), false);
    // The experts are stacked in the GGUF (ffn_*_exps): compare each expert's slice.
    SafetensorsFile want = read_safetensors(fixture_dir() + "/dequantised.safetensors");
    int n = 0;
    for (const TensorRef& hf : want.header.tensors) {
      const std::string name = hf_to_gguf_tensors(hf).at(0).name;  // blk.1.ffn_up.3.weight
      std::string stack = name;
      int expert = -1;
      for (const char* kind : {".ffn_gate.", ".ffn_up.", ".ffn_down."}) {
        const size_t at = name.find(kind);
        if (at == std::string::npos || !std::isdigit(static_cast<unsigned char>(name[at + std::strlen(kind)])))
          continue;  // blk.0.ffn_down.weight: a dense FFN, not an expert
        const size_t e0 = at + std::strlen(kind), e1 = name.find('.', e0);
        expert = std::stoi(name.substr(e0, e1 - e0));
        stack = name.substr(0, at) + std::string(kind).substr(0, std::strlen(kind) - 1) + "_exps.weight";
      }
      const TensorRef* got = gguf->find(expert >= 0 ? stack : name);
      ASSERT_NE(got, nullptr) << name;
      ASSERT_EQ(got->type, DType::F32) << name;
      ASSERT_EQ(got->ne[0], hf.ne[0]) << name;
      ASSERT_EQ(got->ne[1], hf.ne[1]) << name;
      const uint8_t* p = got->data + (expert >= 0 ? uint64_t(expert) * hf.bytes : 0);
      EXPECT_EQ(std::memcmp(p, hf.data, hf.bytes), 0) << name << " in the converted GGUF";
      ++n;
    }
    EXPECT_EQ(n, int(ref.at("fp8_tensors").size()));
  }
  fs::remove(out);
}

TEST(Fp8Checkpoint, LogitsMatchHfOnTheDequantisedWeights) {
  const auto ref = reference();
  auto model = Model::load(fixture_dir() + "/hf", false);
  const auto tokens = ref.at("tokens").get<std::vector<int32_t>>();
  const int n_vocab = ref.at("n_vocab");
  ASSERT_EQ(model->tokenizer().encode(ref.at("prompt").get<std::string>(), true, true), tokens);
  std::vector<float> want(tokens.size() * size_t(n_vocab));
  {
    std::ifstream f(fixture_dir() + "/" + ref.at("logits").at("file").get<std::string>(), std::ios::binary);
    f.read(reinterpret_cast<char*>(want.data()), std::streamsize(want.size() * sizeof(float)));
    ASSERT_TRUE(f) << "logits.bin shorter than reference.json says";
  }
  EngineConfig cfg;
  cfg.n_threads = 2;
  cfg.n_ctx = 64;
  Engine engine(*model, cfg);
  const int seq = engine.new_sequence();
  std::vector<BatchItem> items;
  for (int32_t t : tokens) items.push_back({seq, t, true});
  const auto got = engine.eval(items);
  double worst = 0;
  for (size_t r = 0; r < tokens.size(); ++r) {
    double max_ref = 0, max_diff = 0;
    for (int i = 0; i < n_vocab; ++i) {
      const double w = want[r * n_vocab + i], g = got[r * n_vocab + i];
      max_ref = std::max(max_ref, std::fabs(w));
      max_diff = std::max(max_diff, std::fabs(g - w));
    }
    worst = std::max(worst, max_diff / max_ref);
    EXPECT_LE(max_diff / max_ref, 1e-4) << "position " << r;
  }
  std::printf("[ref] deepseek3-fp8/hf (block FP8) relative logit error: max %.3g over %zu positions\n", worst,
              tokens.size());
}

}  // namespace
}  // namespace hexe::testing

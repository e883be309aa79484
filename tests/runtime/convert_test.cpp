// hexe convert: fixture HF dirs -> GGUF F32 equal key for key and byte for byte to the fixture
// GGUFs written by llama.cpp-compatible Python (tools/reference/gguf_export.py).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "runtime/model/model_file.h"
#include "runtime/model/quantize.h"

namespace hexe {
namespace {

const std::string kModels = std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/models";

std::string temp_path(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

// Every key of `want` is in `got` with the same type and value (general.name aside: the
// converter names the model after its directory, the fixture after the model).
void expect_same_metadata(const Metadata& want, const Metadata& got) {
  for (const auto& [key, w] : want.values) {
    // general.name: the converter names the model after its directory; general.size_label
    // ("8x1.2K") is not written by hexe convert.
    if (key == "general.name" || key == "general.size_label") continue;
    const MetaValue* g = got.find(key);
    ASSERT_NE(g, nullptr) << "missing key " << key;
    EXPECT_EQ(int(g->type), int(w.type)) << key;
    EXPECT_EQ(g->i, w.i) << key;
    EXPECT_EQ(g->f, w.f) << key;
    EXPECT_EQ(g->s, w.s) << key;
    EXPECT_EQ(g->ints, w.ints) << key;
    EXPECT_EQ(g->floats, w.floats) << key;
    EXPECT_EQ(g->strings, w.strings) << key;
  }
  for (const auto& [key, g] : got.values) EXPECT_TRUE(want.has(key)) << "extra key " << key;
}

void expect_same_tensors(const ModelFile& want, const ModelFile& got) {
  ASSERT_EQ(want.tensors().size(), got.tensors().size());
  for (const TensorRef& w : want.tensors()) {
    ASSERT_NE(got.find(w.name), nullptr) << w.name;
    const TensorRef& g = *got.find(w.name);
    EXPECT_EQ(int(w.type), int(g.type)) << w.name;
    EXPECT_EQ(w.ne, g.ne) << w.name;
    ASSERT_EQ(w.bytes, g.bytes) << w.name;
    EXPECT_EQ(std::memcmp(w.data, g.data, w.bytes), 0) << w.name << " differs";
  }
}

void check_convert(const std::string& model, const std::string& fixture_gguf) {
  auto hf = ModelFile::open(kModels + "/" + model + "/hf", false);
  const std::string out = temp_path(model + "-converted-f32.gguf");
  QuantizeOptions opt;
  opt.threads = 2;
  opt.progress = false;
  QuantizeResult r = quantize_model(*hf, out, parse_quant_target("f32"), opt);
  EXPECT_EQ(r.file_bytes, std::filesystem::file_size(out));
  auto got = ModelFile::open(out, false);
  auto want = ModelFile::open(kModels + "/" + model + "/" + fixture_gguf, false);
  expect_same_metadata(want->metadata(), got->metadata());
  expect_same_tensors(*want, *got);
  std::filesystem::remove(out);
}

TEST(Convert, Qwen3MoeHfDirEqualsTheReferenceF32Gguf) {
  check_convert("qwen3moe-a", "qwen3moe-a-f32.gguf");
}

// BF16 checkpoint, q/k permutation, SentencePiece vocabulary with scores, per-expert stacking.
TEST(Convert, MixtralHfDirEqualsTheReferenceF32Gguf) {
  check_convert("mixtral-a", "mixtral-a-f32.gguf");
}

// Tied embeddings (no output.weight), 32 experts, BF16 source.
TEST(Convert, TiedQwen3MoeHfDirEqualsTheReferenceF32Gguf) {
  check_convert("qwen3moe-b", "qwen3moe-b-f32.gguf");
}

}  // namespace
}  // namespace hexe

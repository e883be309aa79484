// GGUF writer -> reader round trips: every value type, arrays, nested arrays, tensors, streaming.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "memory/error.h"
#include "runtime/model/gguf_reader.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/model/model_file.h"
#include "tests/runtime/gguf_test_util.h"

namespace hexe {
namespace {

using test::TempDir;

MetaValue scalar(GgufValueType t, int64_t i) {
  MetaValue v;
  v.type = t;
  v.i = i;
  return v;
}
MetaValue floating(GgufValueType t, double f) {
  MetaValue v;
  v.type = t;
  v.f = f;
  return v;
}
MetaValue int_array(GgufValueType et, std::vector<int64_t> xs) {
  MetaValue v;
  v.type = GgufValueType::Array;
  v.elem_type = et;
  v.ints = std::move(xs);
  return v;
}

void expect_same(const MetaValue& a, const MetaValue& b, const std::string& key, int depth = 0) {
  SCOPED_TRACE(key);
  SCOPED_TRACE(depth);
  ASSERT_EQ(a.type, b.type);
  if (a.is_array()) {
    ASSERT_EQ(a.elem_type, b.elem_type);
    EXPECT_EQ(a.ints, b.ints);
    EXPECT_EQ(a.floats, b.floats);
    EXPECT_EQ(a.strings, b.strings);
    ASSERT_EQ(a.arrays.size(), b.arrays.size());
    for (size_t i = 0; i < a.arrays.size(); ++i) expect_same(a.arrays[i], b.arrays[i], key, depth + 1);
  } else if (a.is_float()) {
    EXPECT_EQ(a.f, b.f);
  } else if (a.type == GgufValueType::String) {
    EXPECT_EQ(a.s, b.s);
  } else {
    EXPECT_EQ(a.i, b.i);
  }
}

Metadata every_type() {
  Metadata md;
  md.values["t.u8"] = scalar(GgufValueType::UInt8, 250);
  md.values["t.i8"] = scalar(GgufValueType::Int8, -100);
  md.values["t.u16"] = scalar(GgufValueType::UInt16, 65000);
  md.values["t.i16"] = scalar(GgufValueType::Int16, -32000);
  md.values["t.u32"] = scalar(GgufValueType::UInt32, 4000000000);
  md.values["t.i32"] = scalar(GgufValueType::Int32, -2000000000);
  md.values["t.u64"] = scalar(GgufValueType::UInt64, int64_t(1) << 62);
  md.values["t.i64"] = scalar(GgufValueType::Int64, -(int64_t(1) << 60));
  md.values["t.f32"] = floating(GgufValueType::Float32, 0.375);  // exact in float
  md.values["t.f64"] = floating(GgufValueType::Float64, 1.0 / 3.0);
  md.values["t.bool_true"] = scalar(GgufValueType::Bool, 1);
  md.values["t.bool_false"] = scalar(GgufValueType::Bool, 0);
  md.set_string("t.string", std::string("h\xc3\xa9llo\0world", 12));
  md.set_string("t.empty_string", "");
  md.values["a.u8"] = int_array(GgufValueType::UInt8, {0, 1, 255});
  md.values["a.i8"] = int_array(GgufValueType::Int8, {-128, 0, 127});
  md.values["a.u16"] = int_array(GgufValueType::UInt16, {0, 65535});
  md.values["a.i16"] = int_array(GgufValueType::Int16, {-32768, 32767});
  md.values["a.u32"] = int_array(GgufValueType::UInt32, {0, 4294967295});
  md.values["a.i32"] = int_array(GgufValueType::Int32, {-1, 1, INT32_MIN});
  md.values["a.u64"] = int_array(GgufValueType::UInt64, {0, INT64_MAX});
  md.values["a.i64"] = int_array(GgufValueType::Int64, {INT64_MIN, -1});
  md.values["a.bool"] = int_array(GgufValueType::Bool, {1, 0, 1});
  md.values["a.empty"] = int_array(GgufValueType::Int32, {});
  MetaValue f32s;
  f32s.type = GgufValueType::Array;
  f32s.elem_type = GgufValueType::Float32;
  f32s.floats = {0.5, -2.25, 1e-3f};
  md.values["a.f32"] = f32s;
  MetaValue f64s = f32s;
  f64s.elem_type = GgufValueType::Float64;
  f64s.floats = {0.1, -1e300};
  md.values["a.f64"] = f64s;
  MetaValue strs;
  strs.type = GgufValueType::Array;
  strs.elem_type = GgufValueType::String;
  strs.strings = {"", "Ġthe", "<|im_end|>", std::string(1000, 'x')};
  md.values["a.string"] = strs;
  // Arrays of arrays, two levels deep.
  MetaValue inner_strs = strs;
  MetaValue inner_ints = int_array(GgufValueType::Int16, {3, -4});
  MetaValue nested;
  nested.type = GgufValueType::Array;
  nested.elem_type = GgufValueType::Array;
  nested.arrays = {inner_ints, inner_strs};
  MetaValue nested2 = nested;
  nested2.arrays = {nested, inner_ints};
  md.values["a.nested"] = nested;
  md.values["a.nested2"] = nested2;
  return md;
}

class GgufRoundTrip : public ::testing::TestWithParam<std::tuple<uint32_t, uint64_t>> {};

TEST_P(GgufRoundTrip, EveryValueTypeAndTensorSurvives) {
  const auto [version, alignment] = GetParam();
  TempDir dir;
  const std::string path = dir.file("rt.gguf");
  const Metadata md = every_type();
  struct T {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
  };
  const std::vector<T> ts = {{"a", DType::F32, {3}},          {"b", DType::F16, {5, 3}},
                             {"c", DType::Q8_0, {64, 2, 3}},  {"d", DType::Q4_K, {256, 1, 1, 2}},
                             {"e", DType::BF16, {1}},         {"f", DType::IQ2_XXS, {256}},
                             {"g", DType::I32, {7, 1}}};
  std::vector<std::vector<uint8_t>> data;
  {
    GgufWriter w(path, alignment, version);
    w.metadata() = md;
    for (const auto& t : ts) w.add_tensor(t.name, t.type, t.ne);
    w.write_header();
    for (size_t i = 0; i < ts.size(); ++i) {
      std::vector<uint8_t> d(w.tensor_bytes(i));
      for (size_t k = 0; k < d.size(); ++k) d[k] = uint8_t(k * 7 + i);
      w.write_tensor(ts[i].name, d.data(), d.size());
      data.push_back(std::move(d));
    }
    w.finish();
  }
  ASSERT_FALSE(std::filesystem::exists(path + ".partial"));
  GgufFile f = read_gguf(path);
  EXPECT_EQ(f.header.version, version);
  EXPECT_EQ(f.header.alignment, alignment);
  EXPECT_EQ(f.header.data_offset % alignment, 0u);
  for (const auto& [k, v] : md.values) {
    const MetaValue* got = f.header.metadata.find(k);
    ASSERT_NE(got, nullptr) << k;
    expect_same(v, *got, k);
  }
  // The writer adds general.alignment only when it is not the default.
  EXPECT_EQ(f.header.metadata.values.size(), md.values.size() + (alignment != 32 ? 1 : 0));
  ASSERT_EQ(f.header.tensors.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorRef& t = f.header.tensors[i];
    EXPECT_EQ(t.name, ts[i].name);
    EXPECT_EQ(t.type, ts[i].type);
    EXPECT_EQ(t.ne, ts[i].ne);
    EXPECT_EQ(t.file, path);
    ASSERT_EQ(t.bytes, data[i].size());
    EXPECT_EQ(std::memcmp(t.data, data[i].data(), t.bytes), 0) << t.name;
    EXPECT_EQ(uint64_t(t.data - f.map.data()) % alignment, 0u) << t.name;
  }
  EXPECT_EQ(f.header.tensors[2].bytes, 2u * 3u * 2u * 34u);  // q8_0: 34 bytes per 32
  EXPECT_EQ(f.header.tensors[3].bytes, 2u * 144u);           // q4_K: 144 bytes per 256
}

INSTANTIATE_TEST_SUITE_P(VersionsAndAlignments, GgufRoundTrip,
                         ::testing::Combine(::testing::Values(2u, 3u),
                                            ::testing::Values(1u, 32u, 64u, 4096u)),
                         [](const auto& info) {
                           return "v" + std::to_string(std::get<0>(info.param)) + "_align" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(GgufWriter, StreamsChunksAcrossTensorBoundaries) {
  TempDir dir;
  const std::string path = dir.file("chunks.gguf");
  GgufWriter w(path);
  w.add_tensor("x", DType::F32, {10});
  w.add_tensor("y", DType::F32, {3, 3});
  w.write_header();
  std::vector<float> all(19);
  for (size_t i = 0; i < all.size(); ++i) all[i] = float(i) * 0.5f;
  // 19 floats in uneven chunks: 7 + 7 + 5, the second crossing from x into y.
  const uint8_t* p = reinterpret_cast<const uint8_t*>(all.data());
  w.write_tensor_data(p, 28);
  w.write_tensor_data(p + 28, 28);
  w.write_tensor_data(p + 56, 20);
  w.finish();
  auto m = ModelFile::open(path, false);
  const float* x = reinterpret_cast<const float*>(m->require("x").data);
  const float* y = reinterpret_cast<const float*>(m->require("y").data);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(x[i], all[i]);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(y[i], all[10 + i]);
}

TEST(GgufWriter, IncompleteOrFailedWriteLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.file("partial.gguf");
  {
    GgufWriter w(path);
    w.add_tensor("x", DType::F32, {8});
    w.write_header();
    float half[4] = {};
    w.write_tensor_data(half, sizeof half);
    EXPECT_TRUE(std::filesystem::exists(path + ".partial"));
    try {
      w.finish();
      FAIL() << "finish() accepted a tensor with half its bytes";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  {
    GgufWriter w(path);
    w.add_tensor("x", DType::F32, {2});
    w.write_header();
    // Destroyed without finish(): an exception elsewhere in a tool must not leave a file.
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

TEST(GgufWriter, RefusesWhatWouldMakeAnInvalidFile) {
  TempDir dir;
  GgufWriter w(dir.file("bad.gguf"));
  EXPECT_THROW(w.add_tensor("q", DType::Q4_K, {100}), Error);       // not a multiple of 256
  EXPECT_THROW(w.add_tensor("z", DType::F32, {}), Error);           // no dims
  EXPECT_THROW(w.add_tensor("z", DType::F32, {1, 1, 1, 1, 1}), Error);
  EXPECT_THROW(w.add_tensor("z", DType::F32, {4, 0}), Error);
  EXPECT_THROW(w.add_tensor("", DType::F32, {4}), Error);
  EXPECT_THROW(w.add_tensor("r", DType(4), {4}), Error);            // retired type id
  w.add_tensor("ok", DType::F32, {4});
  EXPECT_THROW(w.add_tensor("ok", DType::F32, {4}), Error);         // duplicate
  w.add_tensor("next", DType::F32, {1});
  w.write_header();
  float four[4] = {};
  EXPECT_THROW(w.write_tensor("next", four, 4), Error);             // out of order
  EXPECT_THROW(w.write_tensor("ok", four, 8), Error);               // wrong size
  w.write_tensor("ok", four, 16);
  float five[5] = {};
  EXPECT_THROW(w.write_tensor_data(five, sizeof five), Error);      // past the last tensor
  EXPECT_THROW(GgufWriter(dir.file("x.gguf"), 48), Error);          // alignment not a power of 2
  EXPECT_THROW(GgufWriter(dir.file("x.gguf"), 32, 1), Error);       // version 1
}

TEST(GgufWriter, NoTensorsIsAValidFile) {
  TempDir dir;
  const std::string path = dir.file("meta_only.gguf");
  GgufWriter w(path);
  w.metadata().set_string("general.architecture", "llama");
  w.finish();
  GgufFile f = read_gguf(path);
  EXPECT_TRUE(f.header.tensors.empty());
  EXPECT_EQ(f.header.metadata.require_string("general.architecture"), "llama");
}

// "t" + std::to_string(i), spelled so GCC 12 -O3 does not warn falsely (-Wrestrict, PR105651).
std::string tname(int i) {
  std::string s = "t";
  s += std::to_string(i);
  return s;
}

TEST(GgufModelFile, OpensThroughModelFileAndFindsTensors) {
  TempDir dir;
  const std::string path = dir.file("m.gguf");
  GgufWriter w(path);
  w.metadata().set_string("general.architecture", "llama");
  for (int i = 0; i < 50; ++i) w.add_tensor(tname(49 - i), DType::F32, {1});
  w.write_header();
  for (int i = 0; i < 50; ++i) {
    float v = float(49 - i);
    w.write_tensor_data(&v, 4);
  }
  w.finish();
  auto m = ModelFile::open(path, true);
  EXPECT_EQ(m->format(), ModelFormat::Gguf);
  EXPECT_EQ(m->path(), path);
  ASSERT_EQ(m->tensors().size(), 50u);
  EXPECT_EQ(m->tensors().front().name, "t49");  // file order is kept
  for (int i = 0; i < 50; ++i) {
    const TensorRef* t = m->find(tname(i));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(*reinterpret_cast<const float*>(t->data), float(i));
  }
  EXPECT_EQ(m->find("t50"), nullptr);
  try {
    m->require("blk.0.attn_q.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'blk.0.attn_q.weight'"), std::string::npos);
  }
  // Directory with exactly one GGUF opens it; a path that exists nowhere is named.
  auto by_dir = ModelFile::open(dir.path().string(), false);
  EXPECT_EQ(by_dir->tensors().size(), 50u);
  try {
    ModelFile::open(dir.file("nope.gguf"), false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.gguf"), std::string::npos);
  }
}

TEST(GgufModelFile, SniffsTheMagicWhenTheExtensionIsMissing) {
  TempDir dir;
  const std::string path = dir.file("model.bin");
  GgufWriter w(path);
  w.add_tensor("x", DType::F32, {1});
  w.write_header();
  float v = 2.f;
  w.write_tensor_data(&v, 4);
  w.finish();
  EXPECT_EQ(ModelFile::open(path, false)->require("x").bytes, 4u);
  test::write_bytes(dir.file("junk.bin"), {1, 2, 3, 4, 5});
  EXPECT_THROW(ModelFile::open(dir.file("junk.bin"), false), Error);
}

}  // namespace
}  // namespace hexe

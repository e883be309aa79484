// Metadata: typed getters, conversions, and errors naming the source file and key.
#include <gtest/gtest.h>

#include <functional>

#include "memory/error.h"
#include "runtime/model/metadata.h"

namespace hexe {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(MetadataTest, TypedGettersAndConversions) {
  Metadata md;
  md.source = "m.gguf";
  md.set_int("a.count", 7);
  md.set_int("a.big", int64_t(1) << 40, GgufValueType::UInt64);
  md.set_float("a.eps", 1e-6);
  md.set_bool("a.flag", true);
  md.set_string("a.name", "qwen");
  MetaValue whole;
  whole.type = GgufValueType::Float32;
  whole.f = 128.0;
  md.values["a.float_int"] = whole;

  EXPECT_EQ(md.get_int("a.count"), 7);
  EXPECT_EQ(md.get_int("a.big"), int64_t(1) << 40);
  EXPECT_EQ(md.find("a.big")->type, GgufValueType::UInt64);
  EXPECT_EQ(md.get_int("a.float_int"), 128);       // a whole float converts
  EXPECT_EQ(md.get_float("a.count"), 7.0);         // ints convert to floats
  EXPECT_DOUBLE_EQ(*md.get_float("a.eps"), 1e-6);
  EXPECT_EQ(md.get_bool("a.flag"), true);
  EXPECT_EQ(md.get_bool("a.count"), true);
  EXPECT_EQ(md.get_string("a.name"), "qwen");
  EXPECT_FALSE(md.get_int("a.missing").has_value());
  EXPECT_FALSE(md.has("a.missing"));
  EXPECT_TRUE(md.has("a.name"));
  EXPECT_EQ(md.require_int("a.count"), 7);
  EXPECT_EQ(md.require_string("a.name"), "qwen");
  EXPECT_TRUE(md.find("a.count")->is_int());
  EXPECT_TRUE(md.find("a.eps")->is_float());
  EXPECT_TRUE(md.find("a.flag")->is_int());
}

TEST(MetadataTest, ErrorsNameTheFileKeyAndExpectation) {
  Metadata md;
  md.source = "model.gguf";
  md.set_string("general.name", "x");
  md.set_float("a.eps", 0.5);
  EXPECT_EQ(error_of([&] { md.require_int("llama.block_count"); }),
            "model.gguf: key 'llama.block_count': missing, expected an integer");
  EXPECT_EQ(error_of([&] { md.get_int("general.name"); }),
            "model.gguf: key 'general.name': is a string, expected an integer");
  EXPECT_EQ(error_of([&] { md.get_int("a.eps"); }),
            "model.gguf: key 'a.eps': is a float32, expected an integer");
  EXPECT_EQ(error_of([&] { md.get_string("a.eps"); }),
            "model.gguf: key 'a.eps': is a float32, expected a string");
  EXPECT_EQ(error_of([&] { md.get_bool("general.name"); }),
            "model.gguf: key 'general.name': is a string, expected a bool");
  EXPECT_NE(error_of([&] { md.require_float("x"); }).find("missing, expected a number"), std::string::npos);
  EXPECT_NE(error_of([&] { md.require_string("x"); }).find("missing, expected a string"), std::string::npos);
  EXPECT_NE(error_of([&] { md.set_int("bad", 1, GgufValueType::String); }).find("key 'bad'"),
            std::string::npos);
}

TEST(MetadataTest, ArraySizesPerElementFamily) {
  MetaValue v;
  v.type = GgufValueType::Array;
  v.elem_type = GgufValueType::String;
  v.strings = {"a", "b"};
  EXPECT_EQ(v.array_size(), 2u);
  v.elem_type = GgufValueType::Float64;
  v.floats = {1, 2, 3};
  EXPECT_EQ(v.array_size(), 3u);
  v.elem_type = GgufValueType::Int8;
  v.ints = {1};
  EXPECT_EQ(v.array_size(), 1u);
  v.elem_type = GgufValueType::Array;
  EXPECT_EQ(v.array_size(), 0u);
  MetaValue s;
  s.type = GgufValueType::UInt32;
  EXPECT_EQ(s.array_size(), 0u);
  EXPECT_STREQ(gguf_value_type_name(GgufValueType::Float64), "float64");
  EXPECT_STREQ(gguf_value_type_name(GgufValueType(77)), "unknown");
  Metadata md;
  md.values["arr"] = v;
  EXPECT_THROW(md.get_int("arr"), Error);
}

}  // namespace
}  // namespace hexe

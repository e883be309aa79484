// Split GGUF sets (NAME-0000i-of-0000N.gguf): opening any shard finds the others; bad sets refused.
#include <gtest/gtest.h>

#include <filesystem>

#include "memory/error.h"
#include "runtime/model/gguf_reader.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/model/model_file.h"
#include "tests/runtime/gguf_test_util.h"

namespace hexe {
namespace {

struct Shard {
  int no;             // split.no (0-based)
  int count;          // split.count
  int64_t total;      // split.tensors.count
  std::vector<std::string> tensors;
};

// Shard files as llama.cpp's gguf-split writes them: metadata in the first, split.* in all.
void write_shard(const std::string& path, const Shard& s) {
  GgufWriter w(path);
  if (s.no == 0) {
    w.metadata().set_string("general.architecture", "llama");
    w.metadata().set_string("general.name", "split-test");
  }
  w.metadata().set_int("split.no", s.no, GgufValueType::UInt16);
  w.metadata().set_int("split.count", s.count, GgufValueType::UInt16);
  w.metadata().set_int("split.tensors.count", s.total, GgufValueType::Int32);
  for (const auto& t : s.tensors) w.add_tensor(t, DType::F32, {4});
  w.write_header();
  for (const auto& t : s.tensors) {
    float v[4] = {float(s.no), float(t.size()), 0, 0};
    w.write_tensor(t, v, sizeof v);
  }
  w.finish();
}

void write_set(const test::TempDir& dir, const std::string& stem) {
  write_shard(dir.file(stem + "-00001-of-00003.gguf"), {0, 3, 5, {"token_embd.weight", "blk.0.a"}});
  write_shard(dir.file(stem + "-00002-of-00003.gguf"), {1, 3, 5, {"blk.1.a", "blk.1.bb"}});
  write_shard(dir.file(stem + "-00003-of-00003.gguf"), {2, 3, 5, {"output.weight"}});
}

std::string open_error(const std::string& path) {
  try {
    ModelFile::open(path, false);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufSplit, FirstShardFindsTheOthers) {
  test::TempDir dir;
  write_set(dir, "m");
  auto m = ModelFile::open(dir.file("m-00001-of-00003.gguf"), false);
  ASSERT_EQ(m->tensors().size(), 5u);
  EXPECT_EQ(m->metadata().require_string("general.name"), "split-test");
  EXPECT_EQ(m->metadata().require_int("split.count"), 3);
  const TensorRef& t = m->require("blk.1.bb");
  EXPECT_EQ(t.file, dir.file("m-00002-of-00003.gguf"));  // mapped from its own shard
  EXPECT_EQ(reinterpret_cast<const float*>(t.data)[0], 1.f);
  EXPECT_EQ(reinterpret_cast<const float*>(t.data)[1], 8.f);  // strlen("blk.1.bb")
  EXPECT_EQ(reinterpret_cast<const float*>(m->require("output.weight").data)[0], 2.f);
  EXPECT_EQ(m->require("output.weight").file, dir.file("m-00003-of-00003.gguf"));
  // Any shard opens the whole set, and so does the directory.
  EXPECT_EQ(ModelFile::open(dir.file("m-00003-of-00003.gguf"), false)->tensors().size(), 5u);
  EXPECT_EQ(ModelFile::open(dir.path().string(), false)->tensors().size(), 5u);
}

TEST(GgufSplit, MissingShardIsNamed) {
  test::TempDir dir;
  write_set(dir, "m");
  std::filesystem::remove(dir.file("m-00002-of-00003.gguf"));
  const std::string msg = open_error(dir.file("m-00001-of-00003.gguf"));
  EXPECT_NE(msg.find("m-00002-of-00003.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shard 2 of 3"), std::string::npos) << msg;
}

TEST(GgufSplit, InconsistentSetsAreRefused) {
  {
    test::TempDir dir;  // shard 2 says it is shard 3
    write_set(dir, "m");
    write_shard(dir.file("m-00002-of-00003.gguf"), {2, 3, 5, {"blk.1.a", "blk.1.bb"}});
    const std::string msg = open_error(dir.file("m-00001-of-00003.gguf"));
    EXPECT_NE(msg.find("m-00002-of-00003.gguf: key 'split.no' is 2, expected 1"), std::string::npos) << msg;
  }
  {
    test::TempDir dir;  // total tensor count wrong
    write_set(dir, "m");
    write_shard(dir.file("m-00001-of-00003.gguf"), {0, 3, 6, {"token_embd.weight", "blk.0.a"}});
    const std::string msg = open_error(dir.file("m-00001-of-00003.gguf"));
    EXPECT_NE(msg.find("split.tensors.count' is 6 but the 3 shards hold 5"), std::string::npos) << msg;
  }
  {
    test::TempDir dir;  // the same tensor in two shards
    write_set(dir, "m");
    write_shard(dir.file("m-00003-of-00003.gguf"), {2, 3, 5, {"blk.1.a"}});
    const std::string msg = open_error(dir.file("m-00001-of-00003.gguf"));
    EXPECT_NE(msg.find("'blk.1.a'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("duplicate"), std::string::npos) << msg;
  }
  {
    test::TempDir dir;  // split.count says 3 but the name does not follow the pattern
    write_shard(dir.file("model.gguf"), {0, 3, 5, {"a"}});
    const std::string msg = open_error(dir.file("model.gguf"));
    EXPECT_NE(msg.find("NAME-00001-of-00003.gguf"), std::string::npos) << msg;
  }
  {
    test::TempDir dir;  // name says 2 shards, key says 3
    write_shard(dir.file("m-00001-of-00002.gguf"), {0, 3, 5, {"a"}});
    const std::string msg = open_error(dir.file("m-00001-of-00002.gguf"));
    EXPECT_NE(msg.find("the file name says 2 shards"), std::string::npos) << msg;
  }
  {
    test::TempDir dir;  // a corrupt later shard names itself
    write_set(dir, "m");
    test::write_bytes(dir.file("m-00003-of-00003.gguf"), {'G', 'G', 'U', 'F', 1, 0, 0, 0});
    const std::string msg = open_error(dir.file("m-00001-of-00003.gguf"));
    EXPECT_NE(msg.find("m-00003-of-00003.gguf: header"), std::string::npos) << msg;
  }
}

TEST(GgufSplit, SplitPathsFromName) {
  EXPECT_EQ(gguf_split_paths_from_name("/x/y/Q-00002-of-00003.gguf"),
            (std::vector<std::string>{"/x/y/Q-00001-of-00003.gguf", "/x/y/Q-00002-of-00003.gguf",
                                      "/x/y/Q-00003-of-00003.gguf"}));
  EXPECT_EQ(gguf_split_paths_from_name("a.gguf"), std::vector<std::string>{"a.gguf"});
  EXPECT_EQ(gguf_split_paths_from_name("a-0001-of-0002.gguf"),
            std::vector<std::string>{"a-0001-of-0002.gguf"});
  EXPECT_EQ(gguf_split_paths_from_name("a-00004-of-00003.gguf"),
            std::vector<std::string>{"a-00004-of-00003.gguf"});
}

}  // namespace
}  // namespace hexe

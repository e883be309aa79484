// Hostile GGUF input: truncations at every byte, absurd counts, bad offsets/types/dims, bit flips.
// Each must raise hexe::Error naming the file (and the key or tensor) — never crash or over-read.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <random>

#include "memory/error.h"
#include "runtime/model/gguf_reader.h"
#include "runtime/model/model_file.h"
#include "tests/runtime/gguf_test_util.h"

namespace hexe {
namespace {

using test::Bytes;
using test::gguf_header;
using test::tensor_info;

const std::string kName = "hostile.gguf";

// Parses a private, exactly-sized copy so ASan sees any read past the end.
std::string parse_error(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> copy(bytes);
  try {
    parse_gguf(copy.data(), copy.size(), kName);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_REFUSED(bytes, ...)                                              \
  do {                                                                          \
    const std::string msg_ = parse_error(bytes);                                \
    ASSERT_FALSE(msg_.empty()) << "accepted";                                   \
    EXPECT_EQ(msg_.rfind(kName + ": ", 0), 0u) << msg_;                         \
    for (const std::string& want_ : std::initializer_list<std::string>{__VA_ARGS__})                                   \
      EXPECT_NE(msg_.find(want_), std::string::npos) << "'" << want_ << "' not in: " << msg_; \
  } while (0)

TEST(GgufHostile, MarkedFileIsValid) {
  auto m = test::marked_gguf();
  std::vector<uint8_t> copy(m.bytes.b);
  GgufHeader h = parse_gguf(copy.data(), copy.size(), kName);
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.data_offset, m.data_start);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(h.tensors[i].name, m.tensor_names[i]);
    EXPECT_EQ(h.tensors[i].data - copy.data(), ptrdiff_t(m.tensor_data[i].first));
    EXPECT_EQ(h.tensors[i].bytes, m.tensor_data[i].second - m.tensor_data[i].first);
  }
  EXPECT_EQ(h.metadata.find("tokenizer.ggml.tokens")->strings.size(), 3u);
}

// Cut the file at every byte: before the end of the last tensor's data every cut is refused with a
// message naming the region it cut; after it (trailing padding) the file is still complete.
TEST(GgufHostile, TruncatedAtEveryByte) {
  const auto m = test::marked_gguf();
  const size_t last_end = m.tensor_data.back().second;
  for (size_t cut = 0; cut < m.bytes.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    std::vector<uint8_t> b(m.bytes.b.begin(), m.bytes.b.begin() + cut);
    const std::string msg = parse_error(b);
    if (cut >= last_end) {
      EXPECT_EQ(msg, "");
      continue;
    }
    ASSERT_FALSE(msg.empty());
    EXPECT_EQ(msg.rfind(kName + ": ", 0), 0u) << msg;
    if (cut < m.kv_starts[0]) {
      EXPECT_NE(msg.find("header"), std::string::npos) << msg;
    } else if (cut < m.info_starts[0]) {
      // A cut KV, or (for short cuts) the counts refused against the bytes left.
      EXPECT_TRUE(msg.find("key") != std::string::npos || msg.find("count") != std::string::npos)
          << msg;
    } else if (cut < m.infos_end) {
      EXPECT_NE(msg.find("tensor"), std::string::npos) << msg;
    } else {
      // Padding or data: the first tensor whose bytes the cut reaches is named.
      size_t i = 0;
      while (m.tensor_data[i].second <= cut) ++i;
      const std::string& name = cut < m.data_start ? m.tensor_names[0] : m.tensor_names[i];
      if (cut >= m.data_start) {
        EXPECT_NE(msg.find("'" + name + "'"), std::string::npos) << msg;
      }
      EXPECT_NE(msg.find("past the end of the file"), std::string::npos) << msg;
    }
  }
}

TEST(GgufHostile, TruncatedFileOnDiskNamesThePath) {
  test::TempDir dir;
  const auto m = test::marked_gguf();
  const std::string path = dir.file("cut.gguf");
  test::write_bytes(path, std::vector<uint8_t>(m.bytes.b.begin(), m.bytes.b.begin() + m.info_starts[1] + 5));
  try {
    ModelFile::open(path, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
  }
  test::write_bytes(path, {});
  EXPECT_THROW(ModelFile::open(path, false), Error);
}

TEST(GgufHostile, BadMagicAndVersions) {
  Bytes b = gguf_header(0, 0);
  b.b[0] = 'G'; b.b[1] = 'G'; b.b[2] = 'M'; b.b[3] = 'L';
  EXPECT_REFUSED(b.b, "magic", "GGML");
  EXPECT_REFUSED(gguf_header(0, 0, 1).b, "version 1", "expected version 2 or 3");
  EXPECT_REFUSED(gguf_header(0, 0, 99).b, "version 99");
  EXPECT_REFUSED(gguf_header(0, 0, 0x03000000).b, "big-endian");
  EXPECT_EQ(parse_error(gguf_header(0, 0, 2).b), "");
  EXPECT_EQ(parse_error(gguf_header(0, 0, 3).b), "");
}

TEST(GgufHostile, AbsurdCounts) {
  EXPECT_REFUSED(gguf_header(uint64_t(1) << 60, 0).b, "tensor count 1152921504606846976");
  EXPECT_REFUSED(gguf_header(0, uint64_t(1) << 60).b, "key/value count");
  EXPECT_REFUSED(gguf_header(UINT64_MAX, UINT64_MAX).b, "count");
  // Array length 2^60 of every element family.
  for (uint32_t et : {0u, 4u, 8u, 9u, 10u, 12u}) {
    Bytes b = gguf_header(0, 1);
    b.str("arr").u32(9).u32(et).u64(uint64_t(1) << 60);
    EXPECT_REFUSED(b.b, "key 'arr'", "array of 1152921504606846976");
  }
}

TEST(GgufHostile, StringLengthsPastTheEnd) {
  Bytes key = gguf_header(0, 1);
  key.u64(uint64_t(1) << 40).raw("abc", 3).zeros(32);
  EXPECT_REFUSED(key.b, "key length", "past the end");
  Bytes val = gguf_header(0, 1);
  val.str("general.name").u32(8).u64(1000).raw("short", 5);
  EXPECT_REFUSED(val.b, "key 'general.name'", "string value length 1000");
  Bytes arr = gguf_header(0, 1);
  arr.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(2).str("ok").u64(UINT64_MAX);
  EXPECT_REFUSED(arr.b, "key 'tokenizer.ggml.tokens'", "array string length");
  Bytes name = gguf_header(1, 0);
  name.u64(500).raw("blk", 3).zeros(64);
  EXPECT_REFUSED(name.b, "tensor info #0", "tensor name length 500");
}

TEST(GgufHostile, BadValueTypesDuplicatesAndDeepNesting) {
  Bytes t = gguf_header(0, 1);
  t.str("k").u32(13).u32(0);
  EXPECT_REFUSED(t.b, "key 'k'", "value type id 13");
  Bytes et = gguf_header(0, 1);
  et.str("k").u32(9).u32(99).u64(0);
  EXPECT_REFUSED(et.b, "key 'k'", "element type id 99");
  Bytes dup = gguf_header(0, 2);
  dup.str("k").u32(4).u32(1).str("k").u32(4).u32(2);
  EXPECT_REFUSED(dup.b, "key 'k'", "duplicate");
  Bytes empty = gguf_header(0, 1);
  empty.str("").u32(4).u32(1);
  EXPECT_REFUSED(empty.b, "empty key");
  Bytes deep = gguf_header(0, 1);
  deep.str("deep").u32(9);
  for (int i = 0; i < 100; ++i) deep.u32(9).u64(1);
  deep.u32(4).u64(0);
  EXPECT_REFUSED(deep.b, "key 'deep'", "nested deeper");
}

TEST(GgufHostile, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 0x80000001u}) {
    Bytes b = gguf_header(0, 1);
    b.str("general.alignment").u32(4).u32(a);
    EXPECT_REFUSED(b.b, "general.alignment", std::to_string(a).c_str(), "power of two");
  }
  Bytes s = gguf_header(0, 1);
  s.str("general.alignment").u32(8).str("32");
  EXPECT_REFUSED(s.b, "general.alignment", "string");
}

// A file with one tensor info and enough data bytes after it.
Bytes one_tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                 uint64_t data_bytes = 64) {
  Bytes b = gguf_header(1, 0);
  tensor_info(b, name, std::move(ne), type, offset);
  b.pad(32).zeros(data_bytes);
  return b;
}

TEST(GgufHostile, OneTensorBaselineIsValid) {
  EXPECT_EQ(parse_error(one_tensor("x", {16}, 0, 0).b), "");
  EXPECT_EQ(parse_error(one_tensor("x", {16}, 0, 0, 64).b), "");
}

TEST(GgufHostile, BadDims) {
  EXPECT_REFUSED(one_tensor("blk.0.x", {}, 0, 0).b, "tensor 'blk.0.x'", "n_dims 0");
  EXPECT_REFUSED(one_tensor("blk.0.x", {1, 1, 1, 1, 1}, 0, 0).b, "tensor 'blk.0.x'", "n_dims 5");
  EXPECT_REFUSED(one_tensor("x", {4, 0}, 0, 0).b, "tensor 'x'", "dimension 1 is 0");
  EXPECT_REFUSED(one_tensor("x", {uint64_t(1) << 63}, 0, 0).b, "tensor 'x'", "dimension 0");
  EXPECT_REFUSED(one_tensor("x", {uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0).b, "tensor 'x'",
                 "overflows");
  EXPECT_REFUSED(one_tensor("x", {65536, 65536, 65536, 65536}, 0, 0).b, "tensor 'x'", "overflows");
  EXPECT_REFUSED(one_tensor("x", {uint64_t(1) << 31, uint64_t(1) << 31, 2}, 0, 0).b, "tensor 'x'",
                 "overflows 2^63");
  // Element count fits in int64 but the bytes overflow 2^64: f32 x 2^62.
  EXPECT_REFUSED(one_tensor("big", {uint64_t(1) << 31, uint64_t(1) << 31}, 0, 0).b,
                 "tensor 'big'", "overflows 2^64");
  // Bytes fit in 64 bits but not in the file: f32 x 2^60.
  EXPECT_REFUSED(one_tensor("x", {uint64_t(1) << 30, uint64_t(1) << 30}, 0, 0).b, "tensor 'x'",
                 "past the end");
}

TEST(GgufHostile, UnknownAndBlockMisfitTypes) {
  for (uint32_t id : {4u, 5u, 31u, 36u, 40u, 99u, 0xffffffffu}) {
    EXPECT_REFUSED(one_tensor("blk.1.ffn_up_exps.weight", {256}, id, 0, 1024).b,
                   "tensor 'blk.1.ffn_up_exps.weight'", ("unknown type id " + std::to_string(id)).c_str());
  }
  // Types hexe cannot compute are still readable (inspect shows them).
  EXPECT_EQ(parse_error(one_tensor("x", {256}, uint32_t(DType::IQ2_XXS), 0, 128).b), "");
  EXPECT_EQ(parse_error(one_tensor("x", {256}, uint32_t(DType::TQ1_0), 0, 128).b), "");
  EXPECT_REFUSED(one_tensor("blk.0.attn_q.weight", {100, 2}, uint32_t(DType::Q4_K), 0).b,
                 "tensor 'blk.0.attn_q.weight'", "multiple of 256", "[100, 2]");
  EXPECT_REFUSED(one_tensor("q", {48}, uint32_t(DType::Q8_0), 0).b, "tensor 'q'", "multiple of 32");
}

TEST(GgufHostile, OffsetsPastTheEndAndMisaligned) {
  // 16 floats = 64 bytes fit exactly; one more byte of offset does not.
  EXPECT_EQ(parse_error(one_tensor("x", {16}, 0, 0, 64).b), "");
  EXPECT_REFUSED(one_tensor("x", {17}, 0, 0, 64).b, "tensor 'x'", "size 68", "ends past the end of the file");
  EXPECT_REFUSED(one_tensor("x", {16}, 0, 32, 64).b, "tensor 'x'", "ends past the end of the file");
  EXPECT_REFUSED(one_tensor("x", {16}, 0, 7, 128).b, "tensor 'x'", "offset 7", "alignment 32");
  EXPECT_REFUSED(one_tensor("x", {16}, 0, UINT64_MAX - 31, 64).b, "tensor 'x'", "past the end");
  EXPECT_REFUSED(one_tensor("x", {16}, 0, uint64_t(1) << 62, 64).b, "tensor 'x'", "past the end");
  // Custom alignment applies to tensor offsets.
  Bytes b = gguf_header(1, 1);
  b.str("general.alignment").u32(4).u32(64);
  tensor_info(b, "x", {8}, 0, 32);
  b.pad(64).zeros(128);
  EXPECT_REFUSED(b.b, "tensor 'x'", "alignment 64");
}

TEST(GgufHostile, DuplicateAndEmptyTensorNames) {
  Bytes b = gguf_header(2, 0);
  tensor_info(b, "w", {8}, 0, 0);
  tensor_info(b, "w", {8}, 0, 32);
  b.pad(32).zeros(64);
  EXPECT_REFUSED(b.b, "tensor 'w'", "duplicate");
  EXPECT_REFUSED(one_tensor("", {8}, 0, 0).b, "empty tensor name");
}

// Random corruption of a valid file: every outcome is a clean parse or a hexe::Error.
TEST(GgufHostile, RandomByteFlipsNeverCrash) {
  const auto m = test::marked_gguf();
  std::mt19937_64 rng(12345);
  int refused = 0;
  const size_t header_end = m.data_start;  // flips in data bytes change nothing structural
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = m.bytes.b;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      size_t at = rng() % header_end;
      switch (rng() % 3) {
        case 0: b[at] ^= uint8_t(1u << (rng() % 8)); break;
        case 1: b[at] = 0xff; break;
        default: b[at] = uint8_t(rng()); break;
      }
    }
    const std::string msg = parse_error(b);
    if (!msg.empty()) {
      ++refused;
      EXPECT_EQ(msg.rfind(kName + ": ", 0), 0u) << msg;
    }
  }
  EXPECT_GT(refused, 1000);  // most structural corruption is caught
}

// A many-GB file whose tensor data is a hole: opening maps it without reading the data.
TEST(GgufSparse, MultiGigabyteSparseFileOpensWithoutReadingData) {
  test::TempDir dir;
  const std::string path = dir.file("sparse.gguf");
  const uint64_t rows = 3 * 1024 * 128;  // 3 GiB of Q8_0 in 8 KiB rows... see bytes below
  Bytes b = gguf_header(2, 1);
  b.str("general.architecture").u32(8).str("llama");
  tensor_info(b, "blk.0.ffn_up_exps.weight", {8192, rows}, uint32_t(DType::Q8_0), 0);
  const uint64_t big = uint64_t(8192 / 32 * 34) * rows;
  const uint64_t second = (big + 31) / 32 * 32;
  tensor_info(b, "output_norm.weight", {4}, 0, second);
  b.pad(32);
  const uint64_t data_start = b.size();
  test::write_bytes(path, b.b);
  const uint64_t file_size = data_start + second + 16;
  ASSERT_EQ(::truncate(path.c_str(), off_t(file_size)), 0);
  auto m = ModelFile::open(path, false);
  const TensorRef& t = m->require("blk.0.ffn_up_exps.weight");
  EXPECT_EQ(t.bytes, big);
  EXPECT_GT(big, uint64_t(3) << 30);
  EXPECT_EQ(t.rows(), int64_t(rows));
  const TensorRef& n = m->require("output_norm.weight");
  EXPECT_EQ(uint64_t(n.data - t.data), second);
  EXPECT_EQ(n.data[0], 0);  // the hole reads as zeros
  // One byte short of the second tensor's end is refused.
  ASSERT_EQ(::truncate(path.c_str(), off_t(file_size - 1)), 0);
  EXPECT_THROW(ModelFile::open(path, false), Error);
}

}  // namespace
}  // namespace hexe

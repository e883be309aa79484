// hexe convert / quantize / --routing-stats and the shipped model, run as a user runs them.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "run_hexe.h"

namespace {

using Result = hexe::testing::CliResult;

Result hexe(const std::string& args) { return hexe::testing::run_hexe(args); }

const std::string kSrc = HEXE_SOURCE_DIR;
const std::string kShipped = kSrc + "/models/fortune-moe-q8_0.gguf";
const std::string kHeldout = kSrc + "/models/fortune-moe-heldout.txt";

std::string tmp(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

double final_ppl(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("Final estimate: PPL = ([0-9.]+)"))) return -1;
  return std::stod(m[1]);
}

TEST(QuantizeCli, ConvertThenQuantizeRuns) {
  const std::string f16 = tmp("qwen3moe-a-conv-f16.gguf"), q = tmp("qwen3moe-a-conv-q4km.gguf");
  std::filesystem::remove(f16);
  std::filesystem::remove(q);  // left by an earlier run
  Result c = hexe("convert tests/reference/fixtures/models/qwen3moe-a/hf " + f16 + " --type f16");
  ASSERT_EQ(c.exit_code, 0) << c.out;
  Result dry = hexe("quantize " + f16 + " " + q + " Q4_K_M --dry-run");
  ASSERT_EQ(dry.exit_code, 0) << dry.out;
  EXPECT_NE(dry.out.find("would write"), std::string::npos) << dry.out;
  EXPECT_FALSE(std::filesystem::exists(q));
  Result r = hexe("quantize " + f16 + " " + q + " q4_k_m --threads 2 --verbose");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("blk.0.ffn_gate_exps.weight"), std::string::npos) << r.out;
  Result run = hexe("run -m " + q + " -p 'The runtime' -n 6 --temp 0");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  Result bad = hexe("quantize " + f16 + " " + q + " Q3_K_XL");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("Q4_K_M"), std::string::npos) << bad.out;
}

TEST(QuantizeCli, ShippedModelRunsWithoutDashM) {
  ASSERT_TRUE(std::filesystem::exists(kShipped));
  EXPECT_LE(std::filesystem::file_size(kShipped), 25u * 1000 * 1000);
  Result r = hexe("run -p 'The meaning of life is' -n 16 --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("generation: 16 tokens"), std::string::npos) << r.out;
}

// Held-out text: perplexity far below the vocabulary (4096), Q4_K_M within 3% of F16, and the
// routing statistics written per layer.
TEST(QuantizeCli, ShippedModelQuantisesWithinThreePercent) {
  const std::string f16 = tmp("fortune-f16.gguf"), q4 = tmp("fortune-q4km.gguf");
  ASSERT_EQ(hexe("quantize " + kShipped + " " + f16 + " F16").exit_code, 0);
  ASSERT_EQ(hexe("quantize " + f16 + " " + q4 + " Q4_K_M").exit_code, 0);
  const std::string stats = tmp("routing.json");
  Result a = hexe("perplexity -m " + f16 + " -f " + kHeldout + " -c 256 --chunks 12 --routing-stats " + stats);
  Result b = hexe("perplexity -m " + q4 + " -f " + kHeldout + " -c 256 --chunks 12");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  ASSERT_EQ(b.exit_code, 0) << b.out;
  const double pa = final_ppl(a.out), pb = final_ppl(b.out);
  ASSERT_GT(pa, 1.0) << a.out;
  EXPECT_LT(pa, 4096.0 / 8) << "far below the vocabulary size: the model learned";
  EXPECT_LT(std::abs(pb / pa - 1.0), 0.03) << pa << " vs " << pb;
  std::ifstream f(stats);
  ASSERT_TRUE(f.good());
  auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j["format"], "hexe-routing-stats");
  EXPECT_EQ(j["n_expert"], 32);
  ASSERT_EQ(j["layers"].size(), 4u);
  uint64_t total = 0;
  for (auto c : j["layers"][0]["counts"]) total += c.get<uint64_t>();
  EXPECT_EQ(total, 12u * 256u * 2u);  // every token of 12 chunks, top-2
}

}  // namespace

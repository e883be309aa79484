// `hexe inspect` report: figures of a tiny written model, as text and JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/model/model_file.h"
#include "runtime/model/model_report.h"
#include "runtime/model/spec_builder.h"
#include "tests/runtime/gguf_test_util.h"

namespace hexe {
namespace {

TEST(InspectReport, TextAndJsonCarryTheFigures) {
  test::TempDir dir;
  const std::string path = dir.file("tiny.gguf");
  test::write_tiny_moe(path, {});
  auto m = ModelFile::open(path, false);
  const place::ModelSpec s = build_model_spec(*m);

  ReportOptions o;
  const std::string text = model_report_text(*m, s, o);
  for (const char* want : {"tiny-qwen3moe (qwen3moe)", "4 routed, top-2, 0 shared; expert ffn 4",
                           "heads 2 q / 1 kv x 4", "1.5 K total, 1.1 K active per token",
                           "5.97 KiB: f32 5.97 KiB (27)", "4.00 KiB of weights read per decoded token",
                           "32 B per token (f16); 2.00 KiB at context 64", "gpt2, 16 tokens", "eos 15",
                           "softmax then top-k, top-k renormalised", "neox, theta 1e+06"})
    EXPECT_NE(text.find(want), std::string::npos) << "'" << want << "' not in:\n" << text;
  EXPECT_EQ(text.find("blk.0.ffn_up_exps.weight"), std::string::npos);  // no table by default

  o.tensors = true;
  o.context = 1000;
  const std::string table = model_report_text(*m, s, o);
  EXPECT_NE(table.find("at context 1000"), std::string::npos) << table;
  EXPECT_NE(table.find("blk.0.ffn_up_exps.weight"), std::string::npos) << table;
  EXPECT_NE(table.find("8 x 4 x 4"), std::string::npos) << table;
  EXPECT_NE(table.find("expert_up"), std::string::npos) << table;

  const nlohmann::json j = model_report_json(*m, s, o);
  EXPECT_EQ(j["architecture"], "qwen3moe");
  EXPECT_EQ(j["params"]["total"], 1528);
  EXPECT_EQ(j["params"]["active"], 1144);
  EXPECT_EQ(j["bytes_per_token"], 4096);
  EXPECT_EQ(j["routed_bytes"], 2 * 3 * 128 * 4);
  EXPECT_EQ(j["routed_bytes_per_token"], 2 * 3 * 128 * 4 / 2);
  EXPECT_EQ(j["kv_bytes_per_token_f16"], 32);
  EXPECT_EQ(j["kv_bytes_at_context_f16"], 32000);
  EXPECT_EQ(j["experts"]["used"], 2);
  EXPECT_EQ(j["bytes_by_type"]["f32"]["tensors"], 27);
  EXPECT_EQ(j["tokenizer"]["tokens"], 16);
  ASSERT_EQ(j["tensors"].size(), 27u);  // 3 + 2 layers x 12
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(j["tensors"][0]["ne"], nlohmann::json::array({8, 16}));
}

TEST(InspectReport, CountsAreHumanReadable) {
  EXPECT_EQ(format_count(7), "7");
  EXPECT_EQ(format_count(1528), "1.5 K");
  EXPECT_EQ(format_count(590100000), "590.1 M");
  EXPECT_EQ(format_count(30532122624ull), "30.53 B");
  EXPECT_EQ(format_count(671026419712ull), "671 B");
}

}  // namespace
}  // namespace hexe

// The deepseek-v3 pre-tokenizer (three regex passes) against HF tokenizers' splits of the fixture texts.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/tokenizer/regex_splitter.h"
#include "runtime/tokenizer/vocab.h"

namespace hexe {
namespace {

TEST(DeepseekV3PreTokenizer, SplitsLikeHfTokenizers) {
  const std::string path = std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/pretok/deepseek-v3.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const nlohmann::json j = nlohmann::json::parse(in);
  const std::vector<std::string> regexes = pre_regexes_for("deepseek-v3", "test");
  ASSERT_EQ(regexes, j.at("regexes").get<std::vector<std::string>>()) << "the three patterns, in order";
  RegexSplitter splitter(regexes, "deepseek-v3");
  int n = 0;
  for (const auto& c : j.at("cases")) {
    const std::string text = c.at("text");
    std::vector<std::string_view> got;
    splitter.split(text, got);
    EXPECT_EQ(std::vector<std::string>(got.begin(), got.end()), c.at("pieces").get<std::vector<std::string>>())
        << "text: " << text;
    ++n;
  }
  EXPECT_GE(n, 10);
}

}  // namespace
}  // namespace hexe

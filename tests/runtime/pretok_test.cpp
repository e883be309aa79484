// Named pre-tokenizers (pre_regexes_for) against reference splits of the fixture texts, written by
// tools/reference/make_pretok_fixtures.py: HF tokenizers for deepseek-v3 and glm4, Python's regex
// running Kimi's original tiktoken pat_str for kimi-k2.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "memory/error.h"
#include "runtime/tokenizer/regex_splitter.h"
#include "runtime/tokenizer/vocab.h"

namespace hexe {
namespace {

nlohmann::json load_fixture(const std::string& pre) {
  const std::string path = std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/pretok/" + pre + ".json";
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  if (!in) return nlohmann::json();
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("pre").get<std::string>(), pre) << path;
  return j;
}

// Splits every fixture text with hexe's passes for `pre` and compares the pieces; returns the
// number of texts checked.
int expect_splits_match(const std::string& pre, const nlohmann::json& j) {
  RegexSplitter splitter(pre_regexes_for(pre, "test"), pre);
  int n = 0;
  for (const auto& c : j.at("cases")) {
    const std::string text = c.at("text");
    std::vector<std::string_view> got;
    splitter.split(text, got);
    EXPECT_EQ(std::vector<std::string>(got.begin(), got.end()), c.at("pieces").get<std::vector<std::string>>())
        << pre << " text: " << text;
    ++n;
  }
  return n;
}

TEST(DeepseekV3PreTokenizer, SplitsLikeHfTokenizers) {
  const nlohmann::json j = load_fixture("deepseek-v3");
  ASSERT_FALSE(j.is_null());
  ASSERT_EQ(pre_regexes_for("deepseek-v3", "test"), j.at("regexes").get<std::vector<std::string>>())
      << "the three patterns, in order";
  EXPECT_GE(expect_splits_match("deepseek-v3", j), 10);
}

// GLM-4.5's tokenizer.json spells the contractions (?i:'s|...); hexe uses llama.cpp's case-folded
// form, so only the splits are compared.
TEST(Glm4PreTokenizer, SplitsLikeHfTokenizers) {
  const nlohmann::json j = load_fixture("glm4");
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(pre_regexes_for("glm4", "test").size(), 1u);
  EXPECT_GE(expect_splits_match("glm4", j), 15);
  EXPECT_EQ(pre_regexes_for("chatglm-bpe", "test"), pre_regexes_for("glm4", "test"));
}

// The reference is Kimi's pat_str itself (fancy-regex && intersections); hexe's is its PCRE2
// rewrite, one alternation, so only the splits are compared.
TEST(KimiK2PreTokenizer, SplitsLikeTiktokenPattern) {
  const nlohmann::json j = load_fixture("kimi-k2");
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(pre_regexes_for("kimi-k2", "test").size(), 1u) << "tiktoken applies one pattern";
  EXPECT_GE(expect_splits_match("kimi-k2", j), 15);
}

TEST(PreTokenizerNames, UnknownNameListsTheKnownOnes) {
  try {
    pre_regexes_for("no-such-pre", "model.gguf");
    FAIL() << "expected hexe::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'no-such-pre'"), std::string::npos) << msg;
    for (const char* name : {"glm4", "kimi-k2", "deepseek-v3", "qwen2", "llama3"}) {
      EXPECT_NE(msg.find(name), std::string::npos) << name << " missing from: " << msg;
      EXPECT_NO_THROW(pre_regexes_for(name, "test")) << name;
    }
  }
}

}  // namespace
}  // namespace hexe

// ReasoningFilter: <think> blocks hidden or shown in streamed text, tags split across pieces.
#include "runtime/tokenizer/reasoning_filter.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace hexe {
namespace {

struct Result {
  std::string text;
  int began = 0;
};

Result run(ReasoningFilter f, const std::vector<std::string>& pieces) {
  Result r;
  for (const std::string& p : pieces) {
    ReasoningFilter::Chunk c = f.push(p);
    r.text += c.text;
    r.began += c.reasoning_began;
  }
  r.text += f.flush();
  return r;
}

// Every way of cutting `s` into two or three pieces gives the same output as one piece.
void expect_any_split(bool hide, bool inside, const std::string& s, const std::string& want, int began) {
  for (size_t a = 0; a <= s.size(); ++a)
    for (size_t b = a; b <= s.size(); ++b) {
      const Result r = run(ReasoningFilter(hide, inside), {s.substr(0, a), s.substr(a, b - a), s.substr(b)});
      ASSERT_EQ(r.text, want) << "split at " << a << "," << b << " of '" << s << "'";
      ASSERT_EQ(r.began, began) << "split at " << a << "," << b;
    }
}

TEST(ReasoningFilter, HidesBlockAndNewlinesAfterIt) {
  expect_any_split(true, false, "<think>\nsome thought\n</think>\n\nThe answer.", "The answer.", 1);
  expect_any_split(true, false, "pre <think>x</think> post", "pre  post", 1);
  expect_any_split(true, false, "a<think>1</think>b<think>2</think>\nc", "abc", 2);
}

TEST(ReasoningFilter, ShowPassesEverythingThrough) {
  const std::string s = "<think>\nthought\n</think>\n\nanswer <thi";
  expect_any_split(false, false, s, s, 1);
}

TEST(ReasoningFilter, StartsInsideAfterAnOpeningPrompt) {
  // DeepSeek-R1: the prompt ends "<think>\n", the output opens with reasoning.
  expect_any_split(true, true, "weighing it up\n</think>\n\nFinal.", "Final.", 1);
  expect_any_split(false, true, "r</think>A", "r</think>A", 1);
}

TEST(ReasoningFilter, NearMissTagsAreText) {
  expect_any_split(true, false, "a <thin> b <think x> c </think>", "a <thin> b <think x> c </think>", 0);
  expect_any_split(true, false, "ends with <th", "ends with <th", 0);
  expect_any_split(true, false, "<<think>hidden</think>>", "<>", 1);
}

TEST(ReasoningFilter, UnclosedBlockStaysHidden) {
  expect_any_split(true, false, "ok <think>never closed </thi", "ok ", 1);
}

TEST(ReasoningFilter, TokenSizedPiecesAtRandom) {
  std::mt19937 rng(7);
  const std::string s = "Intro. <think>\nStep 1\nStep 2 </thin k\n</think>\n\nAnswer: 4 <think></think>\nDone";
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::string> pieces;
    for (size_t i = 0; i < s.size();) {
      const size_t n = 1 + rng() % 4;
      pieces.push_back(s.substr(i, n));
      i += n;
    }
    const Result r = run(ReasoningFilter(true), pieces);
    ASSERT_EQ(r.text, "Intro. Answer: 4 Done");
    ASSERT_EQ(r.began, 2);
  }
}

TEST(ReasoningFilter, PromptOpensReasoning) {
  EXPECT_TRUE(ReasoningFilter::prompt_opens_reasoning("<｜User｜>q<｜Assistant｜><think>\n"));
  EXPECT_FALSE(ReasoningFilter::prompt_opens_reasoning("<|assistant|>\n<think></think>"));
  EXPECT_FALSE(ReasoningFilter::prompt_opens_reasoning("<|im_start|>assistant\n"));
  EXPECT_FALSE(ReasoningFilter::prompt_opens_reasoning(
      "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
}

}  // namespace
}  // namespace hexe

// Pre-tokenizer: splits text with a list of PCRE2 patterns (UTF + Unicode properties, JIT).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hexe {

// Splits text the way HF's Split(behavior=Isolated) and llama.cpp's unicode_regex_split do: every
// match and every gap between matches becomes a piece. With several patterns each one splits
// the pieces of the previous one. Thread-safe after construction (match data is per call).
class RegexSplitter {
 public:
  // Compiles every pattern once; throws hexe::Error naming `what`, the pattern and PCRE2's
  // message with the offset on a bad pattern.
  RegexSplitter(const std::vector<std::string>& patterns, const std::string& what);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the pieces of `text` (views into it) to `out`.
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  bool empty() const { return codes_.empty(); }

 private:
  struct Code;
  void split_one(const Code& code, std::string_view text, std::vector<std::string_view>& out) const;
  std::vector<std::unique_ptr<Code>> codes_;
};

}  // namespace hexe

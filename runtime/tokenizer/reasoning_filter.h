// Streaming filter for <think>...</think> reasoning blocks in generated text (hexe chat
// --reasoning hide): pieces go in as they are sampled, the visible text comes out.
#pragma once

#include <string>
#include <string_view>

namespace hexe {

class ReasoningFilter {
 public:
  struct Chunk {
    std::string text;            // text to print now
    int reasoning_began = 0;  // reasoning blocks opened inside this push
  };

  // hide=false passes everything through unchanged (tags included); hide=true drops the tags
  // and what is between them, and the newlines that directly follow a closing tag.
  // start_inside: the prompt already opened the block (DeepSeek-R1's "<think>\n"), so the
  // output begins as reasoning; see prompt_opens_reasoning().
  explicit ReasoningFilter(bool hide, bool start_inside = false);

  // A tag split across pushes ("<thi" + "nk>") is recognised: text that may be the start of a
  // tag is held back until the next push decides it.
  Chunk push(std::string_view piece);
  // What is held back at the end of the reply (dropped if it is inside a hidden block).
  std::string flush();

  bool inside() const { return inside_; }

  // Whether a rendered prompt ends inside an open <think> block (the last "<think>" comes after
  // the last "</think>"), i.e. the model's answer starts with reasoning.
  static bool prompt_opens_reasoning(std::string_view prompt);

  static constexpr std::string_view kOpen = "<think>";
  static constexpr std::string_view kClose = "</think>";

 private:
  std::string emit(std::string_view s);

  bool hide_;
  bool inside_;
  bool announce_;               // start_inside: the first push reports reasoning_began
  bool skip_newlines_ = false;  // hide mode: drop newlines right after a closing tag
  std::string held_;            // a possible partial tag
};

}  // namespace hexe

// Streaming filter for <think>...</think> reasoning blocks (see reasoning_filter.h).
#include "runtime/tokenizer/reasoning_filter.h"

#include <algorithm>

namespace hexe {

namespace {

// Length of the longest suffix of `s` that is a proper prefix of `tag` (it may become the tag).
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

}  // namespace

ReasoningFilter::ReasoningFilter(bool hide, bool start_inside)
    : hide_(hide), inside_(start_inside), announce_(start_inside) {}

bool ReasoningFilter::prompt_opens_reasoning(std::string_view prompt) {
  const size_t open = prompt.rfind(kOpen);
  if (open == std::string_view::npos) return false;
  const size_t close = prompt.rfind(kClose);
  return close == std::string_view::npos || close < open;
}

// Outside text on its way out: in hide mode the newlines after a closing tag are dropped.
std::string ReasoningFilter::emit(std::string_view s) {
  if (skip_newlines_) {
    while (!s.empty() && (s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
    if (!s.empty()) skip_newlines_ = false;
  }
  return std::string(s);
}

ReasoningFilter::Chunk ReasoningFilter::push(std::string_view piece) {
  Chunk out;
  out.reasoning_began = announce_ ? 1 : 0;
  announce_ = false;
  held_ += piece;
  std::string_view rest = held_;
  for (;;) {
    const std::string_view tag = inside_ ? kClose : kOpen;
    const size_t at = rest.find(tag);
    if (at == std::string_view::npos) {
      // Keep back what could be the start of the tag; the rest is decided.
      const size_t keep = partial_tag_suffix(rest, tag);
      const std::string_view done = rest.substr(0, rest.size() - keep);
      if (!hide_) out.text += done;
      else if (!inside_) out.text += emit(done);
      held_ = std::string(rest.substr(rest.size() - keep));
      return out;
    }
    const std::string_view before = rest.substr(0, at);
    if (!hide_) {
      out.text += before;
      out.text += tag;
    } else if (!inside_) {
      out.text += emit(before);
    }
    if (!inside_) ++out.reasoning_began;
    inside_ = !inside_;
    if (!inside_ && hide_) skip_newlines_ = true;
    rest.remove_prefix(at + tag.size());
  }
}

std::string ReasoningFilter::flush() {
  std::string out;
  if (!hide_) out = held_;
  else if (!inside_) out = emit(held_);
  held_.clear();
  return out;
}

}  // namespace hexe

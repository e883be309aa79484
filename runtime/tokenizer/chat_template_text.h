// String helpers shared by the chat template renderers: Python's str methods as the Jinja
// templates call them, and the error for a role a template does not take.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hexe::chat_text {

inline std::string_view lstrip_newlines(std::string_view s) {
  while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  return s;
}
inline std::string_view rstrip_newlines(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}
inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
inline bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Python's str.strip() with no argument: removes the characters str.isspace() accepts, which
// include Unicode spaces (U+00A0, U+3000, ...), from both ends of UTF-8 text.
std::string_view py_strip(std::string_view s);

// Text after the last `sep` (all of `s` when absent): Python's s.split(sep)[-1].
inline std::string_view after_last(std::string_view s, std::string_view sep) {
  const size_t at = s.rfind(sep);
  return at == std::string_view::npos ? s : s.substr(at + sep.size());
}

[[noreturn]] void bad_role(const char* family, size_t index, const std::string& role,
                           const char* accepted);
// transformers refuses to render an empty conversation; so do the families that follow it.
void require_messages(const char* family, size_t n);

}  // namespace hexe::chat_text

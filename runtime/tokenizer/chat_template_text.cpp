// String helpers shared by the chat template renderers (see chat_template_text.h).
#include "runtime/tokenizer/chat_template_text.h"

#include <cstdint>

#include "memory/error.h"

namespace hexe::chat_text {

namespace {

// The code points Python's str.isspace() is true for.
bool py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Decodes the UTF-8 sequence starting at s[i]; len 0 when it is not a valid lead byte.
uint32_t decode_at(std::string_view s, size_t i, size_t& len) {
  const auto b = static_cast<unsigned char>(s[i]);
  len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return len = 0, 0;
  uint32_t c = len == 1 ? b : b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return c;
}

}  // namespace

std::string_view py_strip(std::string_view s) {
  size_t len = 0;
  while (!s.empty()) {
    const uint32_t c = decode_at(s, 0, len);
    if (len == 0 || !py_space(c)) break;
    s.remove_prefix(len);
  }
  while (!s.empty()) {
    size_t start = s.size() - 1;  // back up to the lead byte of the last character
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && s.size() - start < 4) --start;
    const uint32_t c = decode_at(s, start, len);
    if (len == 0 || start + len != s.size() || !py_space(c)) break;
    s.remove_suffix(len);
  }
  return s;
}

void bad_role(const char* family, size_t index, const std::string& role, const char* accepted) {
  throw Error(std::string("chat template ") + family + ": message " + std::to_string(index) +
              " has role '" + role + "', expected " + accepted);
}

void require_messages(const char* family, size_t n) {
  if (n == 0) throw Error(std::string("chat template ") + family + ": the conversation is empty");
}

}  // namespace hexe::chat_text

// Unicode NFC normalization (canonical decomposition, ordering and composition).
#pragma once

#include <string>
#include <string_view>

namespace hexe::unicode {

// NFC of UTF-8 text; ASCII-only text is returned unchanged without table lookups. Invalid
// UTF-8 bytes become U+FFFD (as the HF library sees them after its lossy input conversion).
std::string nfc(std::string_view text);

}  // namespace hexe::unicode

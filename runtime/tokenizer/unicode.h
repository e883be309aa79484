// UTF-8 helpers for the tokenizer: code point decode/encode, lossy repair, GPT-2 byte-level map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hexe::unicode {

// Length of the UTF-8 sequence that starts with lead byte `b` (1 for invalid leads/continuations).
int utf8_seq_len(uint8_t b);

// Decodes the code point at s[pos] and advances pos. Invalid or truncated sequences decode to
// U+FFFD and advance by one byte, so every byte is consumed exactly once.
uint32_t next_code_point(std::string_view s, size_t& pos);

void append_utf8(std::string& out, uint32_t cp);
std::vector<uint32_t> to_code_points(std::string_view s);
std::string from_code_points(const std::vector<uint32_t>& cps);

// Length of the longest prefix of s that ends on a complete code point, i.e. s minus a trailing
// sequence that is a valid but unfinished UTF-8 start (at most 3 bytes). Bytes that can never
// become valid are not held back.
size_t complete_prefix_len(std::string_view s);

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);
bool is_valid_utf8(std::string_view s);

// GPT-2 byte-level alphabet: every byte maps to one printable code point ('Ġ' for space).
const std::string& byte_to_unicode(uint8_t b);  // UTF-8 of the mapped code point
// Inverse; returns -1 for a code point outside the alphabet.
int unicode_to_byte(uint32_t cp);

}  // namespace hexe::unicode

// UTF-8 helpers for the tokenizer: code point decode/encode, lossy repair, GPT-2 byte-level map.
#include "runtime/tokenizer/unicode.h"

#include <array>

namespace hexe::unicode {

int utf8_seq_len(uint8_t b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

namespace {

// Valid second-byte range for a lead byte (Unicode Table 3-7); {0,0} for invalid leads.
std::pair<uint8_t, uint8_t> second_byte_range(uint8_t lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return {0x80, 0xBF};
  if (lead == 0xE0) return {0xA0, 0xBF};
  if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) return {0x80, 0xBF};
  if (lead == 0xED) return {0x80, 0x9F};
  if (lead == 0xF0) return {0x90, 0xBF};
  if (lead >= 0xF1 && lead <= 0xF3) return {0x80, 0xBF};
  if (lead == 0xF4) return {0x80, 0x8F};
  return {0, 0};
}

// Number of bytes of s[pos..] that form a valid sequence (>0), or minus the length of the
// maximal invalid subpart (<0), or 0 if the valid start is truncated by the end of s (then
// `*partial` holds how many bytes it has).
int classify(std::string_view s, size_t pos, int* partial) {
  const uint8_t lead = uint8_t(s[pos]);
  if (lead < 0x80) return 1;
  const auto [lo, hi] = second_byte_range(lead);
  if (lo == 0) return -1;
  const int len = utf8_seq_len(lead);
  for (int k = 1; k < len; ++k) {
    if (pos + k >= s.size()) {
      *partial = k;
      return 0;
    }
    const uint8_t c = uint8_t(s[pos + k]);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return -k;
  }
  return len;
}

}  // namespace

uint32_t next_code_point(std::string_view s, size_t& pos) {
  int partial = 0;
  const int n = classify(s, pos, &partial);
  if (n <= 0) {
    ++pos;
    return 0xFFFD;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(s.data() + pos);
  uint32_t cp = 0;
  switch (n) {
    case 1: cp = p[0]; break;
    case 2: cp = (uint32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F); break;
    case 3: cp = (uint32_t(p[0] & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F); break;
    default:
      cp = (uint32_t(p[0] & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) |
           (uint32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
  }
  pos += size_t(n);
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

std::vector<uint32_t> to_code_points(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) out.push_back(next_code_point(s, pos));
  return out;
}

std::string from_code_points(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t cp : cps) append_utf8(out, cp);
  return out;
}

size_t complete_prefix_len(std::string_view s) {
  // Only the last 3 bytes can hold an unfinished start.
  const size_t from = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t pos = from; pos < s.size(); ++pos) {
    const uint8_t b = uint8_t(s[pos]);
    if (b < 0x80 || (b & 0xC0) == 0x80) continue;
    int partial = 0;
    if (classify(s, pos, &partial) == 0) return pos;
  }
  return s.size();
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    int partial = 0;
    const int n = classify(bytes, pos, &partial);
    if (n > 0) {
      out.append(bytes.data() + pos, size_t(n));
      pos += size_t(n);
    } else {
      out += "\xEF\xBF\xBD";
      pos += n < 0 ? size_t(-n) : size_t(partial);
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    int partial = 0;
    const int n = classify(s, pos, &partial);
    if (n <= 0) return false;
    pos += size_t(n);
  }
  return true;
}

namespace {

struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 512> from_unicode;  // every mapped code point is below 0x144
  ByteMap() {
    from_unicode.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + extra++);
      append_utf8(to_unicode[size_t(b)], cp);
      from_unicode[cp] = int16_t(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to_unicode[b]; }

int unicode_to_byte(uint32_t cp) {
  return cp < 512 ? byte_map().from_unicode[cp] : -1;
}

}  // namespace hexe::unicode

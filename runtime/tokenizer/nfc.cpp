// Unicode NFC normalization (canonical decomposition, ordering and composition).
#include "runtime/tokenizer/nfc.h"

#include <algorithm>
#include <vector>

#include "runtime/tokenizer/nfc_data.h"
#include "runtime/tokenizer/unicode.h"

namespace hexe::unicode {

namespace {

// Hangul syllables compose and decompose algorithmically (Unicode 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr uint32_t kSCount = kLCount * kNCount;

uint8_t ccc_of(uint32_t cp) {
  if (cp < 0x300) return 0;
  const CccEntry* end = kCcc + kCccCount;
  const CccEntry* it =
      std::lower_bound(kCcc, end, cp, [](const CccEntry& e, uint32_t c) { return e.cp < c; });
  return it != end && it->cp == cp ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const DecompEntry* end = kDecomp + kDecompCount;
  const DecompEntry* it = std::lower_bound(
      kDecomp, end, cp, [](const DecompEntry& e, uint32_t c) { return e.cp < c; });
  if (it != end && it->cp == cp) {
    out.insert(out.end(), kDecompFlat + it->offset, kDecompFlat + it->offset + it->len);
  } else {
    out.push_back(cp);
  }
}

// Composite of (first, second), or 0 when they do not compose.
uint32_t compose(uint32_t first, uint32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount)
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount)
    return first + (second - kTBase);
  const ComposeEntry* end = kCompose + kComposeCount;
  const ComposeEntry* it = std::lower_bound(
      kCompose, end, std::pair{first, second}, [](const ComposeEntry& e, std::pair<uint32_t, uint32_t> k) {
        return e.first != k.first ? e.first < k.first : e.second < k.second;
      });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

}  // namespace

std::string nfc(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return uint8_t(c) < 0x80; }))
    return std::string(text);

  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) decompose(next_code_point(text, pos), cps);

  // Canonical ordering: stable sort each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (ccc_of(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc_of(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + long(i), cps.begin() + long(j),
                     [](uint32_t a, uint32_t b) { return ccc_of(a) < ccc_of(b); });
    i = j;
  }

  // Canonical composition: a character composes with the last starter unless blocked.
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  long starter = -1;
  uint8_t last_ccc = 0;
  for (uint32_t cp : cps) {
    const uint8_t c = ccc_of(cp);
    if (starter >= 0) {
      const bool adjacent = size_t(starter) + 1 == out.size();
      const bool blocked = !adjacent && (last_ccc == 0 || last_ccc >= c);
      if (!blocked) {
        if (uint32_t composite = compose(out[size_t(starter)], cp)) {
          out[size_t(starter)] = composite;
          continue;
        }
      }
    }
    if (c == 0) starter = long(out.size());
    last_ccc = c;
    out.push_back(cp);
  }
  return from_code_points(out);
}

}  // namespace hexe::unicode

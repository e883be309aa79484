// Unicode tables for NFC (generated into nfc_data.cpp by gen_nfc_data.py), sorted by code point.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hexe::unicode {

struct CccEntry { uint32_t cp; uint8_t ccc; };                      // canonical combining class != 0
struct DecompEntry { uint32_t cp; uint32_t offset; uint32_t len; };  // full canonical decomposition
struct ComposeEntry { uint32_t first; uint32_t second; uint32_t composite; };  // primary composites

extern const CccEntry kCcc[];
extern const size_t kCccCount;
extern const uint32_t kDecompFlat[];
extern const DecompEntry kDecomp[];
extern const size_t kDecompCount;
extern const ComposeEntry kCompose[];  // sorted by (first, second)
extern const size_t kComposeCount;

}  // namespace hexe::unicode

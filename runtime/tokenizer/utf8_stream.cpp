// Streaming detokenization: holds back an unfinished UTF-8 sequence so each chunk is valid text.
#include "runtime/tokenizer/utf8_stream.h"

#include "runtime/tokenizer/unicode.h"

namespace hexe {

std::string Utf8StreamDecoder::push(std::string_view bytes) {
  held_.append(bytes);
  const size_t n = unicode::complete_prefix_len(held_);
  std::string out = unicode::utf8_lossy(std::string_view(held_).substr(0, n));
  held_.erase(0, n);
  return out;
}

std::string Utf8StreamDecoder::flush() {
  std::string out = unicode::utf8_lossy(held_);
  held_.clear();
  return out;
}

}  // namespace hexe

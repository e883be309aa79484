// Streaming detokenization: holds back an unfinished UTF-8 sequence so each chunk is valid text.
#pragma once

#include <string>
#include <string_view>

namespace hexe {

// Feed token pieces (Tokenizer::token_to_piece) as they are sampled; each push returns the text
// that is complete so far. Bytes that can never be valid become U+FFFD; an unfinished sequence
// (at most 3 bytes) waits for the next push. flush() returns what is left, repaired.
class Utf8StreamDecoder {
 public:
  std::string push(std::string_view bytes);
  std::string flush();
  size_t pending() const { return held_.size(); }

 private:
  std::string held_;
};

}  // namespace hexe

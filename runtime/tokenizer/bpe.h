// BPE merge loops: ranked pair merges (GPT-2 / tokenizer.json) and score merges (SentencePiece).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hexe {

// Ranked merges keyed by the pair of token ids: (left, right) -> (rank, merged id).
class MergeTable {
 public:
  struct Entry {
    int32_t rank;
    int32_t merged;
  };
  void add(int32_t left, int32_t right, int32_t rank, int32_t merged);
  const Entry* find(int32_t left, int32_t right) const {
    auto it = map_.find(key(left, right));
    return it == map_.end() ? nullptr : &it->second;
  }
  size_t size() const { return map_.size(); }

 private:
  static uint64_t key(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
  std::unordered_map<uint64_t, Entry> map_;
};

// Merges adjacent symbols in place, always the lowest-rank pair first and, among equal ranks, the
// leftmost (HF tokenizers' BPE::merge_word). O(n log n) with a heap, so long words stay fast.
void merge_ranked(std::vector<int32_t>& ids, const MergeTable& merges);

// llama.cpp's SentencePiece BPE: symbols are the UTF-8 characters of `text`; repeatedly merge the
// adjacent pair whose concatenation is a token with the highest score (leftmost on ties).
// `lookup(piece)` returns the token id or -1 and `score(id)` its score. Returns the final pieces
// as byte ranges [offset, offset+len) of `text`.
struct Piece {
  uint32_t offset;
  uint32_t len;
};
template <class Lookup, class Score>
std::vector<Piece> merge_scored(std::string_view text, const Lookup& lookup, const Score& score);

}  // namespace hexe

#include "runtime/tokenizer/bpe_scored.inl"

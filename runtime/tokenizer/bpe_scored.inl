// Template body of merge_scored (SentencePiece BPE by piece score); included by bpe.h only.
#pragma once

#include <queue>

#include "runtime/tokenizer/unicode.h"

namespace hexe {

template <class Lookup, class Score>
std::vector<Piece> merge_scored(std::string_view text, const Lookup& lookup, const Score& score) {
  struct Sym {
    uint32_t offset, len;
    int32_t prev, next;
  };
  std::vector<Sym> syms;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = std::min<size_t>(unicode::utf8_seq_len(uint8_t(text[pos])), text.size() - pos);
    syms.push_back({uint32_t(pos), uint32_t(n), int32_t(syms.size()) - 1, int32_t(syms.size()) + 1});
    pos += n;
  }
  if (syms.empty()) return {};
  syms.back().next = -1;

  struct Bigram {
    float score;
    int32_t left, right;
    uint32_t size;  // bytes of the merged piece; stale entries no longer add up
    bool operator<(const Bigram& o) const {  // max-heap: higher score, then lower left first
      return score != o.score ? score < o.score : left > o.left;
    }
  };
  std::priority_queue<Bigram> queue;
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = syms[size_t(l)].len + syms[size_t(r)].len;
    const int32_t id = lookup(text.substr(syms[size_t(l)].offset, size));
    if (id < 0) return;
    queue.push({score(id), l, r, size});
  };
  for (size_t i = 1; i < syms.size(); ++i) try_add(int32_t(i) - 1, int32_t(i));

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Sym& l = syms[size_t(b.left)];
    Sym& r = syms[size_t(b.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size || l.next != b.right) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[size_t(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  std::vector<Piece> out;
  for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) out.push_back({syms[size_t(i)].offset, syms[size_t(i)].len});
  return out;
}

}  // namespace hexe

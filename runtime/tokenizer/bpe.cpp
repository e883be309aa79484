// BPE merge loops: ranked pair merges (GPT-2 / tokenizer.json).
#include "runtime/tokenizer/bpe.h"

#include <queue>

namespace hexe {

void MergeTable::add(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  // The first (lowest-rank) entry of a duplicated pair wins, as in HF.
  map_.try_emplace(key(left, right), Entry{rank, merged});
}

void merge_ranked(std::vector<int32_t>& ids, const MergeTable& merges) {
  const int32_t n = int32_t(ids.size());
  if (n < 2) return;
  std::vector<int32_t> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    prev[size_t(i)] = i - 1;
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank, pos, left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[size_t(pos)] < 0) return;
    const int32_t r = next[size_t(pos)];
    if (const MergeTable::Entry* e = merges.find(ids[size_t(pos)], ids[size_t(r)]))
      heap.push({e->rank, pos, ids[size_t(pos)], ids[size_t(r)]});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  std::vector<bool> dead(size_t(n), false);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int32_t r = next[size_t(c.pos)];
    // Stale: the left symbol was absorbed, or either side changed since the push.
    if (dead[size_t(c.pos)] || r < 0 || ids[size_t(c.pos)] != c.left || ids[size_t(r)] != c.right)
      continue;
    ids[size_t(c.pos)] = merges.find(c.left, c.right)->merged;
    dead[size_t(r)] = true;
    next[size_t(c.pos)] = next[size_t(r)];
    if (next[size_t(r)] >= 0) prev[size_t(next[size_t(r)])] = c.pos;
    push(prev[size_t(c.pos)]);
    push(c.pos);
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0; i = next[size_t(i)]) ids[w++] = ids[size_t(i)];
  ids.resize(w);
}

}  // namespace hexe

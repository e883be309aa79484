// The bookkeeping of strategy cache's GPU expert cache (runtime/engine/cuda): which of a layer's
// experts sit in which of its slots, and which slot a miss evicts (least recently used). Host-only
// so that the policy is tested without a GPU.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace hexe {

class ExpertLru {
 public:
  ExpertLru() = default;
  ExpertLru(int n_experts, int slots) : slot_of_(size_t(n_experts), -1), expert_in_(size_t(slots), -1), last_use_(size_t(slots), 0) {}

  int slots() const { return int(expert_in_.size()); }
  int slot_of(int expert) const { return slot_of_[size_t(expert)]; }
  int expert_in(int slot) const { return expert_in_[size_t(slot)]; }

  struct Use {
    int slot;
    bool miss;    // the expert must be copied into `slot` before it runs
    int evicted;  // the expert the slot held before (-1: none)
  };

  // One pass's experts in the order given: a resident one is a hit; any other takes the least
  // recently used slot. Callers list a pass's hits before its misses (pass_order) so that a miss
  // never evicts an expert the same pass still has to run.
  Use use(int expert) {
    int s = slot_of_[size_t(expert)];
    Use u{s, false, -1};
    if (s < 0) {
      s = int(std::min_element(last_use_.begin(), last_use_.end()) - last_use_.begin());
      u = {s, true, expert_in_[size_t(s)]};
      if (u.evicted >= 0) slot_of_[size_t(u.evicted)] = -1;
      expert_in_[size_t(s)] = expert;
      slot_of_[size_t(expert)] = s;
    }
    last_use_[size_t(s)] = ++tick_;
    return u;
  }

  // The experts `used` reordered for use(): resident ones first, then the rest, each group in
  // the given order.
  std::vector<int> pass_order(const std::vector<int>& used) const {
    std::vector<int> out;
    for (int e : used)
      if (slot_of(e) >= 0) out.push_back(e);
    for (int e : used)
      if (slot_of(e) < 0) out.push_back(e);
    return out;
  }

 private:
  std::vector<int> slot_of_;     // per expert: its slot, or -1
  std::vector<int> expert_in_;   // per slot: its expert, or -1
  std::vector<uint64_t> last_use_;
  uint64_t tick_ = 0;
};

}  // namespace hexe

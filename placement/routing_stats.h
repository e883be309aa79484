// Routing statistics: how often each routed expert of each layer was chosen, counted over a run
// (`hexe run --routing-stats FILE` writes them). The planner uses them to pick the experts that
// fill spare VRAM (experts-cpu+hot) and to predict expert-cache hit rates (cache).
//
// File format (JSON):
//   {"format": "hexe-routing-stats", "version": 1, "model": "Qwen3-30B-A3B",
//    "n_expert": 128, "n_expert_used": 8, "tokens": 123456,
//    "layers": [{"layer": 0, "counts": [c_0, ..., c_{n_expert-1}]}, ...]}
// counts[e] = how many tokens routed to expert e in that layer (each token counts n_expert_used
// times per layer in all). Layers without MoE are left out.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hexe::place {

class RoutingStats {
 public:
  RoutingStats() = default;
  RoutingStats(std::string model, int n_expert, int n_expert_used);

  // Adds `n` activations of `expert` in `layer` (creates the layer on first use).
  void add(int layer, int expert, uint64_t n = 1);
  void set_tokens(uint64_t t) { tokens_ = t; }

  const std::string& model() const { return model_; }
  int n_expert() const { return n_expert_; }
  int n_expert_used() const { return n_expert_used_; }
  uint64_t tokens() const { return tokens_; }
  bool has_layer(int layer) const { return counts_.count(layer) != 0; }
  const std::vector<uint64_t>& counts(int layer) const;  // throws for a missing layer

  // Experts of `layer` by decreasing count (ties by id).
  std::vector<int> hottest(int layer) const;
  // Fraction of the layer's activations that fall on its `slots` most used experts: the hit
  // rate of a frequency-ordered cache of that size. Without data for the layer, the uniform
  // routing figure slots / n_expert.
  double top_mass(int layer, int slots) const;
  // Hit rate of an LRU cache of `slots` experts (what the engine's expert cache runs) when tokens
  // pick their top-k independently with these shares: Che's approximation in token time, expert
  // e resident with probability 1 - (1 - q_e)^t, q_e = k * share_e, where t fills the cache.
  // At most top_mass(layer, slots); slots / n_expert for uniform routing.
  double lru_hit_rate(int layer, int slots) const;
  // Activation probability of one expert (its share of the layer's activations), the sample's
  // share shrunk toward uniform as far as sampling noise explains the sample's spread.
  double share(int layer, int expert) const;
  std::vector<double> shares(int layer) const;  // share() of every expert, computed once

  std::string to_json_string() const;
  static RoutingStats from_json_string(const std::string& text, const std::string& origin);
  static RoutingStats load(const std::string& path);
  void save(const std::string& path) const;

 private:
  std::string model_;
  int n_expert_ = 0;
  int n_expert_used_ = 0;
  uint64_t tokens_ = 0;
  std::map<int, std::vector<uint64_t>> counts_;
};

}  // namespace hexe::place

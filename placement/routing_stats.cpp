// Routing statistics: counting, ranking, hit rates, and the JSON file format.
#include "placement/routing_stats.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <nlohmann/json.hpp>
#include <sstream>

#include "memory/error.h"

namespace hexe::place {

using nlohmann::json;

RoutingStats::RoutingStats(std::string model, int n_expert, int n_expert_used)
    : model_(std::move(model)), n_expert_(n_expert), n_expert_used_(n_expert_used) {}

void RoutingStats::add(int layer, int expert, uint64_t n) {
  auto& c = counts_[layer];
  if (c.empty()) c.assign(size_t(n_expert_), 0);
  if (expert < 0 || expert >= n_expert_) return;  // callers pass router output; ids are in range
  c[size_t(expert)] += n;
}

const std::vector<uint64_t>& RoutingStats::counts(int layer) const {
  auto it = counts_.find(layer);
  if (it == counts_.end()) throw Error("routing stats: no counts for layer " + std::to_string(layer));
  return it->second;
}

std::vector<int> RoutingStats::hottest(int layer) const {
  std::vector<int> ids(static_cast<size_t>(n_expert_));
  std::iota(ids.begin(), ids.end(), 0);
  auto it = counts_.find(layer);
  if (it == counts_.end()) return ids;
  const auto& c = it->second;
  std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) { return c[size_t(a)] > c[size_t(b)]; });
  return ids;
}

double RoutingStats::top_mass(int layer, int slots) const {
  if (n_expert_ <= 0) return 0;
  slots = std::clamp(slots, 0, n_expert_);
  std::vector<double> sh = shares(layer);
  std::partial_sort(sh.begin(), sh.begin() + slots, sh.end(), std::greater<>());
  return std::accumulate(sh.begin(), sh.begin() + slots, 0.0);
}

double RoutingStats::lru_hit_rate(int layer, int slots) const {
  if (n_expert_ <= 0) return 0;
  slots = std::clamp(slots, 0, n_expert_);
  if (slots == 0) return 0;
  if (slots == n_expert_) return 1;
  // Time in tokens: a token picks expert e with probability q_e = k * share_e (its k experts are
  // distinct, so a cache of k slots holds just the last token's), a Poisson rate -ln(1 - q_e).
  const double k = std::max(1, n_expert_used_);
  const std::vector<double> share_of = shares(layer);
  std::vector<double> rate(static_cast<size_t>(n_expert_));
  int seen = 0;
  for (int e = 0; e < n_expert_; ++e) {
    const double q = std::min(k * share_of[size_t(e)], 1 - 1e-9);
    rate[size_t(e)] = -std::log1p(-q);
    seen += share_of[size_t(e)] > 0;
  }
  // Experts never seen never take a slot; with no more seen than slots, every seen one stays.
  if (seen <= slots) return 1;
  auto occupied = [&](double t) {
    double n = 0;
    for (double r : rate) n += -std::expm1(-r * t);
    return n;
  };
  double lo = 0, hi = 1;
  while (occupied(hi) < slots) hi *= 2;
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    (occupied(mid) < slots ? lo : hi) = mid;
  }
  double hit = 0;
  for (int e = 0; e < n_expert_; ++e) hit += share_of[size_t(e)] * -std::expm1(-rate[size_t(e)] * hi);
  return hit;
}

// The sample's shares, shrunk toward uniform by how much of their spread sampling noise explains
// (empirical Bayes): with T tokens each expert's count varies by about mu (1 - k/E) around its
// mean mu = N/E even when routing is uniform, and a short sample's "hot" experts are mostly that
// noise; the weight of the uniform prior is noise / (noise + the spread beyond it).
std::vector<double> RoutingStats::shares(int layer) const {
  const size_t E = size_t(std::max(0, n_expert_));
  std::vector<double> out(E, E ? 1.0 / double(E) : 0.0);
  auto it = counts_.find(layer);
  if (it == counts_.end() || E == 0) return out;
  const auto& c = it->second;
  const double total = double(std::accumulate(c.begin(), c.end(), uint64_t(0)));
  if (total <= 0) return out;
  const double mu = total / double(E);
  double var = 0;
  for (uint64_t v : c) var += (double(v) - mu) * (double(v) - mu);
  var = E > 1 ? var / double(E - 1) : 0;
  const double noise = mu * std::max(0.0, 1.0 - double(std::max(1, n_expert_used_)) / double(E));
  const double signal = std::max(0.0, var - noise);
  const double prior = noise + signal > 0 ? noise / (noise + signal) : 1.0;
  for (size_t e = 0; e < E; ++e) out[e] = (1 - prior) * double(c[e]) / total + prior / double(E);
  return out;
}

double RoutingStats::share(int layer, int expert) const { return shares(layer)[size_t(expert)]; }

std::string RoutingStats::to_json_string() const {
  json layers = json::array();
  for (const auto& [l, c] : counts_) layers.push_back({{"layer", l}, {"counts", c}});
  json j = {{"format", "hexe-routing-stats"}, {"version", 1}, {"model", model_},
            {"n_expert", n_expert_}, {"n_expert_used", n_expert_used_}, {"tokens", tokens_},
            {"layers", layers}};
  return j.dump(1);
}

RoutingStats RoutingStats::from_json_string(const std::string& text, const std::string& origin) {
  try {
    json j = json::parse(text);
    if (j.value("format", std::string()) != "hexe-routing-stats")
      throw Error(origin + ": field 'format' must be \"hexe-routing-stats\"");
    if (j.value("version", 0) != 1) throw Error(origin + ": unsupported version (expected 1)");
    RoutingStats s(j.value("model", std::string()), j.at("n_expert").get<int>(), j.value("n_expert_used", 0));
    if (s.n_expert_ <= 0) throw Error(origin + ": n_expert must be positive");
    s.tokens_ = j.value("tokens", uint64_t(0));
    for (const auto& l : j.at("layers")) {
      const int layer = l.at("layer").get<int>();
      auto c = l.at("counts").get<std::vector<uint64_t>>();
      if (int(c.size()) != s.n_expert_)
        throw Error(origin + ": layer " + std::to_string(layer) + " has " + std::to_string(c.size()) +
                    " counts, expected n_expert = " + std::to_string(s.n_expert_));
      s.counts_[layer] = std::move(c);
    }
    return s;
  } catch (const json::exception& e) {
    throw Error(origin + ": " + e.what());
  }
}

RoutingStats RoutingStats::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open routing stats " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_string(ss.str(), path);
}

void RoutingStats::save(const std::string& path) const {
  std::ofstream out(path);
  if (!out) throw Error("cannot write routing stats " + path);
  out << to_json_string() << "\n";
}

}  // namespace hexe::place

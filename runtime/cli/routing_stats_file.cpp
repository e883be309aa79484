// Engine routing counts -> placement::RoutingStats JSON (hexe run/perplexity --routing-stats).
#include "runtime/cli/routing_stats_file.h"

#include <cstdio>

#include "placement/routing_stats.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/model.h"

namespace hexe::cli {

place::RoutingStats routing_stats_of(const Engine& engine, const Model& model, uint64_t tokens) {
  const place::ModelSpec& spec = model.spec();
  place::RoutingStats stats(spec.name, spec.n_expert, spec.n_expert_used);
  const auto& per_layer = engine.routing_counts().per_layer;
  for (size_t l = 0; l < per_layer.size(); ++l) {
    uint64_t sum = 0;
    for (uint64_t c : per_layer[l]) sum += c;
    if (sum == 0) continue;  // a dense layer (or one that saw no tokens)
    for (size_t e = 0; e < per_layer[l].size(); ++e)
      if (per_layer[l][e]) stats.add(int(l), int(e), per_layer[l][e]);
  }
  stats.set_tokens(tokens);
  return stats;
}

void write_routing_stats(const Engine& engine, const Model& model, uint64_t tokens,
                         const std::string& path) {
  const auto& per_layer = engine.routing_counts().per_layer;
  routing_stats_of(engine, model, tokens).save(path);
  std::fprintf(stderr, "routing statistics: %s (%zu layers, %llu tokens)\n", path.c_str(),
               per_layer.size(), static_cast<unsigned long long>(tokens));
}

}  // namespace hexe::cli

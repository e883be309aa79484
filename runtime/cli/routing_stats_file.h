// `--routing-stats FILE.json` of hexe run / hexe perplexity: the engine's expert counts as a file.
#pragma once
#include <cstdint>
#include <string>

#include "placement/routing_stats.h"

namespace hexe {
class Engine;
class Model;
}  // namespace hexe

namespace hexe::cli {

// Writes the per-layer expert activation counts the engine gathered (after
// engine.enable_routing_counts(true)) in placement/routing_stats.h's format, with `tokens` the
// number of tokens that went through the model. Layers without routed experts are left out.
void write_routing_stats(const Engine& engine, const Model& model, uint64_t tokens,
                         const std::string& path);
// The same counts as a RoutingStats (for a plan made from what the engine just routed).
place::RoutingStats routing_stats_of(const Engine& engine, const Model& model, uint64_t tokens);

}  // namespace hexe::cli

// `--plan FILE` and `--strategy S [--profile P]` on run, chat, perplexity and bench: the engine
// follows a placement plan: its GPU layers run through runtime/engine/offload.h, and it sets the
// threads, KV-cache size and prefill chunk; its predictions are printed beside what was measured.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "placement/plan.h"
#include "placement/routing_stats.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/model.h"

namespace hexe::cli {

struct ModelOptions;

struct PlanChoice {
  std::string plan_file;  // --plan
  std::string strategy;   // --strategy
  std::string profile;    // --profile (with --strategy); empty: this machine's topology, unmeasured
  std::string routing;    // --routing-from (with --strategy): routing statistics for the plan
};

void add_plan_choice_options(CLI::App& cmd, PlanChoice& c);

// The plan --plan/--strategy name for `model` (nullopt when neither was given), checked against
// the model (a saved plan must list this model's tensors with the same types and sizes) and this
// machine (no GPU placement, fits in host memory). `prompt` sizes the predicted prefill.
// Throws hexe::Error saying what does not match or what is missing.
// `stats` (when set) replaces --routing-from: routing the caller measured itself.
std::optional<place::Plan> resolve_plan(const ModelOptions& o, const Model& model, int64_t prompt,
                                        const place::RoutingStats* stats = nullptr);

// Layers [0, N) whose attention the plan puts on the GPU (the engine's GPU prefix).
int gpu_layer_count(const place::Plan& plan);

// Applies the plan's GPU layers (cfg.offload), threads, KV-cache size and prefill chunk unless
// -t/-c/-b were given.
void apply_plan(const place::Plan& plan, const ModelOptions& o, EngineConfig& cfg);

// "plan 'cpu' for NAME on PROFILE: predicted prefill ... tok/s, decode ... tok/s (DRAM)".
std::string plan_summary(const place::Plan& plan);

}  // namespace hexe::cli

// Options shared by the subcommands that load and run a model, registered with CLI11 in one place.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "runtime/engine/engine.h"
#include "runtime/engine/model.h"
#include "runtime/engine/sampling.h"
#include "runtime/cli/plan_execution.h"

namespace hexe::cli {

struct ModelOptions {
  std::string model;   // -m; empty: the shipped model
  int threads = 0;     // -t; 0: one per core
  int64_t ctx = 4096;  // -c
  int batch = 512;     // -b
  bool split_experts = false;
  bool no_progress = false;
  bool no_pin = false;  // --no-pin: leave the engine's threads unpinned
  PlanChoice plan;
  // --repack: copy quantised weights (q8_0, the 32-block nibble types, q4_K, q5_K, q6_K) into the
  // AVX-512 layout at load (auto: the plan's choice, else when the copy fits in memory beside the
  // mapped file or in place of the copied experts' blocks, as the planner decides; on / off win
  // over a plan, as -t does).
  std::string repack = "auto";
  // --numa: on machines with several NUMA nodes, place each routed expert's copy on one node
  // (interleaved by id) and let that node's threads compute it (needs the --repack copy).
  std::string numa = "auto";
  // Set when given on the command line, so a plan's values do not override them.
  bool threads_given = false, ctx_given = false, batch_given = false;
};

// with_ctx: register -c as the KV-cache size (perplexity uses -c for its chunk size instead).
void add_model_options(CLI::App& cmd, ModelOptions& o, bool with_ctx = true);
void add_sampling_options(CLI::App& cmd, SamplingParams& p);

// The shipped default model: models/*.gguf beside the executable's source tree.
std::string default_model_path();
std::unique_ptr<Model> load_model(const ModelOptions& o);
EngineConfig engine_config(const ModelOptions& o);

// engine_config plus the plan --plan/--strategy name (checked and applied; its summary printed to
// stderr). `prompt_tokens` sizes the plan's predicted prefill.
struct EngineSetup {
  EngineConfig config;
  std::optional<place::Plan> plan;
};
// Also makes the CPU weight copy (--repack / the plan's cpu_weight_layout) before any engine runs.
EngineSetup engine_setup(const ModelOptions& o, Model& model, int64_t prompt_tokens);

// Reads a whole text file; errors name the path.
std::string read_text_file(const std::string& path);

}  // namespace hexe::cli

// Prompt processing + sampling loop for one sequence, with timings.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "runtime/engine/engine.h"
#include "runtime/engine/sampling.h"

namespace hexe {

struct GenerationStats {
  int64_t n_prompt = 0, n_generated = 0;
  double prompt_seconds = 0, generation_seconds = 0;
  bool stopped_at_eog = false;
  double prompt_tps() const { return prompt_seconds > 0 ? n_prompt / prompt_seconds : 0; }
  double generation_tps() const { return generation_seconds > 0 ? n_generated / generation_seconds : 0; }
};

struct GenerateOptions {
  int n_predict = 128;      // tokens to sample; -1: until end of generation or the context is full
  bool ignore_eog = false;  // keep going past end-of-generation tokens (tests, benchmarks)
};

// Appends `prompt` to sequence `seq` (in passes of the engine's batch size), then samples
// tokens. on_token(id) is called for each sampled token; returning false stops. End-of-generation
// tokens stop and are not passed on (unless ignore_eog). `history` (tokens already in the
// sequence, for repetition penalties) is extended.
GenerationStats generate(Engine& engine, int seq, std::span<const int32_t> prompt, const GenerateOptions& opt,
                         Sampler& sampler, std::vector<int32_t>& history,
                         const std::function<bool(int32_t)>& on_token);

}  // namespace hexe

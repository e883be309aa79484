// Reads the HF reference fixtures (tests/reference/fixtures/models/*/reference.json) for the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hexe::testing {

struct PromptRef {
  std::string name, text;
  std::vector<int32_t> tokens;
};

struct LogitsRef {
  std::string prompt;
  std::vector<int64_t> positions;
  std::vector<float> values;  // [positions][n_vocab]
  // Per position: the smallest gap, over layers, between the last chosen and the first unchosen
  // expert's router logit (HF). Small gaps mean a tiny perturbation can swap an expert.
  std::vector<double> router_gap;
};

struct GreedyRef {
  std::string prompt;
  std::vector<int32_t> new_tokens;
  std::vector<double> top2_margin;  // HF's top-1 minus top-2 logit at each new token
};

struct VariantRef {
  std::string name;                // f32, f16, q8_0
  std::vector<std::string> files;  // GGUF files holding this variant (absolute paths)
  std::vector<LogitsRef> logits;
  std::vector<GreedyRef> greedy;
  double max_abs_logit = 0;
};

struct ModelRef {
  std::string name, dir, hf_dir;  // absolute paths
  int n_vocab = 0;
  std::vector<PromptRef> prompts;
  std::vector<VariantRef> variants;
  nlohmann::json perplexity;  // null when the model has no perplexity fixture
  const VariantRef& variant(const std::string& name) const;
  const PromptRef& prompt(const std::string& name) const;
};

std::string fixtures_dir();
std::vector<std::string> fixture_model_names();
ModelRef load_model_ref(const std::string& name);

}  // namespace hexe::testing

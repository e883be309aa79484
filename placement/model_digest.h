// A model's weights summed per layer and per purpose (attention, router, shared experts, dense
// FFN, routed experts), which is what the cost model and the memory fit reason on.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_kernels/format.h"
#include "placement/model_shapes.h"

namespace hexe::place {

struct WeightGroup {
  uint64_t bytes = 0;
  double params = 0;              // elements (multiply-adds per token)
  DType type = DType::F32;        // the type holding most of the bytes (picks the compute path)
  uint64_t type_bytes = 0;
  // The same per weight type (Q4_K_M experts: gate/up q4_K, down q6_K), where rates differ.
  struct Part {
    DType type = DType::F32;
    uint64_t bytes = 0;
    double params = 0;
  };
  std::vector<Part> parts;
  int matrices = 0;  // tensors of two or more dimensions (a GEMV each in decode; stacked experts: one)
  void add(const TensorSpec& t);
};

// Which group a tensor belongs to.
enum class WeightKind { Attn, Router, Shared, Dense, Experts, Embd, Head };
WeightKind weight_kind(const TensorSpec& t);

struct LayerDigest {
  int layer = 0;
  bool moe = false;
  WeightGroup attn;     // attention matrices, norms, biases, sinks
  WeightGroup router;   // router and its bias
  WeightGroup shared;   // shared experts
  WeightGroup dense;    // dense FFN
  WeightGroup experts;  // every routed expert of the layer
  int n_expert = 0, n_expert_used = 0;
  // Probability that a token routes to each expert (k x its share of the activations), from
  // routing statistics; empty: uniform routing.
  std::vector<double> pick;
  // Expected distinct experts `tokens` tokens read: sum over experts of 1 - (1 - pick)^tokens
  // (experts_touched() when routing is uniform).
  double touched(double tokens) const;
  // The routed-expert GEMMs' batch for `tokens` tokens, weighted by FLOPs: T * sum(p^2) / sum(p)
  // (T * k / E when routing is uniform). Skewed routing gives the hot experts more.
  // `skip` (sorted expert ids, e.g. a hot set on the GPU): over the other experts only, which
  // with skewed routing are the colder ones with smaller batches.
  double tokens_per_expert(double tokens, const std::vector<int>* skip = nullptr) const;
  double expert_bytes() const { return n_expert ? double(experts.bytes) / n_expert : 0; }    // one expert
  double expert_params() const { return n_expert ? experts.params / n_expert : 0; }
};

struct ModelDigest {
  std::vector<LayerDigest> layers;
  WeightGroup embd;     // token embedding (a row lookup per token)
  WeightGroup head;     // output norm + output matrix (tied: the embedding is read as the head)
  int n_moe_layers = 0;
};

ModelDigest digest_model(const PlanModel& m);

// Expected distinct experts a layer touches for `tokens` tokens with uniform routing:
// E * (1 - (1 - k/E)^tokens). 1 token: k; many tokens: E.
double experts_touched(int n_expert, int n_expert_used, double tokens);

}  // namespace hexe::place

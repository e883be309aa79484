// Per-layer weight totals by purpose.
#include "placement/model_digest.h"

#include <algorithm>
#include <cmath>

namespace hexe::place {

void WeightGroup::add(const TensorSpec& t) {
  bytes += t.bytes;
  double n = 1;
  for (auto d : t.ne) n *= double(d);
  params += n;
  if (t.bytes > type_bytes) {  // dominant type by bytes (tensors of one group mostly share it)
    type_bytes = t.bytes;
    type = t.type;
  }
  auto it = std::find_if(parts.begin(), parts.end(), [&](const Part& p) { return p.type == t.type; });
  if (it == parts.end()) it = parts.insert(parts.end(), Part{t.type, 0, 0});
  it->bytes += t.bytes;
  it->params += n;
  if (t.ne.size() >= 2) ++matrices;
}

WeightKind weight_kind(const TensorSpec& t) {
  switch (t.role) {
    case TensorRole::TokenEmbd: return WeightKind::Embd;
    case TensorRole::Output:
    case TensorRole::OutputNorm: return WeightKind::Head;
    case TensorRole::Router:
    case TensorRole::RouterBias: return WeightKind::Router;
    case TensorRole::ExpertGate:
    case TensorRole::ExpertUp:
    case TensorRole::ExpertDown: return WeightKind::Experts;
    case TensorRole::SharedGate:
    case TensorRole::SharedUp:
    case TensorRole::SharedDown: return WeightKind::Shared;
    case TensorRole::DenseGate:
    case TensorRole::DenseUp:
    case TensorRole::DenseDown: return WeightKind::Dense;
    default: break;
  }
  // Expert biases (GPT-OSS) travel with the experts they belong to.
  if (t.name.find("_exps.") != std::string::npos) return WeightKind::Experts;
  if (t.layer < 0) return WeightKind::Head;
  return WeightKind::Attn;
}

ModelDigest digest_model(const PlanModel& m) {
  ModelDigest d;
  const auto& s = m.spec;
  d.layers.resize(size_t(std::max(0, s.n_layers)));
  for (int i = 0; i < s.n_layers; ++i) {
    d.layers[size_t(i)].layer = i;
    d.layers[size_t(i)].n_expert = s.n_expert;
    d.layers[size_t(i)].n_expert_used = s.n_expert_used;
  }
  for (const auto& t : s.tensors) {
    const WeightKind k = weight_kind(t);
    if (k == WeightKind::Embd) {
      d.embd.add(t);
      if (s.tied_embeddings) d.head.add(t);
      continue;
    }
    if (k == WeightKind::Head || t.layer < 0 || t.layer >= s.n_layers) {
      d.head.add(t);
      continue;
    }
    LayerDigest& l = d.layers[size_t(t.layer)];
    switch (k) {
      case WeightKind::Router: l.router.add(t); break;
      case WeightKind::Shared: l.shared.add(t); break;
      case WeightKind::Dense: l.dense.add(t); break;
      case WeightKind::Experts: l.experts.add(t); l.moe = true; break;
      default: l.attn.add(t); break;
    }
  }
  for (const auto& l : d.layers) d.n_moe_layers += l.moe;
  return d;
}

double LayerDigest::touched(double tokens) const {
  if (pick.empty()) return experts_touched(n_expert, n_expert_used, tokens);
  if (tokens <= 0) return 0;
  double u = 0;
  for (double p : pick) u += 1.0 - std::pow(1.0 - std::clamp(p, 0.0, 1.0), tokens);
  return u;
}

double LayerDigest::tokens_per_expert(double tokens, const std::vector<int>* skip) const {
  if (pick.empty()) return n_expert > 0 ? tokens * n_expert_used / n_expert : 0;
  double s1 = 0, s2 = 0;
  for (size_t e = 0; e < pick.size(); ++e) {
    if (skip && std::binary_search(skip->begin(), skip->end(), int(e))) continue;
    s1 += pick[e], s2 += pick[e] * pick[e];
  }
  return s1 > 0 ? tokens * s2 / s1 : 0;
}

double experts_touched(int n_expert, int n_expert_used, double tokens) {
  if (n_expert <= 0 || tokens <= 0) return 0;
  const double p = double(n_expert_used) / n_expert;
  return n_expert * (1.0 - std::pow(1.0 - p, tokens));
}

}  // namespace hexe::place

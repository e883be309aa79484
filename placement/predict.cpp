// Prefill and decode predictions from per-layer op costs and the CPU/GPU overlap.
#include "placement/predict.h"

#include <algorithm>
#include <cmath>

namespace hexe::place {

namespace {

// Average positions a layer attends to when the cache holds `ctx` tokens, over full and
// sliding-window layers.
double effective_ctx(const PlanModel& m, double ctx) {
  const auto& a = m.attn;
  const int L = std::max(1, m.spec.n_layers);
  if (a.sliding_window <= 0 || a.n_sliding_layers <= 0) return ctx;
  const double s = std::min(a.n_sliding_layers, L);
  return ((L - s) * ctx + s * std::min(ctx, double(a.sliding_window))) / L;
}

Cost op_on(Device d, const CostModel& cm, double bytes, double flops, DType type, int cpu_calls, int launches,
           bool cpu_rows16 = false, bool decode = false, int gemv_calls = 0) {
  return d == Device::Cpu ? cm.cpu_op(bytes, flops, type, cpu_calls, cpu_rows16)
                          : cm.gpu_op(bytes, flops, launches, decode, gemv_calls);
}

}  // namespace

bool flagged_decode(const Plan& plan) {
  bool any = false;
  for (const LayerPlan& l : plan.layers) {
    if (l.attn != Device::Gpu || !l.moe) continue;
    if (l.experts_decode != ExpertExec::Cpu || !l.gpu_experts.empty()) return false;
    any = true;
  }
  return any;
}

Cost layer_cost(const LayerPlan& lp, const LayerDigest& ld, const PlanModel& m, const CostModel& cm,
                double tokens, double ctx, double seqs, bool decode, int kv_elem_bytes, bool cpu_rows16,
                bool flagged) {
  const auto& eff = cm.eff();
  // GPU launch costs are booked per layer below (kernels x the per-kernel time), not per op.
  const int op_launches = 0;
  const double T = tokens;
  const double c_eff = effective_ctx(m, ctx);
  // (The CPU's cache holds f32 values, whatever the GPU's holds.)
  const double kv_layer_bytes =
      double(m.attn.kv_values_per_token_layer()) * (lp.attn == Device::Cpu ? kCpuKvElemBytes : kv_elem_bytes);

  // Attention block: weights once, the cache once per sequence, attention FLOPs per query.
  const double attn_bytes = double(ld.attn.bytes + ld.router.bytes) + seqs * c_eff * kv_layer_bytes;
  const double attn_flops = 2.0 * T * (ld.attn.params + ld.router.params) + T * m.attn.flops_per_query(c_eff);
  Cost pre;
  if (lp.attn == Device::Cpu && cm.cpu_attention_rate() > 0) {
    // On the CPU the projections run as matmuls and the attention core (scores, softmax,
    // weighted values over the cache) in its own kernel, at the rate measured for it.
    pre = cm.cpu_op(double(ld.attn.bytes + ld.router.bytes), 2.0 * T * (ld.attn.params + ld.router.params),
                    ld.attn.type, 6, cpu_rows16);
    const double kv = seqs * c_eff * kv_layer_bytes;
    pre += cm.cpu_roofline(kv / cm.cpu_bw(DType::F32, false),
                           T * m.attn.flops_per_query(c_eff) / cm.cpu_attention_rate(), 2);
  } else if (lp.attn == Device::Gpu && cm.gpu_attention_rate() > 0) {
    // The GPU's projections are GEMMs on tensor cores; its attention core has its own measured
    // rate (hexe's tiled kernel, not the tensor-core peak).
    pre = cm.gpu_op(attn_bytes, 2.0 * T * (ld.attn.params + ld.router.params), op_launches, decode,
                    ld.attn.matrices + ld.router.matrices);
    pre += cm.gpu_attention(T * m.attn.flops_per_query(c_eff));
  } else {
    pre = op_on(lp.attn, cm, attn_bytes, attn_flops, ld.attn.type, 8, op_launches, cpu_rows16, decode,
                ld.attn.matrices + ld.router.matrices);
  }

  Cost gpu, cpu;
  auto add_to = [&](Device d, const Cost& c) { (d == Device::Cpu ? cpu : gpu) += c; };
  if (ld.dense.bytes) {
    add_to(lp.ffn, op_on(lp.ffn, cm, double(ld.dense.bytes), 2.0 * T * ld.dense.params, ld.dense.type, 3, op_launches,
                         cpu_rows16, decode, ld.dense.matrices));
  }
  if (ld.shared.bytes) {
    add_to(lp.ffn, op_on(lp.ffn, cm, double(ld.shared.bytes), 2.0 * T * ld.shared.params, ld.shared.type, 3,
                         op_launches, cpu_rows16, decode, ld.shared.matrices));
  }
  // Routed experts computed on the GPU in this pass: the host routes first (a hand-off) and
  // launches their kernels directly (the rest of a decode pass stays graphed): in decode 6 for
  // all of a layer's experts together (gather, batched gate, up and down GEMVs, SwiGLU, combine);
  // in prefill the measured per-expert time (its GEMM calls cost more than kernel launches).
  bool gpu_experts = false;
  double gpu_expert_kernels = 0, gpu_expert_prefill = 0;
  if (ld.moe) {
    const ExpertExec ex = decode ? lp.experts_decode : lp.experts_prefill;
    const double U = ld.touched(T);  // distinct experts read
    const double Be = ld.expert_bytes();
    const double flops = 2.0 * T * ld.n_expert_used * ld.expert_params();
    const double g = std::clamp(lp.gpu_hit, 0.0, 1.0);
    gpu_experts = ex != ExpertExec::Cpu || g > 0.0;
    const double gpu_used = std::ceil(ex == ExpertExec::Cpu ? U * g : U);
    const double decode_kernels = gpu_used > 0 ? 6.0 : 0.0;
    const double launch_cost =
        decode ? decode_kernels * eff.gpu_launch_us : gpu_used * eff.gpu_expert_prefill_us;
    if (ex != ExpertExec::Cpu) {
      if (decode) gpu_expert_kernels = decode_kernels;
      else if (ex != ExpertExec::Stream)  // (stream books it inside its copy/compute pipeline)
        gpu_expert_prefill = gpu_used * eff.gpu_expert_prefill_us;
    }
    switch (ex) {
      case ExpertExec::Cpu:
        // Each weight type at its own rate (Q4_K_M: gate/up q4_K, down q6_K), one op per type.
        if (g < 1.0)
          for (const auto& part : ld.experts.parts) {
            const double fb = ld.experts.bytes ? double(part.bytes) / double(ld.experts.bytes) : 0;
            const double fp = ld.experts.params > 0 ? part.params / ld.experts.params : 0;
            cpu += cm.cpu_moe_op(U * (1 - g) * Be * fb, flops * (1 - g) * fp, part.type,
                                 int(std::max<size_t>(1, 3 / ld.experts.parts.size())), cpu_rows16, decode,
                                 ld.tokens_per_expert(T, lp.gpu_experts.empty() ? nullptr : &lp.gpu_experts));
          }
        // A hot set: one CPU thread queues its kernels while the others compute the rest, so
        // their launches overlap the CPU's share instead of preceding it.
        if (g > 0.0) {
          gpu += cm.gpu_op(U * g * Be, flops * g, op_launches, decode, 3);  // batched gate, up, down
          gpu += cm.latency_us(launch_cost);
        }
        break;
      case ExpertExec::Gpu:
        gpu += cm.gpu_op(U * Be, flops, op_launches, decode, 3);
        break;
      case ExpertExec::Stream: {
        // The used experts go up in chunks of stream_chunk through two staging buffers, chunk
        // j + 1's copy under chunk j's compute: the layer costs its first chunk's copy (it waits for
        // the routing), then per later chunk the longer of its copy and the previous chunk's
        // compute, then the last chunk's compute. Copies queue back to back on the copy stream:
        // one setup per chunk. A chunk's compute is its share of the experts' roofline and, in
        // prefill, of their measured per-expert time.
        const double first = lp.stream_chunk > 0 ? std::min(U, double(lp.stream_chunk)) : U;
        const double chunks = first > 0 ? std::ceil(U / first) : 0;
        if (chunks > 0) {
          const Cost copy = cm.h2d(first * Be, 1);
          Cost compute = cm.gpu_op(U * Be, flops, op_launches, decode, 3);
          if (!decode) compute += cm.latency_us(gpu_used * eff.gpu_expert_prefill_us);
          const Cost per_chunk = compute.scaled(1.0 / chunks);
          gpu += copy;
          gpu += overlap(copy, per_chunk).scaled(chunks - 1);
          gpu += per_chunk;
        }
        break;
      }
      case ExpertExec::Cache: {
        const double misses = U * (1 - g);  // a miss must arrive before its expert runs
        gpu += cm.h2d(misses * Be, int(std::ceil(misses)));
        gpu += cm.gpu_op(U * Be, flops, op_launches, decode, 3);
        break;
      }
    }
  }
  // A layer that uses both devices hands the normed hidden state and the top-k over and the
  // result back: a fixed hand-off plus 2 x T x n_embd floats over PCIe.
  const bool uses_cpu = lp.attn == Device::Cpu || cpu.seconds() > 0;
  const bool uses_gpu = lp.attn == Device::Gpu || gpu.seconds() > 0;
  // On a GPU layer the engine's hand-off also ends a graph segment: the GPU work after it is
  // another graph launch in decode, and it moves more small buffers than the measured hand-off's
  // two (CPU experts: logits and h down, y up; GPU experts: logits down, rows, weights, slots up).
  const bool gpu_segment_after = decode && lp.attn == Device::Gpu;
  if (uses_cpu && uses_gpu && flagged && lp.attn == Device::Gpu) {
    // Pinned flags: the measured hand-off (gpu_kernels/handoff.h) already moves 2048 floats each
    // way; the segment after it was queued (and its graph launched) while the CPU computed.
    constexpr double kMeasuredFloats = 2048;
    Cost h = cm.latency_us(eff.flag_handoff_us);
    h += cm.h2d(2.0 * std::max(0.0, T * double(m.spec.n_embd) - kMeasuredFloats) * 4.0, 0);
    cpu += h;
  } else if (uses_cpu && uses_gpu) {
    Cost h = cm.latency_us(eff.handoff_us);
    h += cm.h2d(2.0 * T * m.spec.n_embd * 4.0, 0);
    if (gpu_segment_after) h += cm.latency_us(eff.gpu_graph_launch_us + 1 * eff.pcie_setup_us);
    (lp.attn == Device::Cpu ? gpu : cpu) += h;
  } else if (gpu_experts && lp.attn == Device::Gpu) {
    pre += cm.latency_us(eff.handoff_us);  // the router's logits to the host and its choice back
    if (gpu_segment_after) pre += cm.latency_us(eff.gpu_graph_launch_us + 2 * eff.pcie_setup_us);
  }
  pre += overlap(gpu, cpu);
  // The GPU layer's kernels: replayed from a CUDA graph in decode, launched one by one in
  // prefill; routed experts computed on the GPU after the host's routing are always launched
  // directly. Small kernels cost their launch or graph-node time.
  if (lp.attn == Device::Gpu || lp.ffn == Device::Gpu) {
    pre += cm.latency_us(eff.gpu_kernels_per_layer * (decode ? eff.gpu_kernel_us : eff.gpu_launch_us) +
                         gpu_expert_kernels * eff.gpu_launch_us + gpu_expert_prefill);
  }
  return pre;
}

void predict(Plan& plan, const PlanModel& m, const ModelDigest& d, const CostModel& cm) {
  const auto& w = plan.workload;
  const auto& eff = cm.eff();
  const bool rows16 = plan.cpu_weight_layout == "rows16";
  const double head_flops_per_tok = 2.0 * m.spec.n_embd * double(m.spec.n_vocab);
  const DType head_type = d.head.type;
  const bool gpu_used = plan.has_gpu && (plan.head == Device::Gpu ||
                                         std::any_of(plan.layers.begin(), plan.layers.end(), [](const LayerPlan& l) {
                                           return l.attn == Device::Gpu || l.ffn == Device::Gpu ||
                                                  l.experts_decode != ExpertExec::Cpu;
                                         }));
  auto transitions = [&](const Cost& base) {
    Cost c = base;
    for (size_t i = 1; i < plan.layers.size(); ++i)
      if (plan.layers[i].attn != plan.layers[i - 1].attn) c += cm.latency_us(eff.handoff_us);
    return c;
  };

  // Decode: one step of `batch` tokens, each sequence at position `prompt`.
  {
    const double ctx = double(std::max<int64_t>(1, w.prompt));
    const double B = double(std::max<int64_t>(1, w.batch));
    Cost step;
    const bool flagged = flagged_decode(plan);
    for (size_t i = 0; i < plan.layers.size(); ++i)
      step += layer_cost(plan.layers[i], d.layers[i], m, cm, B, ctx, B, true, w.kv_elem_bytes,
                         rows16, flagged);
    step += op_on(plan.head, cm, double(d.head.bytes), B * head_flops_per_tok, head_type, 2, 0, rows16, true, 1);
    if (gpu_used) step += cm.latency_us(eff.gpu_graph_launch_us);
    step = transitions(step);
    plan.decode.seconds = step.seconds();
    plan.decode.tokens_per_s = B / step.seconds();
    plan.decode.bottleneck = limit_name(step.dominant());
  }
  // Prefill: the prompt in chunks of `ubatch` tokens; logits for the last token only.
  {
    const int64_t P = std::max<int64_t>(1, w.prompt), U = std::max<int64_t>(1, w.ubatch);
    Cost total;
    for (int64_t start = 0; start < P; start += U) {
      const double u = double(std::min(U, P - start));
      const double ctx = double(start) + u / 2;  // the mean position a query of this chunk attends to
      Cost chunk;
      for (size_t i = 0; i < plan.layers.size(); ++i)
        chunk += layer_cost(plan.layers[i], d.layers[i], m, cm, u, ctx, 1.0, false, w.kv_elem_bytes, rows16);
      total += transitions(chunk);
    }
    total += op_on(plan.head, cm, double(d.head.bytes), head_flops_per_tok, head_type, 2,
                   eff.gpu_kernels_per_layer / 2, rows16);
    plan.prefill.seconds = total.seconds();
    plan.prefill.tokens_per_s = double(P) / total.seconds();
    plan.prefill.bottleneck = limit_name(total.dominant());
    plan.ttft_s = total.seconds();
  }
}

}  // namespace hexe::place

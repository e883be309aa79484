// detect_cuda_gpus: gpu::probe_device per device, reported in place::GpuProfile's units.
#include "runtime/engine/cuda/gpu_detector.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "gpu_kernels/attention.h"
#include "gpu_kernels/device.h"
#include "gpu_kernels/handoff.h"
#include "gpu_kernels/matmul.h"
#include "gpu_kernels/ops.h"
#include "gpu_kernels/probe_bandwidth.h"
#include "gpu_kernels/rows.h"
#include "runtime/engine/cuda/cuda_check.h"
#include "memory/error.h"
#include "placement/hw_detect.h"

namespace hexe {

namespace {

// Seconds between two events recorded around `body` on `st`, after a warm-up run.
template <class F>
double timed(cudaStream_t st, F body) {
  body();
  cudaEvent_t a, b;
  cuda_check(cudaEventCreate(&a), "cudaEventCreate");
  cuda_check(cudaEventCreate(&b), "cudaEventCreate");
  cuda_check(cudaEventRecord(a, st), "cudaEventRecord");
  body();
  cuda_check(cudaEventRecord(b, st), "cudaEventRecord");
  cuda_check(cudaEventSynchronize(b), "cudaEventSynchronize");
  float ms = 0;
  cuda_check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms * 1e-3;
}

// What the planner's decode costs need from a GPU, measured with hexe's own kernels: the decode
// GEMV's streaming rate and fixed time per call (Q4_K 4096 x 2048, an attention projection, and
// 65536 x 2048, over more matrices than L2 holds),
// one small kernel inside a CUDA graph and launched alone, and the hybrid step's hand-off.
void measure_kernel_costs(int index, size_t l2_bytes, place::GpuProfile& g) {
  cuda_check(cudaSetDevice(index), "cudaSetDevice");
  cudaStream_t st;
  cuda_check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  const int64_t k = 2048;
  float *x = nullptr, *y = nullptr;  // k floats each (the small kernels below use them too)
  cuda_check(cudaMalloc(reinterpret_cast<void**>(&x), size_t(k) * 4), "cudaMalloc");
  cuda_check(cudaMalloc(reinterpret_cast<void**>(&y), size_t(k) * 4), "cudaMalloc");
  cuda_check(cudaMemset(x, 0, size_t(k) * 4), "cudaMemset");
  // Seconds per Q4_K GEMV of n x k over `copies` matrices (at least `min_copies`, together more
  // than L2 holds), after one untimed pass (occupancy query, caches).
  auto gemv_time = [&](int64_t n, size_t min_copies, size_t* mat_bytes) {
    const size_t mat = size_t(row_bytes(DType::Q4_K, k)) * size_t(n);
    const int copies = int(std::max<size_t>(min_copies, 4 * l2_bytes / mat + 1));
    void* w = nullptr;
    float* out = nullptr;
    cuda_check(cudaMalloc(&w, mat * copies), "cudaMalloc (GEMV weights)");
    cuda_check(cudaMalloc(reinterpret_cast<void**>(&out), size_t(n) * 4), "cudaMalloc");
    // 0x11 bytes: small finite f16 scales and arbitrary quants; the timing does not depend on them.
    cuda_check(cudaMemset(w, 0x11, mat * copies), "cudaMemset");
    auto pass = [&] {
      for (int i = 0; i < copies; ++i) {
        gpu::MatmulParams p;
        p.w = static_cast<const uint8_t*>(w) + size_t(i) * mat;
        p.w_type = DType::Q4_K;
        p.n = n;
        p.k = k;
        p.x = x;
        p.m = 1;
        p.x_stride = k;
        p.y = out;
        p.y_stride = n;
        gpu_check(gpu::gemv(p, st));
      }
    };
    pass();
    const double s = timed(st, pass) / copies;
    cudaFree(w);
    cudaFree(out);
    *mat_bytes = mat;
    return s;
  };
  // An attention projection's shape and a 16x taller one (a large head's): two points give the
  // streaming rate and the fixed time per call, t = floor + bytes / rate.
  size_t mat = 0, mat_large = 0;
  const double t_small = gemv_time(4096, 8, &mat), t_large = gemv_time(16 * 4096, 2, &mat_large);
  const double rate = t_large > t_small ? double(mat_large - mat) / (t_large - t_small) : 0;
  if (rate > 0 && t_small - double(mat) / rate > 0) {
    g.gemv_gbps = rate / 1e9;
    g.gemv_floor_us = (t_small - double(mat) / rate) * 1e6;
  } else {  // no fixed part to separate: the small shape's rate alone
    g.gemv_gbps = double(mat) / t_small / 1e9;
    g.gemv_floor_us = 0;
  }

  // Prefill attention core: a 4096-token prompt in chunks of 512 queries over a paged F16 cache
  // (64-token pages), 32 query heads over 4 KV heads of 128; FLOPs as the planner counts them
  // (each chunk's queries at its mean position), so the rate prices its prefill estimates.
  {
    const int H = 32, KV = 4, D = 128, page = 64, ctx = 4096, nq = 512;
    const int64_t row = int64_t(KV) * D;
    void *kc = nullptr, *vc = nullptr, *tab = nullptr, *qb = nullptr, *ob = nullptr, *pos = nullptr;
    cuda_check(cudaMalloc(&kc, size_t(ctx) * row * 2), "cudaMalloc");
    cuda_check(cudaMalloc(&vc, size_t(ctx) * row * 2), "cudaMalloc");
    cuda_check(cudaMemset(kc, 0, size_t(ctx) * row * 2), "cudaMemset");
    cuda_check(cudaMemset(vc, 0, size_t(ctx) * row * 2), "cudaMemset");
    std::vector<const void*> pages_k, pages_v;
    for (int p = 0; p < ctx / page; ++p) {
      pages_k.push_back(static_cast<const uint8_t*>(kc) + size_t(p) * page * row * 2);
      pages_v.push_back(static_cast<const uint8_t*>(vc) + size_t(p) * page * row * 2);
    }
    const size_t tb = pages_k.size() * sizeof(void*);
    cuda_check(cudaMalloc(&tab, 2 * tb), "cudaMalloc");
    cuda_check(cudaMemcpy(tab, pages_k.data(), tb, cudaMemcpyHostToDevice), "cudaMemcpy");
    cuda_check(cudaMemcpy(static_cast<uint8_t*>(tab) + tb, pages_v.data(), tb, cudaMemcpyHostToDevice), "cudaMemcpy");
    cuda_check(cudaMalloc(&qb, size_t(nq) * H * D * 4), "cudaMalloc");
    cuda_check(cudaMemset(qb, 0, size_t(nq) * H * D * 4), "cudaMemset");
    cuda_check(cudaMalloc(&ob, size_t(nq) * H * D * 4), "cudaMalloc");
    std::vector<int32_t> positions(static_cast<size_t>(ctx));
    double flops = 0;
    for (int c0 = 0; c0 < ctx; c0 += nq) {
      for (int i = 0; i < nq; ++i) positions[size_t(c0 + i)] = c0 + i;
      flops += double(nq) * 2.0 * H * (c0 + nq / 2.0) * (2.0 * D);
    }
    cuda_check(cudaMalloc(&pos, size_t(ctx) * 4), "cudaMalloc");
    cuda_check(cudaMemcpy(pos, positions.data(), size_t(ctx) * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
    gpu::AttentionParams ap;
    ap.q = static_cast<const float*>(qb);
    ap.n_q = nq;
    ap.q_pos = static_cast<const int32_t*>(pos);  // advanced per chunk below
    ap.n_heads = H;
    ap.n_kv_heads = KV;
    ap.head_dim = D;
    ap.k = {static_cast<const __half* const*>(tab), page};
    ap.v = {reinterpret_cast<const __half* const*>(static_cast<uint8_t*>(tab) + tb), page};
    ap.scale = 0.088f;
    ap.out = static_cast<float*>(ob);
    const double s = timed(st, [&] {
      for (int c0 = 0; c0 < ctx; c0 += nq) {
        ap.q_pos = static_cast<const int32_t*>(pos) + c0;
        ap.max_keys = c0 + nq;
        gpu_check(gpu::attention_prefill(ap, st));
      }
    });
    g.attention_tflops = flops / s / 1e12;
    for (void* p : {kc, vc, tab, qb, ob, pos}) cudaFree(p);
  }

  // One routed expert in prefill as the engine runs it on the GPU (cuda_offload.cpp): gather 32
  // token rows, gate and up GEMMs, SwiGLU, down GEMM, weighted scatter; Q4_K 768 x 2048 (Qwen3-30B's
  // expert shape), 32 tokens (512 x top-8 over 128 experts). Per-call costs dominate at this size.
  {
    const int64_t E = 2048, F = 768, T = 32;
    const size_t gb = size_t(row_bytes(DType::Q4_K, E)) * F, db = size_t(row_bytes(DType::Q4_K, F)) * E;
    void *wg = nullptr, *wd = nullptr, *hx = nullptr, *xe = nullptr, *ga = nullptr, *up = nullptr, *ye = nullptr,
         *yy = nullptr, *rows = nullptr, *wts = nullptr, *ws = nullptr;
    for (auto [p, n] : {std::pair<void**, size_t>{&wg, 2 * gb}, {&wd, db}, {&hx, size_t(512 * E * 4)},
                        {&xe, size_t(T * E * 4)}, {&ga, size_t(T * F * 4)}, {&up, size_t(T * F * 4)},
                        {&ye, size_t(T * E * 4)}, {&yy, size_t(512 * E * 4)}, {&rows, size_t(T * 4)},
                        {&wts, size_t(T * 4)}}) {
      cuda_check(cudaMalloc(p, n), "cudaMalloc");
      cuda_check(cudaMemset(*p, 0, n), "cudaMemset");
    }
    cuda_check(cudaMemset(wg, 0x11, 2 * gb), "cudaMemset");
    cuda_check(cudaMemset(wd, 0x11, db), "cudaMemset");
    gpu::GemmContext gctx;
    if (cublasCreate(&gctx.cublas) != CUBLAS_STATUS_SUCCESS) throw Error("cublasCreate failed");
    gctx.workspace_bytes = size_t(T * E * 2) + (size_t(32) << 20);
    cuda_check(cudaMalloc(&ws, gctx.workspace_bytes), "cudaMalloc");
    gctx.workspace = ws;
    auto mm = [&](const void* w, int64_t n, int64_t k, const void* x, void* y) {
      gpu::MatmulParams p;
      p.w = w;
      p.w_type = DType::Q4_K;
      p.n = n;
      p.k = k;
      p.x = static_cast<const float*>(x);
      p.m = T;
      p.x_stride = k;
      p.y = static_cast<float*>(y);
      p.y_stride = n;
      gpu_check(gpu::matmul(p, gctx, st));
    };
    constexpr int kExperts = 64;
    const double s = timed(st, [&] {
      for (int e = 0; e < kExperts; ++e) {
        gpu_check(gpu::gather_rows(static_cast<float*>(hx), E, static_cast<int32_t*>(rows), T, E,
                                   static_cast<float*>(xe), E, st));
        mm(wg, F, E, xe, ga);
        mm(static_cast<uint8_t*>(wg) + gb, F, E, xe, up);
        gpu_check(gpu::swiglu(static_cast<float*>(ga), static_cast<float*>(up), static_cast<float*>(ga), T * F, st));
        mm(wd, E, F, ga, ye);
        gpu_check(gpu::scatter_add_weighted(static_cast<float*>(ye), E, static_cast<int32_t*>(rows),
                                            static_cast<float*>(wts), T, E, static_cast<float*>(yy), E, st));
      }
    });
    g.expert_prefill_us = s / kExperts * 1e6;
    cublasDestroy(gctx.cublas);
    for (void* p : {wg, wd, hx, xe, ga, up, ye, yy, rows, wts, ws}) cudaFree(p);
  }

  constexpr int kKernels = 100, kReps = 20;
  auto adds = [&] {
    for (int i = 0; i < kKernels; ++i) gpu_check(gpu::add(y, x, 2048, st));
  };
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cuda_check(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  adds();
  cuda_check(cudaStreamEndCapture(st, &graph), "cudaStreamEndCapture");
  cuda_check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  g.graph_kernel_us = timed(st, [&] {
                        for (int r = 0; r < kReps; ++r) cuda_check(cudaGraphLaunch(exec, st), "cudaGraphLaunch");
                      }) / (kKernels * kReps) * 1e6;
  g.launch_us = timed(st, [&] {
                  for (int r = 0; r < kReps; ++r) adds();
                }) / (kKernels * kReps) * 1e6;
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);

  // Hand-off: a kernel, 8 KB to pinned memory, the host waits, 8 KB back (what the hybrid step
  // does per MoE layer around the CPU's work).
  void* pinned = nullptr;
  cuda_check(cudaMallocHost(&pinned, 8192), "cudaMallocHost");
  cudaEvent_t ev;
  cuda_check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  auto round_trip = [&] {
    gpu_check(gpu::add(y, x, 2048, st));
    cuda_check(cudaMemcpyAsync(pinned, y, 8192, cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync");
    cuda_check(cudaEventRecord(ev, st), "cudaEventRecord");
    cuda_check(cudaEventSynchronize(ev), "cudaEventSynchronize");
    cuda_check(cudaMemcpyAsync(y, pinned, 8192, cudaMemcpyHostToDevice, st), "cudaMemcpyAsync");
  };
  for (int i = 0; i < 20; ++i) round_trip();
  cuda_check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  constexpr int kTrips = 500;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kTrips; ++i) round_trip();
  cuda_check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  g.handoff_us = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / kTrips * 1e6;
  cudaEventDestroy(ev);
  cudaFreeHost(pinned);
  // The flagged pass's hand-off (the engine's default for decode with CPU experts).
  gpu::HandoffTimes ht;
  if (gpu::measure_handoff(st, 500, &ht).ok()) g.flag_handoff_us = ht.flag_rows_us;
  cudaFree(x);
  cudaFree(y);
  cudaStreamDestroy(st);
}

}  // namespace

std::vector<place::GpuProfile> detect_cuda_gpus(const DetectLog& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  std::vector<place::GpuProfile> out;
  const gpu::DevicePresence presence = gpu::probe_devices();
  if (presence.count == 0) {
    say("GPU: none detected: " + presence.reason);
    return out;
  }
  for (int i = 0; i < presence.count; ++i) {
    say("measuring CUDA device " + std::to_string(i) + " (device read, pinned and pageable PCIe copies)...");
    gpu::DeviceProbe d;
    if (const gpu::Status s = gpu::probe_device(i, gpu::ProbeOptions{}, &d); !s.ok())
      throw Error("CUDA device " + std::to_string(i) + ": " + gpu::to_string(s));
    char b[512];
    std::snprintf(b, sizeof b,
                  "GPU %d: %s, sm_%d%d, %d SMs at %.2f GHz, L2 %zu MiB; read %.0f GB/s (theoretical %.0f); "
                  "context reserves %.0f MiB; PCIe pinned H2D %.1f / D2H %.1f GB/s, pageable %.1f / %.1f GB/s; "
                  "link %s rated %.1f GB/s%s%s; peaks fp16 %.0f TFLOP/s, int8 %.0f TOP/s (%s)",
                  i, d.info.name.c_str(), d.info.cc_major, d.info.cc_minor, d.info.sm_count, d.clock_ghz,
                  d.info.l2_bytes >> 20, d.read_gbps, d.info.memory_bandwidth / 1e9,
                  double(d.reserved_bytes) / double(1 << 20), d.h2d_pinned_gbps, d.d2h_pinned_gbps,
                  d.h2d_pageable_gbps, d.d2h_pageable_gbps, d.link.bus_id.c_str(), d.link.rated_gbps,
                  d.link.reason.empty() ? "" : ": ", d.link.reason.c_str(), d.peaks.tflops_fp16, d.peaks.tops_int8,
                  d.peaks.source);
    say(b);
    place::GpuProfile g;
    g.name = d.info.name;
    g.memory_bytes = d.info.total_memory;
    g.sms = d.info.sm_count;
    g.mem_gbps = d.read_gbps;
    g.peak_tflops_fp16 = d.peaks.tflops_fp16;
    g.peak_tops_int8 = d.peaks.tops_int8;
    g.pcie_h2d_gbps = d.h2d_pinned_gbps;
    g.pcie_d2h_gbps = d.d2h_pinned_gbps;
    g.reserved_bytes = d.reserved_bytes;
    measure_kernel_costs(i, d.info.l2_bytes, g);
    std::snprintf(b, sizeof b,
                  "GPU %d kernels: decode GEMV (q4_K, 4096 and 65536 x 2048) %.0f GB/s = %.2f of read + %.2f us per "
                  "call; prefill attention %.1f TFLOP/s; a routed expert's prefill (32 tokens) %.1f us; %.2f us per "
                  "kernel in a CUDA graph, %.2f us launched alone; hand-off (8 KB to the host and back) %.1f us "
                  "with an event and copies, %.1f us with pinned flags",
                  i, g.gemv_gbps, g.gemv_gbps / std::max(1e-9, g.mem_gbps), g.gemv_floor_us, g.attention_tflops,
                  g.expert_prefill_us, g.graph_kernel_us, g.launch_us, g.handoff_us, g.flag_handoff_us);
    say(b);
    out.push_back(std::move(g));
  }
  return out;
}

void install_cuda_gpu_detector(DetectLog log) {
  place::set_gpu_detector([log = std::move(log)] { return detect_cuda_gpus(log); });
}

}  // namespace hexe

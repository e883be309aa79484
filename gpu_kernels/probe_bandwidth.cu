// Device-read, PCIe-copy and link probes of a CUDA device, and the tensor-core peak table.
#include "gpu_kernels/probe_bandwidth.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <new>

namespace hexe::gpu {

namespace {

// An API error is returned and cleared, so the next launch's cudaGetLastError() does not see it.
Status api_error(const char* op, cudaError_t e) {
  cudaGetLastError();
  return Status::cuda(op, e);
}
#define HEXE_PROBE_TRY(op, expr)                               \
  do {                                                         \
    const cudaError_t hexe_e_ = (expr);                        \
    if (hexe_e_ != cudaSuccess) return api_error(op, hexe_e_); \
  } while (0)

// Owners that free on every return path.
struct DeviceMem {
  void* p = nullptr;
  ~DeviceMem() {
    if (p) cudaFree(p);
  }
};
struct PinnedMem {
  void* p = nullptr;
  ~PinnedMem() {
    if (p) cudaFreeHost(p);
  }
};
struct Stream {
  cudaStream_t s = nullptr;
  ~Stream() {
    if (s) cudaStreamDestroy(s);
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Reads every 16-byte word once. The XOR is stored only if it equals a constant that the zeroed
// buffer never gives: the loads cannot be removed, and nothing is written.
__global__ void read_words(const uint4* __restrict__ src, size_t n, unsigned* sink) {
  unsigned acc = 0;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {  // four loads in flight per thread
    const uint4 a = __ldcs(src + i), b = __ldcs(src + i + stride);
    const uint4 c = __ldcs(src + i + 2 * stride), d = __ldcs(src + i + 3 * stride);
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n; i += stride) {
    const uint4 a = __ldcs(src + i);
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

// First number of a sysfs file ("16.0 GT/s PCIe" -> 16, "16" -> 16); 0 when missing or "Unknown".
double read_sysfs_number(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (!f || !std::getline(f, s)) return 0;
  return std::strtod(s.c_str(), nullptr);
}

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

}  // namespace

double pcie_lane_gbps(double gts) noexcept {
  if (gts <= 0) return 0;
  if (gts <= 5.0) return gts * 8.0 / 10.0 / 8.0;        // gen 1-2: 8b/10b
  if (gts <= 32.0) return gts * 128.0 / 130.0 / 8.0;    // gen 3-5: 128b/130b
  return gts * 242.0 / 256.0 / 8.0;                     // gen 6+: 256-byte FLIT, 242 payload bytes
}

PcieLink pcie_link(int index) noexcept {
  PcieLink l;
  try {
    char id[32] = {};
    if (auto e = cudaDeviceGetPCIBusId(id, int(sizeof id), index); e != cudaSuccess) {
      cudaGetLastError();
      l.reason = cuda_error_message(e, "cudaDeviceGetPCIBusId");
      return l;
    }
    l.bus_id = id;
    // CUDA prints the bus id in upper case ("0000:3B:00.0"); sysfs names are lower case.
    for (auto& c : l.bus_id) c = char(std::tolower(static_cast<unsigned char>(c)));
    const std::string dir = "/sys/bus/pci/devices/" + l.bus_id + "/";
    l.gts = read_sysfs_number(dir + "current_link_speed");
    l.width = int(read_sysfs_number(dir + "current_link_width"));
    l.max_gts = read_sysfs_number(dir + "max_link_speed");
    l.max_width = int(read_sysfs_number(dir + "max_link_width"));
    // The link trains to the slower end: the upstream port ("..", the bridge above) may be narrower.
    double port_gts = read_sysfs_number(dir + "../max_link_speed");
    int port_width = int(read_sysfs_number(dir + "../max_link_width"));
    double gts = l.max_gts > 0 ? l.max_gts : l.gts;
    if (port_gts > 0 && gts > 0) gts = std::min(gts, port_gts);
    int width = l.width > 0 ? l.width : l.max_width;
    if (port_width > 0 && width > 0) width = std::min(width, port_width);
    l.rated_gbps = pcie_lane_gbps(gts) * width;
    if (l.rated_gbps == 0)
      l.reason = "no link speed/width under " + dir + " (a virtual machine may hide it)";
  } catch (...) {  // allocation failure while building strings: figures stay 0
  }
  return l;
}

TensorPeaks tensor_peaks(int cc_major, int cc_minor, int sm_count, double clock_ghz,
                         const std::string& name) noexcept {
  // Dense FLOP (FP16 in, FP32 accumulate) and int8 OP per clock per SM; a multiply-add is 2.
  struct Row {
    int major, minor;
    double fp16, int8;
    bool geforce_half;  // GeForce runs FP32 accumulate at half the FP16-accumulate rate
    const char* source;
  };
  static constexpr Row kTable[] = {
      {7, 0, 1024, 0, false, "table sm_70: 1024 FLOP/clk/SM, no int8 tensor cores (V100 whitepaper)"},
      {7, 2, 1024, 0, false, "table sm_72: 1024 FLOP/clk/SM (Volta)"},
      {7, 5, 1024, 2048, true, "table sm_75: 1024 FLOP, 2048 int8 OP/clk/SM (Turing whitepaper, T4)"},
      {8, 0, 2048, 4096, false, "table sm_80: 2048 FLOP, 4096 int8 OP/clk/SM (A100 whitepaper)"},
      {8, 6, 1024, 2048, true, "table sm_86: 1024 FLOP, 2048 int8 OP/clk/SM (GA102 whitepaper)"},
      {8, 9, 1024, 2048, true, "table sm_89: 1024 FLOP, 2048 int8 OP/clk/SM (AD102 whitepaper)"},
      {9, 0, 4096, 8192, false, "table sm_90: 4096 FLOP, 8192 int8 OP/clk/SM (H100 whitepaper)"},
      {10, 0, 8192, 16384, false, "table sm_100: 8192 FLOP, 16384 int8 OP/clk/SM (B200 datasheet, approximate)"},
      {12, 0, 1024, 2048, true, "table sm_120: 1024 FLOP, 2048 int8 OP/clk/SM (GB202, approximate)"},
  };
  TensorPeaks p;
  p.source = "no table entry for this compute capability: peaks left 0";
  for (const Row& r : kTable) {
    if (r.major != cc_major || r.minor != cc_minor) continue;
    const double rate = double(sm_count) * clock_ghz * 1e9;  // SM-clocks per second
    const bool half = r.geforce_half && contains(name, "GeForce");
    p.tflops_fp16 = rate * r.fp16 * (half ? 0.5 : 1.0) / 1e12;
    p.tops_int8 = rate * r.int8 / 1e12;
    p.source = r.source;
  }
  return p;
}

Status measure_copy_gbps(int index, CopyDir dir, bool pinned, size_t bytes, int reps, double* gbps) noexcept {
  constexpr const char* kOp = "measure_copy_gbps";
  if (bytes == 0 || reps < 1 || gbps == nullptr) return Status::invalid(kOp, "bytes and reps must be > 0");
  HEXE_PROBE_TRY(kOp, cudaSetDevice(index));
  DeviceMem dev;
  HEXE_PROBE_TRY(kOp, cudaMalloc(&dev.p, bytes));
  PinnedMem pin;
  std::unique_ptr<unsigned char[]> pageable;
  void* host = nullptr;
  if (pinned) {
    HEXE_PROBE_TRY(kOp, cudaMallocHost(&pin.p, bytes));
    host = pin.p;
  } else {
    pageable.reset(new (std::nothrow) unsigned char[bytes]);
    if (!pageable) return Status::cuda(kOp, cudaErrorMemoryAllocation);
    host = pageable.get();
  }
  // Touch every page so the first copy does not pay for faults, and the device side too.
  std::fill_n(static_cast<unsigned char*>(host), bytes, static_cast<unsigned char>(1));
  HEXE_PROBE_TRY(kOp, cudaMemset(dev.p, 0, bytes));
  Stream st;
  HEXE_PROBE_TRY(kOp, cudaStreamCreateWithFlags(&st.s, cudaStreamNonBlocking));
  const bool h2d = dir == CopyDir::kHostToDevice;
  void* dst = h2d ? dev.p : host;
  const void* src = h2d ? host : dev.p;
  const auto kind = h2d ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
  double best = 1e30;
  for (int r = -1; r < reps; ++r) {  // r = -1: warm-up, also trains the PCIe link up
    const auto t0 = std::chrono::steady_clock::now();
    HEXE_PROBE_TRY(kOp, cudaMemcpyAsync(dst, src, bytes, kind, st.s));
    HEXE_PROBE_TRY(kOp, cudaStreamSynchronize(st.s));
    const double s = seconds_since(t0);
    if (r >= 0) best = std::min(best, s);
  }
  *gbps = double(bytes) / best / 1e9;
  return Status::success();
}

Status measure_device_read_gbps(int index, size_t bytes, int reps, double* gbps) noexcept {
  constexpr const char* kOp = "measure_device_read_gbps";
  if (bytes < 16 || reps < 1 || gbps == nullptr) return Status::invalid(kOp, "bytes must be >= 16 and reps > 0");
  HEXE_PROBE_TRY(kOp, cudaSetDevice(index));
  int sms = 0;
  HEXE_PROBE_TRY(kOp, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, index));
  bytes -= bytes % 16;
  DeviceMem buf, sink;
  HEXE_PROBE_TRY(kOp, cudaMalloc(&buf.p, bytes));
  HEXE_PROBE_TRY(kOp, cudaMalloc(&sink.p, sizeof(unsigned)));
  HEXE_PROBE_TRY(kOp, cudaMemset(buf.p, 0, bytes));
  cudaEvent_t ev[2] = {nullptr, nullptr};
  struct Events {
    cudaEvent_t* e;
    ~Events() {
      for (int i = 0; i < 2; ++i)
        if (e[i]) cudaEventDestroy(e[i]);
    }
  } guard{ev};
  HEXE_PROBE_TRY(kOp, cudaEventCreate(&ev[0]));
  HEXE_PROBE_TRY(kOp, cudaEventCreate(&ev[1]));
  const size_t n = bytes / 16;
  const int threads = 256, blocks = std::max(1, sms) * 8;
  float best_ms = 1e30f;
  for (int r = -1; r < reps; ++r) {
    HEXE_PROBE_TRY(kOp, cudaEventRecord(ev[0]));
    read_words<<<blocks, threads>>>(static_cast<const uint4*>(buf.p), n, static_cast<unsigned*>(sink.p));
    HEXE_PROBE_TRY(kOp, cudaGetLastError());
    HEXE_PROBE_TRY(kOp, cudaEventRecord(ev[1]));
    HEXE_PROBE_TRY(kOp, cudaEventSynchronize(ev[1]));
    float ms = 0;
    HEXE_PROBE_TRY(kOp, cudaEventElapsedTime(&ms, ev[0], ev[1]));
    if (r >= 0) best_ms = std::min(best_ms, ms);
  }
  *gbps = double(bytes) / (double(best_ms) * 1e-3) / 1e9;
  return Status::success();
}

Status probe_device(int index, const ProbeOptions& opt, DeviceProbe* out) noexcept {
  constexpr const char* kOp = "probe_device";
  if (out == nullptr) return Status::invalid(kOp, "out is null");
  HEXE_PROBE_TRY(kOp, cudaSetDevice(index));
  HEXE_PROBE_TRY(kOp, cudaFree(nullptr));  // creates the primary context
  size_t free = 0, total = 0;
  HEXE_PROBE_TRY(kOp, cudaMemGetInfo(&free, &total));
  out->free_after_context = free;
  out->reserved_bytes = total - free;
  if (Status s = device_info(index, &out->info); !s.ok()) return s;
  int clock_khz = 0;
  HEXE_PROBE_TRY(kOp, cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, index));
  out->clock_ghz = double(clock_khz) * 1e-6;
  try {
    out->peaks = tensor_peaks(out->info.cc_major, out->info.cc_minor, out->info.sm_count, out->clock_ghz,
                              out->info.name);
  } catch (...) {
    return Status::cuda(kOp, cudaErrorMemoryAllocation);
  }
  size_t read_bytes = opt.read_bytes;
  if (read_bytes == 0) read_bytes = std::max<size_t>(16 * out->info.l2_bytes, size_t(256) << 20);
  read_bytes = std::min(read_bytes, free / 4);
  if (Status s = measure_device_read_gbps(index, read_bytes, opt.reps, &out->read_gbps); !s.ok()) return s;
  const size_t copy = std::min(opt.copy_bytes, free / 4);
  Status s = measure_copy_gbps(index, CopyDir::kHostToDevice, true, copy, opt.reps, &out->h2d_pinned_gbps);
  if (s.ok()) s = measure_copy_gbps(index, CopyDir::kDeviceToHost, true, copy, opt.reps, &out->d2h_pinned_gbps);
  if (s.ok() && opt.pageable) {
    s = measure_copy_gbps(index, CopyDir::kHostToDevice, false, copy, opt.reps, &out->h2d_pageable_gbps);
    if (s.ok()) s = measure_copy_gbps(index, CopyDir::kDeviceToHost, false, copy, opt.reps, &out->d2h_pageable_gbps);
  }
  if (!s.ok()) return s;
  out->link = pcie_link(index);  // right after the copies: the link is at its trained speed
  return Status::success();
}

}  // namespace hexe::gpu

// `hexe bench pcie`: H2D/D2H GB/s, pinned and pageable, 64 KiB..1 GiB, against the link's rated
// bandwidth. `hexe bench handoff`: GPU -> CPU -> GPU latencies. Both need CUDA built in.
#include "runtime/cli/bench_gpu.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#if HEXE_HAVE_CUDA
#include "gpu_kernels/device.h"
#include "gpu_kernels/probe_bandwidth.h"
#include "memory/error.h"
#include "runtime/engine/cuda/cuda_device.h"
#endif

namespace hexe::cli {

namespace {

struct GpuBenchOptions {
  int device = 0;
  uint64_t max_mib = 1024;
  int iters = 1000;
};

#if HEXE_HAVE_CUDA
// False (after saying why) when there is no device `index` to measure.
bool have_device(int index, const char* what) {
  const gpu::DevicePresence p = gpu::probe_devices();
  if (p.count == 0) {
    std::printf("hexe bench %s: GPU: none detected: %s; nothing to measure\n", what, p.reason.c_str());
    return false;
  }
  if (index < 0 || index >= p.count)
    throw Error("--device " + std::to_string(index) + ": this machine has CUDA devices 0.." + std::to_string(p.count - 1));
  return true;
}

std::string size_name(uint64_t bytes) {
  if (bytes >= (1ull << 30)) return std::to_string(bytes >> 30) + " GiB";
  if (bytes >= (1ull << 20)) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes >> 10) + " KiB";
}

void run_pcie_bench(const GpuBenchOptions& o) {
  if (!have_device(o.device, "pcie")) return;
  gpu::DeviceInfo info;
  if (gpu::Status s = gpu::device_info(o.device, &info); !s.ok()) throw Error(gpu::to_string(s));
  std::printf("GPU %d: %s; GB/s (10^9 B/s) of one copy, best of several; [x] = fraction of the link's rated GB/s\n",
              o.device, info.name.c_str());
  std::printf("%-8s %17s %17s %17s %17s\n", "size", "H2D pinned", "H2D pageable", "D2H pinned", "D2H pageable");
  struct Col {
    gpu::CopyDir dir;
    bool pinned;
  };
  const Col cols[] = {{gpu::CopyDir::kHostToDevice, true}, {gpu::CopyDir::kHostToDevice, false},
                      {gpu::CopyDir::kDeviceToHost, true}, {gpu::CopyDir::kDeviceToHost, false}};
  gpu::PcieLink link;
  bool first = true;
  for (uint64_t bytes = 64ull << 10; bytes <= (o.max_mib << 20); bytes *= 4) {
    // Small copies are noisy: more repetitions, about 256 MiB moved per figure, 3..50 of them.
    const int reps = int(std::clamp<uint64_t>((256ull << 20) / bytes, 3, 50));
    std::array<double, 4> gbps{};
    for (int c = 0; c < 4; ++c)
      if (gpu::Status s = gpu::measure_copy_gbps(o.device, cols[c].dir, cols[c].pinned, bytes, reps, &gbps[c]); !s.ok())
        throw Error("at " + size_name(bytes) + ": " + gpu::to_string(s));
    if (first) link = gpu::pcie_link(o.device);  // read just after copies: the link is trained up
    first = false;
    char line[256];
    int n = std::snprintf(line, sizeof line, "%-8s", size_name(bytes).c_str());
    for (double g : gbps) {
      if (link.rated_gbps > 0)
        n += std::snprintf(line + n, sizeof line - size_t(n), " %8.2f [%5.2f]", g, g / link.rated_gbps);
      else
        n += std::snprintf(line + n, sizeof line - size_t(n), " %8.2f [  -  ]", g);
    }
    std::printf("%s\n", line);
    std::fflush(stdout);
  }
  if (link.rated_gbps > 0)
    std::printf("link %s: %.1f GT/s x%d now (max %.1f GT/s x%d); rated %.2f GB/s per direction after encoding\n",
                link.bus_id.c_str(), link.gts, link.width, link.max_gts, link.max_width, link.rated_gbps);
  else
    std::printf("link %s: rated bandwidth unknown: %s\n", link.bus_id.c_str(), link.reason.c_str());
}

void run_handoff_bench(const GpuBenchOptions& o) {
  if (!have_device(o.device, "handoff")) return;
  CudaDevice dev(o.device);
  const gpu::HandoffTimes t = dev.measure_handoff(o.iters);
  std::printf("%s: GPU -> CPU -> GPU hand-off, mean of %d, microseconds\n", dev.name().c_str(), t.iters);
  std::printf("  host function between two kernels (cudaLaunchHostFunc): %8.2f us extra\n", t.host_fn_us);
  std::printf("  pinned-flag ping-pong with a resident kernel:           %8.2f us per round trip\n",
              t.flag_round_trip_us);
  std::printf("  kernel, cudaStreamSynchronize, relaunch:                %8.2f us per step\n", t.sync_relaunch_us);
  std::printf("  pinned flags with 8 KB each way (publish, host, await):  %8.2f us per hand-off\n", t.flag_rows_us);
}
#else
void no_cuda(const char* what) {
  std::printf("hexe bench %s: this hexe was built without CUDA (configure with -DHEXE_CUDA=ON); nothing to measure\n",
              what);
}
#endif

}  // namespace

void add_bench_gpu_commands(CLI::App& bench) {
  auto o = std::make_shared<GpuBenchOptions>();
  auto* pcie = bench.add_subcommand("pcie", "PCIe copies H2D/D2H, pinned vs pageable, 64 KiB..1 GiB, vs the link's rated GB/s");
  pcie->add_option("--device", o->device, "CUDA device index")->capture_default_str();
  pcie->add_option("--max-mib", o->max_mib, "Largest copy, MiB (sizes go up by 4x from 64 KiB)")
      ->capture_default_str()->check(CLI::Range(uint64_t(1), uint64_t(16384)));
  auto* handoff = bench.add_subcommand("handoff", "GPU -> CPU -> GPU hand-off latency (host function, pinned flag, sync)");
  handoff->add_option("--device", o->device, "CUDA device index")->capture_default_str();
  handoff->add_option("--iters", o->iters, "Hand-offs per method")->capture_default_str()->check(CLI::Range(1, 1000000));
#if HEXE_HAVE_CUDA
  pcie->callback([o] { run_pcie_bench(*o); });
  handoff->callback([o] { run_handoff_bench(*o); });
#else
  pcie->callback([] { no_cuda("pcie"); });
  handoff->callback([] { no_cuda("handoff"); });
#endif
}

}  // namespace hexe::cli

// Machine detection: hwloc topology, CPUID features, and the measurements that fill a profile.
#include "placement/hw_detect.h"

#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "cpu_kernels/dispatch.h"
#include "cpu_kernels/isa.h"
#include "cpu_kernels/probe.h"
#include "memory/error.h"
#include "placement/dram_bench.h"
#include "placement/moe_layer_bench.h"
#include "placement/peak_bench.h"

namespace hexe::place {

namespace {

GpuDetector& gpu_detector() {
  static GpuDetector fn;
  return fn;
}

struct Topology {
  hwloc_topology_t t = nullptr;
  Topology() {
    if (hwloc_topology_init(&t) != 0 || hwloc_topology_load(t) != 0) throw Error("hwloc: cannot load the topology");
  }
  ~Topology() { hwloc_topology_destroy(t); }
};

// The first PU (OS CPU id) of every core whose cpuset intersects `set`.
std::vector<int> core_cpus(hwloc_topology_t t, hwloc_const_cpuset_t set) {
  std::vector<int> v;
  const int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, unsigned(i));
    if (!hwloc_bitmap_intersects(core->cpuset, set)) continue;
    const int pu = hwloc_bitmap_first(core->cpuset);
    if (pu >= 0) v.push_back(pu);
  }
  return v;
}

std::vector<std::string> isa_list(const cpu::CpuFeatures& f) {
  std::vector<std::string> v;
  auto add = [&](bool b, const char* n) {
    if (b) v.emplace_back(n);
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx_vnni, "avx_vnni");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq");
  add(f.avx512_vnni, "avx512_vnni");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.amx_tile, "amx_tile");
  add(f.amx_int8, "amx_int8");
  add(f.amx_bf16, "amx_bf16");
  return v;
}

}  // namespace

void set_gpu_detector(GpuDetector fn) { gpu_detector() = std::move(fn); }

HardwareProfile detect_topology() {
  Topology topo;
  hwloc_topology_t t = topo.t;
  HardwareProfile p;
  p.name = "detected";
  p.measured = false;
  const auto& f = cpu::cpu_features();
  p.cpu.model = f.brand;
  p.cpu.isa = isa_list(f);
  p.cpu.sockets = std::max(1, hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE));
  p.cpu.cores = std::max(1, hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE));
  p.cpu.threads = std::max(1, hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU));
  const int n_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < n_nodes; ++i) {
    hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, unsigned(i));
    NumaNode n;
    n.id = int(node->os_index);
    n.memory_bytes = node->attr ? node->attr->numanode.local_memory : 0;
    n.cores = int(core_cpus(t, node->cpuset).size());
    hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, node);
    if (!pkg) {  // memory children hang off a normal object; find the package owning its CPUs
      pkg = hwloc_get_next_obj_covering_cpuset_by_type(t, node->cpuset, HWLOC_OBJ_PACKAGE, nullptr);
    }
    n.socket = pkg ? int(pkg->logical_index) : 0;
    p.host_memory_bytes += n.memory_bytes;
    p.cpu.numa.push_back(n);
  }
  // Some VMs report NUMA-local memory far below MemTotal; the kernel's page count is the truth
  // for the whole machine, and a single node owns all of it.
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const uint64_t phys = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
  if (phys > p.host_memory_bytes) {
    p.host_memory_bytes = phys;
    if (p.cpu.numa.size() == 1) p.cpu.numa[0].memory_bytes = phys;
  }
  const hwloc_obj_type_t levels[] = {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE};
  for (int li = 0; li < 3; ++li) {
    const int n = hwloc_get_nbobjs_by_type(t, levels[li]);
    if (n <= 0) continue;
    hwloc_obj_t c = hwloc_get_obj_by_type(t, levels[li], 0);
    p.cpu.caches.push_back({li + 1, c->attr ? c->attr->cache.size : 0, n});
  }
  return p;
}

HardwareProfile detect_profile(const DetectOptions& opt) {
  auto say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };
  HardwareProfile p = detect_topology();
  p.sources.push_back("hwloc topology and CPUID on this machine");
  if (opt.measure) {
    Topology topo;
    std::vector<DramBenchNode> nodes;
    for (const auto& n : p.cpu.numa) {
      hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(topo.t, unsigned(n.id));
      nodes.push_back({node ? core_cpus(topo.t, node->cpuset) : std::vector<int>{}, n.id});
    }
    if (nodes.empty()) nodes.push_back({core_cpus(topo.t, hwloc_get_root_obj(topo.t)->cpuset), -1});
    uint64_t llc = 0;
    for (const auto& c : p.cpu.caches) llc = std::max<uint64_t>(llc, c.bytes * uint64_t(c.instances));
    if (opt.dram_bytes_per_node < 4 * llc)
      say("warning: the read buffer is under 4x the last-level cache (" + std::to_string(llc >> 20) +
          " MiB): the bandwidth includes cache hits");
    say("measuring DRAM read bandwidth (" + std::to_string(opt.dram_bytes_per_node >> 20) + " MiB per node)...");
    const DramBenchResult dram = measure_dram_read(nodes, opt.dram_bytes_per_node, 5);
    for (size_t i = 0; i < p.cpu.numa.size() && i < dram.node_gbps.size(); ++i) p.cpu.numa[i].read_gbps = dram.node_gbps[i];
    p.cpu.dram_read_gbps = dram.all_gbps;

    const std::vector<int> all = core_cpus(topo.t, hwloc_get_root_obj(topo.t)->cpuset);
    say("measuring matmul rates (q8_0 int8 path, bf16, f32) on " + std::to_string(all.size()) + " cores...");
    p.cpu.peak_gops_int8 = measure_matmul_gflops(DType::Q8_0, all, opt.matmul_seconds);
    p.cpu.peak_gflops_bf16 = measure_matmul_gflops(DType::BF16, all, opt.matmul_seconds);
    p.cpu.peak_gflops_fp32 = measure_matmul_gflops(DType::F32, all, opt.matmul_seconds);
    say("measuring Q4_K GEMV streaming from DRAM (" + std::to_string(opt.gemv_bytes >> 20) + " MiB)...");
    const StreamRate gemv = measure_gemv_stream(all, opt.gemv_bytes);
    // Peaks above are hexe's own cache-resident rates, so compute efficiencies are near 1; the
    // DRAM efficiency is what a real GEMV reaches of the plain read bandwidth (each run over a
    // read taken just before it, so a bandwidth that moves does not enter the ratio).
    p.efficiency.cpu_dram = std::clamp(gemv.ratio, 0.05, 1.0);
    p.efficiency.cpu_int8 = 0.9;
    p.efficiency.cpu_float = 0.9;
    p.cpu.attention_gflops = measure_attention_gflops(all, opt.matmul_seconds);
    // Per weight type and layout: the prefill rates of a dense matrix (128 rows) and of the
    // routed-expert layer, and the decode streaming efficiency; the kernels differ in all three.
    say("measuring per-type matmul rates and GEMV streaming (" + std::to_string(measured_weight_types().size()) +
        " types)...");
    const uint64_t per_type = std::max<uint64_t>(opt.gemv_bytes / 2, 4 * llc);
    // The MoE layers' weight set: whole layers far above the LLC, so each run's layer comes from DRAM.
    const uint64_t moe_set = std::max<uint64_t>(std::min<uint64_t>(per_type, uint64_t(1) << 30), cpu::dram_span_bytes());
    for (DType t : measured_weight_types()) {
      for (cpu::WeightLayout layout : {cpu::WeightLayout::Gguf, cpu::WeightLayout::Rows16}) {
        const bool rows16 = layout == cpu::WeightLayout::Rows16;
        // The AVX-512 copy (repack.h) is measured where the engine would make one.
        if (rows16 && !(cpu::rows16_supported(t) && cpu::matmul_choice(t, 4096, cpu::active_isa(), layout).tier >=
                                                        cpu::matmul_choice(t, 4096, cpu::active_isa()).tier))
          continue;
        const std::string name = std::string(dtype_name(t)) + (rows16 ? "+rows16" : "");
        p.cpu.matmul_gops[name] = measure_matmul_gflops(t, all, opt.matmul_seconds / 2, 128, layout);
        if (is_quantized(t)) {
          const MoeLayerRates moe = measure_moe_layer(t, all, moe_set, layout, opt.matmul_seconds / 2);
          p.cpu.moe_prefill_gops[name] = moe.prefill_gops_32;
          p.cpu.moe_prefill_gops_8[name] = moe.prefill_gops_8;
          p.cpu.moe_prefill_gops_128[name] = moe.prefill_gops_128;
          p.efficiency.cpu_moe_decode_by_type[name] = std::clamp(moe.decode.ratio, 0.05, 1.0);
        }
        p.efficiency.cpu_dram_by_type[name] = std::clamp(measure_gemv_stream(all, per_type, t, layout).ratio, 0.05, 1.0);
      }
    }
    p.notes = "Measured with hexe's kernels (ISA tier " + std::string(cpu::isa_name(cpu::active_isa())) +
              "): peak_* are cache-resident matmul rates, efficiency.cpu_dram = Q4_K GEMV GB/s (" +
              std::to_string(gemv.gbps) + ") / read GB/s just before each run.";
    p.sources.push_back("hexe profile detect: streaming-read benchmark, hexe matmul (q8_0, bf16, f32), Q4_K GEMV");
    p.measured = true;
  }
  if (gpu_detector()) p.gpus = gpu_detector()();
  // The first GPU's measured kernel figures become the efficiencies the planner uses.
  if (!p.gpus.empty()) {
    const GpuProfile& g = p.gpus[0];
    if (g.gemv_gbps > 0 && g.mem_gbps > 0) p.efficiency.gpu_gemv = std::clamp(g.gemv_gbps / g.mem_gbps, 0.01, 1.0);
    p.efficiency.gpu_gemv_floor_us = g.gemv_floor_us;
    if (g.graph_kernel_us > 0) p.efficiency.gpu_kernel_us = g.graph_kernel_us;
    if (g.launch_us > 0) p.efficiency.gpu_launch_us = g.launch_us;
    if (g.handoff_us > 0) p.efficiency.handoff_us = g.handoff_us;
    if (g.flag_handoff_us > 0) p.efficiency.flag_handoff_us = g.flag_handoff_us;
    if (g.expert_prefill_us > 0) p.efficiency.gpu_expert_prefill_us = g.expert_prefill_us;
  }
  return p;
}

std::string describe_profile(const HardwareProfile& p) {
  std::string s;
  char b[512];
  std::snprintf(b, sizeof b, "%s: %s, %d socket(s), %d cores, %d threads, %.0f GiB host memory\n", p.name.c_str(),
                p.cpu.model.c_str(), p.cpu.sockets, p.cpu.cores, p.cpu.threads,
                double(p.host_memory_bytes) / double(1ull << 30));
  s += b;
  std::string isa;
  for (const auto& i : p.cpu.isa) isa += " " + i;
  s += "  ISA:" + isa + "\n";
  for (const auto& c : p.cpu.caches) {
    std::snprintf(b, sizeof b, "  L%d: %d x %llu KiB\n", c.level, c.instances, (unsigned long long)(c.bytes / 1024));
    s += b;
  }
  for (const auto& n : p.cpu.numa) {
    std::snprintf(b, sizeof b, "  NUMA node %d (socket %d): %d cores, %.1f GiB, read %.1f GB/s\n", n.id, n.socket,
                  n.cores, double(n.memory_bytes) / double(1ull << 30), n.read_gbps);
    s += b;
  }
  std::snprintf(b, sizeof b, "  DRAM read (all nodes): %.1f GB/s; matmul int8 %.0f GOP/s, bf16 %.0f GFLOP/s, f32 %.0f GFLOP/s\n",
                p.cpu.dram_read_gbps, p.cpu.peak_gops_int8, p.cpu.peak_gflops_bf16, p.cpu.peak_gflops_fp32);
  s += b;
  std::snprintf(b, sizeof b, "  efficiency: DRAM %.2f, int8 %.2f, float %.2f\n", p.efficiency.cpu_dram,
                p.efficiency.cpu_int8, p.efficiency.cpu_float);
  s += b;
  if (p.cpu.attention_gflops > 0) {
    std::snprintf(b, sizeof b, "  attention (F32 cache, 512-token prefill) %.1f GFLOP/s\n", p.cpu.attention_gflops);
    s += b;
  }
  for (const auto& [type, gops] : p.cpu.matmul_gops) {
    auto it = p.efficiency.cpu_dram_by_type.find(type);
    auto moe = p.cpu.moe_prefill_gops.find(type);
    auto moe_dec = p.efficiency.cpu_moe_decode_by_type.find(type);
    std::snprintf(b, sizeof b,
                  "  %-11s matmul %6.1f GOP/s (128 rows), MoE prefill %6.1f GOP/s, decode streams at %.2f of DRAM "
                  "(MoE layer %.2f)\n",
                  type.c_str(), gops, moe == p.cpu.moe_prefill_gops.end() ? 0.0 : moe->second,
                  it == p.efficiency.cpu_dram_by_type.end() ? 0.0 : it->second,
                  moe_dec == p.efficiency.cpu_moe_decode_by_type.end() ? 0.0 : moe_dec->second);
    s += b;
  }
  if (p.gpus.empty()) s += "  GPU: none detected\n";
  for (const auto& g : p.gpus) {
    std::snprintf(b, sizeof b, "  GPU %s: %.1f GiB, %d SMs, %.0f GB/s, PCIe H2D %.1f GB/s, D2H %.1f GB/s\n",
                  g.name.c_str(), double(g.memory_bytes) / double(1ull << 30), g.sms, g.mem_gbps, g.pcie_h2d_gbps,
                  g.pcie_d2h_gbps);
    s += b;
  }
  return s;
}

}  // namespace hexe::place

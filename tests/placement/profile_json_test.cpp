// Hardware profiles: every shipped profile loads, survives a JSON round trip, and bad files
// are refused with the field named.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "placement/data_paths.h"
#include "placement/hardware_profile.h"
#include "scratch_path.h"

namespace hexe::place {
namespace {

const char* kShipped[] = {"seed-desktop", "ktransformers-ref", "threadripper-7965wx-rtx4090",
                          "ryzen-7950x-rtx4080", "epyc-9654-rtx4090"};

TEST(ProfileJson, ShippedProfilesRoundTrip) {
  for (const char* name : kShipped) {
    SCOPED_TRACE(name);
    HardwareProfile p = load_profile(std::string(HEXE_SOURCE_DIR) + "/profiles/hardware/" + name + ".json");
    EXPECT_EQ(p.name, name);
    EXPECT_FALSE(p.sources.empty());
    EXPECT_GT(p.cpu.dram_read_gbps, 0);
    EXPECT_GT(p.cpu.peak_gops_int8, p.cpu.peak_gflops_fp32);
    ASSERT_EQ(p.gpus.size(), 1u);
    EXPECT_GT(p.gpus[0].pcie_h2d_gbps, 0);
    // The sum of the NUMA nodes' bandwidths bounds the whole.
    double nodes = 0;
    for (const auto& n : p.cpu.numa) nodes += n.read_gbps;
    EXPECT_LE(p.cpu.dram_read_gbps, nodes + 1e-9);

    const std::string path = hexe::testing::scratch_path("profile_roundtrip_") + name + ".json";
    save_profile(p, path);
    HardwareProfile q = load_profile(path);
    std::filesystem::remove(path);
    EXPECT_EQ(nlohmann::json(p).dump(), nlohmann::json(q).dump());
    EXPECT_EQ(q.host_memory_bytes, p.host_memory_bytes);
    EXPECT_EQ(q.gpus[0].memory_bytes, p.gpus[0].memory_bytes);
    EXPECT_EQ(q.cpu.caches.size(), p.cpu.caches.size());
    EXPECT_DOUBLE_EQ(q.efficiency.handoff_us, p.efficiency.handoff_us);
  }
}

TEST(ProfileJson, ResolvesNamesAndFiles) {
  EXPECT_EQ(resolve_profile("seed-desktop").name, "seed-desktop");
  EXPECT_EQ(resolve_profile(std::string(HEXE_SOURCE_DIR) + "/profiles/hardware/seed-desktop.json").name, "seed-desktop");
  try {
    resolve_profile("no-such-machine");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("seed-desktop"), std::string::npos) << "lists the known names: " << e.what();
  }
}

TEST(ProfileJson, BadFilesNameTheField) {
  const std::string path = hexe::testing::scratch_path("profile_bad.json");
  auto write = [&](const nlohmann::json& j) {
    std::ofstream(path) << j.dump();
  };
  nlohmann::json j = nlohmann::json(load_profile(std::string(HEXE_SOURCE_DIR) + "/profiles/hardware/seed-desktop.json"));
  j["cpu"].erase("dram_read_gbps");
  write(j);
  try {
    load_profile(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dram_read_gbps"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  j["cpu"]["dram_read_gbps"] = 10;
  j["efficiency"]["cpu_dram"] = 1.5;
  write(j);
  EXPECT_THROW(load_profile(path), Error);
  j["efficiency"]["cpu_dram"] = 0.7;
  j["efficiency"]["cpu_dram_by_type"] = {{"q4_K", 0.8}};
  j["cpu"]["matmul_gops"] = {{"q4_K", 120.5}};
  write(j);
  const HardwareProfile measured = load_profile(path);  // per-type figures survive the round trip
  EXPECT_DOUBLE_EQ(measured.efficiency.cpu_dram_by_type.at("q4_K"), 0.8);
  EXPECT_DOUBLE_EQ(measured.cpu.matmul_gops.at("q4_K"), 120.5);
  EXPECT_EQ(nlohmann::json(measured)["cpu"]["matmul_gops"]["q4_K"], 120.5);
  j["efficiency"]["cpu_dram_by_type"]["q8_0"] = 2.0;
  write(j);
  try {
    load_profile(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cpu_dram_by_type.q8_0"), std::string::npos) << e.what();
  }
  std::ofstream(path) << "{ not json";
  EXPECT_THROW(load_profile(path), Error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace hexe::place

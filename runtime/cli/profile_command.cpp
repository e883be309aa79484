// `hexe profile detect|show`: measure this machine into a hardware profile, or print one.
#include <cstdio>
#include <memory>

#include "memory/error.h"
#include "placement/hardware_profile.h"
#include "placement/hw_detect.h"
#include "runtime/cli/commands.h"

namespace hexe::cli {

namespace {
struct ProfileOptions {
  std::string out;
  std::string name = "this-machine";
  uint64_t dram_mib = 2048;
  std::string show;
};
}  // namespace

void add_profile_command(CLI::App& app) {
  auto opt = std::make_shared<ProfileOptions>();
  auto* cmd = app.add_subcommand("profile", "Hardware profiles: detect this machine, or show a profile");
  cmd->require_subcommand(1);
  auto* detect = cmd->add_subcommand("detect", "Measure this machine (topology, ISA, DRAM bandwidth, matmul rates)");
  detect->add_option("-o,--output", opt->out, "Write the profile JSON here");
  detect->add_option("--name", opt->name, "Profile name")->capture_default_str();
  detect->add_option("--dram-mib", opt->dram_mib, "Buffer per NUMA node for the read benchmark (>= 2048 recommended)")
      ->capture_default_str()
      ->check(CLI::Range(64, 1 << 20));
  detect->callback([opt] {
    place::DetectOptions d;
    d.dram_bytes_per_node = opt->dram_mib << 20;
    d.progress = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    place::HardwareProfile p = place::detect_profile(d);
    p.name = opt->name;
    std::printf("%s", place::describe_profile(p).c_str());
    if (!opt->out.empty()) {
      place::save_profile(p, opt->out);
      std::printf("profile written to %s\n", opt->out.c_str());
    }
  });
  auto* show = cmd->add_subcommand("show", "Print a profile (NAME under profiles/hardware or a file)");
  show->add_option("profile", opt->show, "Profile name or file")->required();
  show->callback([opt] { std::printf("%s", place::describe_profile(place::resolve_profile(opt->show)).c_str()); });
}

}  // namespace hexe::cli

// `hexe bench`: placeholder until its implementation lands in this session.
#include "memory/error.h"
#include "runtime/cli/commands.h"

namespace hexe::cli {
void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "bench");
  cmd->callback([] { throw Error("hexe bench: not built yet"); });
}
}  // namespace hexe::cli

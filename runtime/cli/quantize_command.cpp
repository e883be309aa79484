// `hexe quantize`: placeholder until its implementation lands in this session.
#include "memory/error.h"
#include "runtime/cli/commands.h"

namespace hexe::cli {
void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "quantize");
  cmd->callback([] { throw Error("hexe quantize: not built yet"); });
}
}  // namespace hexe::cli

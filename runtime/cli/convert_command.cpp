// `hexe convert`: placeholder until its implementation lands in this session.
#include "memory/error.h"
#include "runtime/cli/commands.h"

namespace hexe::cli {
void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "convert");
  cmd->callback([] { throw Error("hexe convert: not built yet"); });
}
}  // namespace hexe::cli

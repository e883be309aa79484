// `hexe chat`: placeholder until its implementation lands in this session.
#include "memory/error.h"
#include "runtime/cli/commands.h"

namespace hexe::cli {
void add_chat_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat", "chat");
  cmd->callback([] { throw Error("hexe chat: not built yet"); });
}
}  // namespace hexe::cli

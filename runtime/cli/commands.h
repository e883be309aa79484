// The `hexe` subcommands: each file of runtime/cli/ registers one with the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace hexe::cli {

void add_run_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_profile_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace hexe::cli

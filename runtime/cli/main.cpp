// The `hexe` executable: subcommands, and errors turned into a message and a non-zero exit.
#include <cstdio>
#include <exception>

#include "runtime/cli/commands.h"
#if HEXE_HAVE_CUDA
#include "runtime/engine/cuda/gpu_detector.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"hexe: runs Mixture-of-Experts models larger than the GPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hexe 0.1.0");
  hexe::cli::add_run_command(app);
  hexe::cli::add_chat_command(app);
  hexe::cli::add_inspect_command(app);
  hexe::cli::add_perplexity_command(app);
  hexe::cli::add_profile_command(app);
  hexe::cli::add_plan_command(app);
  hexe::cli::add_quantize_command(app);
  hexe::cli::add_convert_command(app);
  hexe::cli::add_bench_command(app);
#if HEXE_HAVE_CUDA
  // `hexe profile detect` lists CUDA devices through this hook (placement/ sees no CUDA).
  hexe::install_cuda_gpu_detector([](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); });
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hexe: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

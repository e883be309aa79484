// `hexe quantize IN OUT TYPE`: any model hexe reads -> a GGUF in a plain type or a llama.cpp mix.
#include <cstdio>
#include <memory>
#include <string>

#include "runtime/cli/commands.h"
#include "runtime/model/load_progress.h"
#include "runtime/model/model_file.h"
#include "runtime/model/quantize.h"

namespace hexe::cli {

namespace {

struct QuantizeCli {
  std::string in, out, type;
  QuantizeOptions opt;
};

void quantize(const QuantizeCli& c) {
  const QuantTarget target = parse_quant_target(c.type);
  auto model = ModelFile::open(c.in, /*progress=*/true);
  QuantizeResult r = quantize_model(*model, c.out, target, c.opt);
  std::string report = format_quantize_report(r, c.opt.verbose);
  if (c.opt.dry_run) {
    std::printf("%s (dry run) %s: %zu tensors, would write %s\n%s", target.name.c_str(),
                c.in.c_str(), r.tensors.size(), format_bytes(r.file_bytes).c_str(), report.c_str());
  } else {
    std::printf("%s -> %s (%s): %zu tensors in %.1f s\n%s", c.in.c_str(), c.out.c_str(),
                target.name.c_str(), r.tensors.size(), r.seconds, report.c_str());
  }
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto c = std::make_shared<QuantizeCli>();
  std::string types;
  for (const auto& n : quant_target_names()) types += (types.empty() ? "" : ", ") + n;
  auto* cmd = app.add_subcommand("quantize", "Quantize a GGUF or HF model to a GGUF file");
  cmd->add_option("input", c->in, "GGUF file or HF safetensors directory")->required();
  cmd->add_option("output", c->out, "GGUF file to write")->required();
  cmd->add_option("type", c->type, "Target: " + types)->required();
  cmd->add_option("-t,--threads", c->opt.threads, "Worker threads (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--dry-run", c->opt.dry_run, "Print per-type sizes and the file size; write nothing");
  cmd->add_flag("-v,--verbose", c->opt.verbose, "Print the RMSE of every tensor against the source");
  cmd->callback([c] { quantize(*c); });
}

}  // namespace hexe::cli

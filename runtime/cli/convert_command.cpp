// `hexe convert HF_DIR OUT.gguf`: HF safetensors + config + tokenizer -> GGUF, llama.cpp's layout.
#include <cstdio>
#include <memory>
#include <string>

#include "memory/error.h"
#include "runtime/cli/commands.h"
#include "runtime/model/load_progress.h"
#include "runtime/model/model_file.h"
#include "runtime/model/quantize.h"

namespace hexe::cli {

namespace {

struct ConvertCli {
  std::string in, out, type = "f16";
  QuantizeOptions opt;
};

void convert(const ConvertCli& c) {
  const QuantTarget target = parse_quant_target(c.type);
  auto model = ModelFile::open(c.in, /*progress=*/true);
  if (model->format() != ModelFormat::Safetensors)
    throw Error(c.in + ": hexe convert takes an HF safetensors directory (use hexe quantize for "
                       "GGUF input)");
  QuantizeResult r = quantize_model(*model, c.out, target, c.opt);
  std::printf("%s -> %s (%s): %zu tensors, %s in %.1f s\n%s", c.in.c_str(), c.out.c_str(),
              target.name.c_str(), r.tensors.size(), format_bytes(r.file_bytes).c_str(), r.seconds,
              format_quantize_report(r, c.opt.verbose).c_str());
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto c = std::make_shared<ConvertCli>();
  std::string types;
  for (const auto& n : quant_target_names()) types += (types.empty() ? "" : ", ") + n;
  auto* cmd = app.add_subcommand("convert", "Convert an HF safetensors model directory to GGUF");
  cmd->add_option("input", c->in, "HF model directory (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("output", c->out, "GGUF file to write")->required();
  cmd->add_option("--type", c->type, "f32, f16 (default), bf16 or a quantize type: " + types);
  cmd->add_option("-t,--threads", c->opt.threads, "Worker threads (default: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("-v,--verbose", c->opt.verbose, "Print the RMSE of every tensor against the source");
  cmd->callback([c] { convert(*c); });
}

}  // namespace hexe::cli

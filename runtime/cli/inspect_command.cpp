// `hexe inspect FILE|DIR`: architecture, sizes, parameters, bytes per token, KV cache, tensors.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/cli/commands.h"
#include "runtime/model/model_file.h"
#include "runtime/model/model_report.h"
#include "runtime/model/spec_builder.h"

namespace hexe::cli {

namespace {

struct InspectOptions {
  std::string path;
  ReportOptions report;
  bool json = false;
};

void inspect(const InspectOptions& o) {
  auto model = ModelFile::open(o.path, /*progress=*/true);
  const place::ModelSpec spec = build_model_spec(*model);
  const std::string out = o.json ? model_report_json(*model, spec, o.report).dump(2) + "\n"
                                 : model_report_text(*model, spec, o.report);
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto opts = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand(
      "inspect", "Show a model's architecture, sizes, parameters, bytes per token and KV cache");
  cmd->add_option("model", opts->path, "GGUF file (first shard of a split set), *.safetensors or HF directory")
      ->required();
  cmd->add_flag("--tensors", opts->report.tensors, "Also list every tensor (name, type, shape, bytes, role)");
  cmd->add_option("--context", opts->report.context,
                  "Context length for the KV-cache figure (default: the training context)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  cmd->add_flag("--json", opts->json, "Print JSON instead of text");
  cmd->callback([opts] { inspect(*opts); });
}

}  // namespace hexe::cli

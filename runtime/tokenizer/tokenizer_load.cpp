// Tokenizer factories: GGUF metadata, HF tokenizer.json files, or whatever a ModelFile holds.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "memory/error.h"
#include "runtime/model/model_file.h"
#include "runtime/tokenizer/tokenizer.h"

namespace hexe {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf_metadata(const Metadata& meta) {
  return std::make_unique<Tokenizer>(vocab_from_gguf_metadata(meta));
}

std::unique_ptr<Tokenizer> Tokenizer::from_hf_files(const std::string& tokenizer_json,
                                                    const std::string& tokenizer_config) {
  return std::make_unique<Tokenizer>(vocab_from_hf_files(tokenizer_json, tokenizer_config));
}

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// tokenizer.json + tokenizer_config.json of a directory; newer HF repos keep the template in
// chat_template.jinja instead of the config.
Vocab hf_dir_vocab(const std::filesystem::path& json) {
  namespace fs = std::filesystem;
  const fs::path dir = json.parent_path();
  const fs::path config = dir / "tokenizer_config.json";
  Vocab v = vocab_from_hf_files(json.string(), fs::is_regular_file(config) ? config.string() : "");
  if (v.chat_template.empty() && fs::is_regular_file(dir / "chat_template.jinja"))
    v.chat_template = read_file(dir / "chat_template.jinja");
  return v;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_hf_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path json = fs::path(dir) / "tokenizer.json";
  if (!fs::is_regular_file(json))
    throw Error(dir + ": no tokenizer.json (only HF fast-tokenizer files are supported)");
  return std::make_unique<Tokenizer>(hf_dir_vocab(json));
}

std::unique_ptr<Tokenizer> Tokenizer::from_model_file(const ModelFile& model) {
  const Metadata& meta = model.metadata();
  if (meta.has("tokenizer.ggml.model")) return from_gguf_metadata(meta);
  if (auto json = meta.get_string("hexe.tokenizer_json")) {
    Vocab v = hf_dir_vocab(*json);
    if (v.chat_template.empty()) v.chat_template = meta.get_string("tokenizer.chat_template").value_or("");
    return std::make_unique<Tokenizer>(std::move(v));
  }
  throw Error(model.path() + ": has no tokenizer (no 'tokenizer.ggml.model' key and no "
              "tokenizer.json beside the model)");
}

}  // namespace hexe

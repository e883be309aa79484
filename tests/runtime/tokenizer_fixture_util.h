// Test helpers: paths of the committed tokenizer fixtures and loaders for both of their sources.
#pragma once

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/model/model_file.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"
#include "runtime/tokenizer/utf8_stream.h"

namespace hexe::test {

inline std::string tokenizer_fixture_dir(const std::string& name) {
  return std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/tokenizers/" + name;
}

inline nlohmann::json read_fixture_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// source: "hf" (tokenizer.json + tokenizer_config.json) or "gguf" (vocab.gguf metadata).
inline std::unique_ptr<Tokenizer> load_fixture_tokenizer(const std::string& name,
                                                         const std::string& source) {
  const std::string dir = tokenizer_fixture_dir(name);
  if (source == "hf") return Tokenizer::from_hf_dir(dir);
  auto model = ModelFile::open(dir + "/vocab.gguf", /*progress=*/false);
  return Tokenizer::from_model_file(*model);
}

}  // namespace hexe::test

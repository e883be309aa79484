// Fixture reader for the reference tests.
#include "fixtures.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace hexe::testing {

namespace fs = std::filesystem;

// The source tree's fixtures; relative to the working directory when the tree has moved (a copy
// of the checkout on a GPU machine runs binaries built elsewhere from its root).
std::string fixtures_dir() {
  const std::string built = std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/models";
  return fs::exists(built) ? built : "tests/reference/fixtures/models";
}

std::vector<std::string> fixture_model_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fixtures_dir()))
    if (fs::exists(e.path() / "reference.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

static std::vector<float> read_floats(const std::string& path, size_t n) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<float> v(n);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(n * sizeof(float)));
  if (size_t(f.gcount()) != n * sizeof(float)) throw std::runtime_error(path + ": short file");
  return v;  // little-endian float32, as this x86 machine reads it
}

ModelRef load_model_ref(const std::string& name) {
  ModelRef m;
  m.name = name;
  m.dir = fixtures_dir() + "/" + name;
  std::ifstream f(m.dir + "/reference.json");
  const nlohmann::json j = nlohmann::json::parse(f);
  m.hf_dir = m.dir + "/" + j.at("hf_dir").get<std::string>();
  m.n_vocab = j.at("n_vocab");
  for (const auto& p : j.at("prompts"))
    m.prompts.push_back({p.at("name"), p.at("text"), p.at("tokens").get<std::vector<int32_t>>()});
  for (const auto& v : j.at("variants")) {
    VariantRef vr;
    vr.name = v.at("name");
    for (const auto& g : v.at("gguf")) vr.files.push_back(m.dir + "/" + g.get<std::string>());
    vr.max_abs_logit = v.at("max_abs_logit");
    for (const auto& l : v.at("logits")) {
      LogitsRef lr;
      lr.prompt = l.at("prompt");
      lr.positions = l.at("positions").get<std::vector<int64_t>>();
      lr.router_gap = l.at("router_min_logit_gap").get<std::vector<double>>();
      lr.values = read_floats(m.dir + "/" + l.at("file").get<std::string>(), lr.positions.size() * m.n_vocab);
      vr.logits.push_back(std::move(lr));
    }
    for (const auto& g : v.at("greedy"))
      vr.greedy.push_back({g.at("prompt"), g.at("new_tokens").get<std::vector<int32_t>>(),
                           g.at("top2_margin").get<std::vector<double>>()});
    m.variants.push_back(std::move(vr));
  }
  if (j.contains("perplexity")) m.perplexity = j.at("perplexity");
  return m;
}

const VariantRef& ModelRef::variant(const std::string& n) const {
  for (const auto& v : variants)
    if (v.name == n) return v;
  throw std::runtime_error(name + ": no variant " + n);
}

const PromptRef& ModelRef::prompt(const std::string& n) const {
  for (const auto& p : prompts)
    if (p.name == n) return p;
  throw std::runtime_error(name + ": no prompt " + n);
}

}  // namespace hexe::testing

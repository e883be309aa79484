// ModelFile::open: picks the reader from the path (GGUF, split GGUF, safetensors, HF directory).
#include "runtime/model/model_file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "memory/error.h"
#include "runtime/model/gguf_reader.h"
#include "runtime/model/load_progress.h"
#include "runtime/model/hf_model.h"

namespace hexe {

namespace fs = std::filesystem;

int64_t TensorRef::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return ne.empty() ? 0 : n;
}

void ModelFile::index_tensors() {
  by_name_.resize(tensors_.size());
  for (uint32_t i = 0; i < by_name_.size(); ++i) by_name_[i] = i;
  std::sort(by_name_.begin(), by_name_.end(),
            [&](uint32_t a, uint32_t b) { return tensors_[a].name < tensors_[b].name; });
  for (size_t i = 1; i < by_name_.size(); ++i) {
    const TensorRef& a = tensors_[by_name_[i - 1]];
    const TensorRef& b = tensors_[by_name_[i]];
    if (a.name == b.name)
      throw Error(b.file + ": tensor '" + b.name + "' appears twice" +
                  (a.file != b.file ? " (also in " + a.file + ")" : std::string()));
  }
}

const TensorRef* ModelFile::find(std::string_view name) const {
  if (by_name_.size() == tensors_.size()) {
    auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                               [&](uint32_t i, std::string_view n) { return tensors_[i].name < n; });
    if (it != by_name_.end() && tensors_[*it].name == name) return &tensors_[*it];
    return nullptr;
  }
  for (const TensorRef& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorRef& ModelFile::require(std::string_view name) const {
  if (const TensorRef* t = find(name)) return *t;
  throw Error(path_ + ": tensor '" + std::string(name) + "' is missing (the model has " +
              std::to_string(tensors_.size()) + " tensors)");
}

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint64_t size_or_zero(const std::string& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : uint64_t(n);
}

bool has_gguf_magic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[4] = {};
  return f.read(m, 4) && std::memcmp(m, "GGUF", 4) == 0;
}

std::unique_ptr<ModelFile> open_gguf(const std::string& path, bool progress) {
  uint64_t total = 0;
  for (const auto& p : gguf_split_paths_from_name(path)) total += size_or_zero(p);
  LoadProgress bar(fs::path(path).filename().string(), total, progress);
  return open_gguf_model(path, [&](uint64_t bytes) { bar.advance(bytes); });
}

// A directory holding GGUF files but no config.json: accept exactly one model (a single file or
// one split set); anything else is ambiguous.
std::unique_ptr<ModelFile> open_gguf_dir(const std::string& dir, bool progress) {
  std::vector<std::string> firsts;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string p = e.path().string();
    if (!e.is_regular_file() || !ends_with(p, ".gguf")) continue;
    auto set = gguf_split_paths_from_name(p);
    if (set.front() == p) firsts.push_back(p);
  }
  std::sort(firsts.begin(), firsts.end());
  if (firsts.size() == 1) return open_gguf(firsts.front(), progress);
  if (firsts.empty())
    throw Error(dir + ": directory has no config.json, no *.safetensors and no *.gguf model");
  std::string list;
  for (const auto& f : firsts) list += "\n  " + f;
  throw Error(dir + ": directory holds " + std::to_string(firsts.size()) +
              " GGUF models; name one:" + list);
}

}  // namespace

std::unique_ptr<ModelFile> ModelFile::open(const std::string& path, bool progress) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    throw Error(path + ": no such file or directory (expected a .gguf file, a .safetensors file "
                       "or an HF model directory)");
  if (fs::is_directory(st)) {
    const fs::path d(path);
    if (fs::exists(d / "config.json") || fs::exists(d / "model.safetensors") ||
        fs::exists(d / "model.safetensors.index.json"))
      return open_safetensors_model(path, progress);
    return open_gguf_dir(path, progress);
  }
  if (ends_with(path, ".gguf") || has_gguf_magic(path)) return open_gguf(path, progress);
  if (ends_with(path, ".safetensors") || ends_with(path, ".safetensors.index.json"))
    return open_safetensors_model(path, progress);
  throw Error(path + ": not a model file: expected GGUF (magic 'GGUF'), *.safetensors, "
                     "*.safetensors.index.json or an HF model directory");
}

}  // namespace hexe

// GGUF split sets (NAME-00001-of-0000N.gguf) and opening a GGUF model as one ModelFile.
#include <cstdio>
#include <unordered_map>

#include "memory/error.h"
#include "runtime/model/gguf_reader.h"
#include "runtime/model/mapped_model.h"

namespace hexe {
namespace {

constexpr const char* kSplitNo = "split.no";
constexpr const char* kSplitCount = "split.count";
constexpr const char* kSplitTensors = "split.tensors.count";

// "dir/NAME-00002-of-00005.gguf" -> prefix "dir/NAME", no 2, count 5; false if not that pattern.
bool parse_split_name(const std::string& path, std::string& prefix, int& no, int& count) {
  static const std::string ext = ".gguf";
  if (path.size() < ext.size() + 15 || path.compare(path.size() - ext.size(), ext.size(), ext) != 0)
    return false;
  // Tail without ".gguf": "-NNNNN-of-MMMMM" (15 characters).
  const std::string tail = path.substr(path.size() - ext.size() - 15, 15);
  auto digits = [](const std::string& s) {
    for (char ch : s)
      if (ch < '0' || ch > '9') return false;
    return true;
  };
  if (tail[0] != '-' || tail.compare(6, 4, "-of-") != 0 || !digits(tail.substr(1, 5)) ||
      !digits(tail.substr(10, 5)))
    return false;
  prefix = path.substr(0, path.size() - ext.size() - 15);
  no = std::stoi(tail.substr(1, 5));
  count = std::stoi(tail.substr(10, 5));
  return true;
}

std::string shard_path(const std::string& prefix, int no, int count) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.gguf", no, count);
  return prefix + buf;
}

}  // namespace

std::vector<std::string> gguf_split_paths_from_name(const std::string& path) {
  std::string prefix;
  int no = 0, count = 0;
  if (!parse_split_name(path, prefix, no, count) || count < 1 || no < 1 || no > count) return {path};
  std::vector<std::string> paths;
  for (int i = 1; i <= count; ++i) paths.push_back(shard_path(prefix, i, count));
  return paths;
}

std::vector<std::string> gguf_split_paths(const std::string& path, const Metadata& md) {
  auto count = md.get_int(kSplitCount);
  if (!count || *count <= 1) {
    if (count && *count < 1)
      throw Error(path + ": key 'split.count' is " + std::to_string(*count) + ", expected >= 1");
    return {path};
  }
  if (*count > 99999)
    throw Error(path + ": key 'split.count' is " + std::to_string(*count) +
                ", expected at most 99999 shards");
  std::string prefix;
  int no = 0, name_count = 0;
  if (!parse_split_name(path, prefix, no, name_count))
    throw Error(path + ": key 'split.count' is " + std::to_string(*count) +
                " but the file name does not follow NAME" + shard_path("", 1, int(*count)) +
                " (needed to find the other shards)");
  if (name_count != *count)
    throw Error(path + ": key 'split.count' is " + std::to_string(*count) +
                " but the file name says " + std::to_string(name_count) + " shards");
  std::vector<std::string> paths;
  for (int i = 1; i <= int(*count); ++i) paths.push_back(shard_path(prefix, i, int(*count)));
  return paths;
}

std::unique_ptr<ModelFile> open_gguf_model(const std::string& path,
                                           const std::function<void(uint64_t)>& on_file) {
  GgufFile named = read_gguf(path);
  std::vector<std::string> paths = gguf_split_paths(path, named.header.metadata);
  if (on_file) on_file(named.map.size());

  auto model = std::make_unique<MappedModel>(ModelFormat::Gguf, paths.front());
  if (paths.size() == 1) {
    model->mutable_metadata() = std::move(named.header.metadata);
    model->mutable_tensors() = std::move(named.header.tensors);
    model->add_mapping(std::move(named.map));
    model->finish();
    return model;
  }

  // A split set: shard i (1-based in the name) must carry split.no == i-1 and the same count;
  // the first holds the model's metadata; split.tensors.count is the total over all shards.
  const int count = int(paths.size());
  std::vector<GgufFile> shards(count);
  for (int i = 0; i < count; ++i) {
    if (paths[i] == path) {
      shards[i] = std::move(named);
      continue;
    }
    try {
      shards[i] = read_gguf(paths[i]);
    } catch (const Error& e) {
      throw Error(path + ": shard " + std::to_string(i + 1) + " of " + std::to_string(count) +
                  " of the split set: " + e.what());
    }
    if (on_file) on_file(shards[i].map.size());
  }
  const Metadata& first = shards[0].header.metadata;
  const int64_t total = [&] {
    auto t = first.get_int(kSplitTensors);
    if (!t) throw Error(paths[0] + ": key 'split.tensors.count' missing in the first shard of a split set");
    return *t;
  }();
  std::vector<TensorRef>& tensors = model->mutable_tensors();
  for (int i = 0; i < count; ++i) {
    const Metadata& md = shards[i].header.metadata;
    auto no = md.get_int(kSplitNo);
    auto cnt = md.get_int(kSplitCount);
    if (!no || *no != i)
      throw Error(paths[i] + ": key 'split.no' is " + (no ? std::to_string(*no) : "missing") +
                  ", expected " + std::to_string(i) + " (shard " + std::to_string(i + 1) + " of " +
                  std::to_string(count) + ")");
    if (!cnt || *cnt != count)
      throw Error(paths[i] + ": key 'split.count' is " + (cnt ? std::to_string(*cnt) : "missing") +
                  ", expected " + std::to_string(count) + " like the first shard");
    for (TensorRef& t : shards[i].header.tensors) tensors.push_back(std::move(t));
  }
  if (int64_t(tensors.size()) != total)
    throw Error(paths[0] + ": key 'split.tensors.count' is " + std::to_string(total) +
                " but the " + std::to_string(count) + " shards hold " +
                std::to_string(tensors.size()) + " tensors");
  std::unordered_map<std::string_view, size_t> where;
  for (size_t k = 0; k < tensors.size(); ++k) {
    auto [it, fresh] = where.emplace(tensors[k].name, k);
    if (!fresh)
      throw Error(tensors[k].file + ": tensor '" + tensors[k].name + "' is also in " +
                  tensors[it->second].file + " (duplicate across shards)");
  }
  model->mutable_metadata() = std::move(shards[0].header.metadata);
  for (auto& s : shards) model->add_mapping(std::move(s.map));
  model->finish();
  return model;
}

}  // namespace hexe

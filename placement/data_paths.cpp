// Locating shipped profile data next to the executable or in the configured source tree.
#include "placement/data_paths.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "memory/error.h"

namespace fs = std::filesystem;

namespace hexe::place {

std::vector<std::string> data_roots() {
  std::vector<std::string> roots;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  auto add = [&](const fs::path& p) {
    if (fs::is_directory(p / "profiles", ec)) {
      std::string s = fs::weakly_canonical(p, ec).string();
      if (std::find(roots.begin(), roots.end(), s) == roots.end()) roots.push_back(s);
    }
  };
  if (!exe.empty()) {
    add(exe.parent_path().parent_path());
    add(exe.parent_path());
  }
#ifdef HEXE_DATA_SOURCE_DIR
  add(fs::path(HEXE_DATA_SOURCE_DIR));
#endif
  return roots;
}

std::vector<std::string> list_data_names(const std::string& subdir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& root : data_roots()) {
    for (const auto& e : fs::directory_iterator(fs::path(root) / subdir, ec)) {
      if (e.path().extension() == ".json") names.insert(e.path().stem().string());
    }
  }
  return {names.begin(), names.end()};
}

std::string resolve_data_file(const std::string& name_or_path, const std::string& subdir) {
  std::error_code ec;
  if (fs::is_regular_file(name_or_path, ec)) return name_or_path;
  std::string tried;
  for (const auto& root : data_roots()) {
    fs::path p = fs::path(root) / subdir / (name_or_path + ".json");
    if (fs::is_regular_file(p, ec)) return p.string();
    tried.append(" ").append(p.string());  // not `" " + p.string()`: GCC 12 -Wrestrict false positive
  }
  std::string names;
  for (const auto& n : list_data_names(subdir)) names.append(" ").append(n);
  throw Error("'" + name_or_path + "' is neither a file nor a name under " + subdir +
              " (tried:" + (tried.empty() ? std::string(" no data directory found") : tried) +
              "); known names:" + (names.empty() ? std::string(" none") : names));
}

}  // namespace hexe::place

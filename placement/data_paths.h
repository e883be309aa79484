// Where shipped data (profiles/hardware, profiles/models) is found: next to the executable, then
// in the source tree the build was configured from.
#pragma once

#include <string>
#include <vector>

namespace hexe::place {

// Directories searched for "profiles/...", in order: <exe dir>/.., <exe dir>, the configured
// source dir. Only existing ones are returned.
std::vector<std::string> data_roots();

// Resolves a name to <root>/<subdir>/<name>.json, or returns name_or_path itself when it names
// an existing file. Throws hexe::Error listing what was tried and the available names.
std::string resolve_data_file(const std::string& name_or_path, const std::string& subdir);

// Names (file stems) of the *.json files under <root>/<subdir> for every root.
std::vector<std::string> list_data_names(const std::string& subdir);

}  // namespace hexe::place

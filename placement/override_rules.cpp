// Parsing and applying user placement rules (regex on tensor names -> device).
#include "placement/override_rules.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/error.h"

namespace hexe::place {

std::optional<Device> device_from_name(const std::string& s) {
  if (s == "cpu" || s == "CPU") return Device::Cpu;
  if (s == "gpu" || s == "GPU" || s == "cuda" || s == "CUDA" || s == "cuda0" || s == "CUDA0") return Device::Gpu;
  return std::nullopt;
}

void OverrideRules::add(const std::string& pattern, const std::string& device, const std::string& origin) {
  auto d = device_from_name(device);
  if (!d) throw Error(origin + ": device '" + device + "' is not cpu or gpu");
  if (pattern.empty()) throw Error(origin + ": empty pattern");
  OverrideRule r;
  r.pattern = pattern;
  r.device = *d;
  try {
    r.re = std::regex(pattern, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    throw Error(origin + ": pattern '" + pattern + "' is not a valid regex: " + e.what());
  }
  rules_.push_back(std::move(r));
}

void OverrideRules::add(const std::string& rule_text) {
  const auto eq = rule_text.rfind('=');
  if (eq == std::string::npos)
    throw Error("--override '" + rule_text + "': expected REGEX=cpu|gpu");
  add(rule_text.substr(0, eq), rule_text.substr(eq + 1), "--override '" + rule_text + "'");
}

void OverrideRules::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open rules file " + path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error("rules file " + path + ": " + e.what());
  }
  if (!j.contains("rules") || !j.at("rules").is_array()) throw Error("rules file " + path + ": expected {\"rules\": [...]}");
  int i = 0;
  for (const auto& r : j.at("rules")) {
    const std::string where = path + " rule " + std::to_string(i++);
    if (!r.contains("match") || !r.contains("device") || !r.at("match").is_string() || !r.at("device").is_string())
      throw Error(where + ": needs string fields 'match' and 'device'");
    add(r.at("match").get<std::string>(), r.at("device").get<std::string>(), where);
  }
}

const OverrideRule* OverrideRules::match(const std::string& name) const {
  for (const auto& r : rules_)
    if (std::regex_search(name, r.re)) return &r;
  return nullptr;
}

int OverrideRules::apply(std::vector<TensorPlacement>& tensors) const {
  int moved = 0;
  for (auto& t : tensors) {
    const OverrideRule* r = match(t.name);
    if (!r) continue;
    t.rule = r->pattern + "=" + device_name(r->device);
    if (t.device != r->device) ++moved;
    t.device = r->device;
    if (r->device == Device::Cpu) t.gpu_experts = 0;
  }
  return moved;
}

}  // namespace hexe::place

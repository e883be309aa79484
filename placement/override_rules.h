// User placement rules: a regex on tensor names -> device, as llama.cpp's `-ot REGEX=DEVICE`
// and KTransformers' YAML rules. Rules override any strategy; the first matching rule wins.
//
// Rules file (JSON): {"rules": [{"match": "blk\\.[0-9]+\\.ffn_.*_exps", "device": "cpu"}, ...]}
#pragma once

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "placement/plan.h"

namespace hexe::place {

struct OverrideRule {
  std::string pattern;   // ECMAScript regex, searched anywhere in the name (like llama.cpp -ot)
  Device device = Device::Cpu;
  std::regex re;
};

class OverrideRules {
 public:
  // "REGEX=cpu|gpu" (the last '=' splits, so the regex may contain '='). Throws hexe::Error
  // naming the rule when the device is unknown or the regex does not compile.
  void add(const std::string& rule_text);
  void add(const std::string& pattern, const std::string& device, const std::string& origin);
  // {"rules": [{"match": ..., "device": ...}]}
  void load_file(const std::string& path);

  bool empty() const { return rules_.empty(); }
  size_t size() const { return rules_.size(); }
  // The first rule matching `name`, or nullptr.
  const OverrideRule* match(const std::string& name) const;
  // Moves every matching tensor of the plan; returns how many moved.
  int apply(std::vector<TensorPlacement>& tensors) const;

 private:
  std::vector<OverrideRule> rules_;
};

std::optional<Device> device_from_name(const std::string& s);

}  // namespace hexe::place

// What `hexe inspect` prints about a model: shapes, parameters, bytes, KV cache, tokenizer.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "placement/model_spec.h"
#include "runtime/model/model_file.h"

namespace hexe {

struct ReportOptions {
  bool tensors = false;  // add the tensor table (name, type, shape, bytes, role)
  int64_t context = 0;   // KV-cache figure at this many tokens; 0: the training context
};

// Human-readable report (GiB, M/B params), one figure per line.
std::string model_report_text(const ModelFile& model, const place::ModelSpec& spec,
                              const ReportOptions& o);
// The same figures as JSON (bytes and counts as integers).
nlohmann::json model_report_json(const ModelFile& model, const place::ModelSpec& spec,
                                 const ReportOptions& o);

// "30.53 B", "590.1 M", "12.0 K", "7".
std::string format_count(uint64_t n);

}  // namespace hexe

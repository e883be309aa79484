// Streaming quantiser: plans each output tensor's type, then dequantises/quantises chunk by chunk.
#include "runtime/model/quantize.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <thread>

#include "cpu_kernels/quant.h"
#include "cpu_kernels/thread_pool.h"
#include "memory/error.h"
#include "placement/quant_recipe.h"
#include "runtime/model/convert.h"
#include "runtime/model/gguf_writer.h"
#include "runtime/model/load_progress.h"
#include "runtime/model/spec_builder.h"

namespace hexe {
namespace {

struct TargetRow {
  const char* name;
  uint32_t file_type;  // llama_ftype
  bool mix;
  DType base;
};
// Plain types put every matrix in `base`; mixes defer to placement/quant_recipe.h.
constexpr TargetRow kTargets[] = {
    {"F32", 0, false, DType::F32},     {"F16", 1, false, DType::F16},
    {"BF16", 32, false, DType::BF16},  {"Q8_0", 7, true, DType::Q8_0},
    {"Q4_0", 2, true, DType::Q4_0},    {"Q4_K", 14, false, DType::Q4_K},
    {"Q5_K", 16, false, DType::Q5_K},  {"Q6_K", 18, true, DType::Q6_K},
    {"Q4_K_M", 15, true, DType::Q4_K}, {"Q5_K_M", 17, true, DType::Q5_K},
};

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool keep_f32(const std::string& name, const std::vector<int64_t>& ne) {
  if (ne.size() < 2) return true;
  TensorClass c = classify_tensor(name);
  return c.role == place::TensorRole::Router || c.role == place::TensorRole::RouterBias ||
         name.find("norm") != std::string::npos;
}

// Release a tensor's source pages once it is done (the mapping is read-only and file-backed,
// so MADV_DONTNEED only drops clean page-cache references from this process's RSS). Never on
// memory the model computed (MADV_DONTNEED would zero it, and the page rounding reaches past it).
void release_range(const TensorRef& t, const uint8_t* data, uint64_t bytes) {
  if (!t.file_backed) return;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t b = reinterpret_cast<uintptr_t>(data) / page * page;
  uintptr_t e = reinterpret_cast<uintptr_t>(data) + bytes;
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}
void release_pages(const TensorRef& t) { release_range(t, t.data, t.bytes); }

// Rows [r0, r0 + n) of an unpermuted output tensor, released part by part as soon as they are
// written, so a multi-GB expert stack never sits in RSS whole.
void release_rows(const OutTensor& o, int64_t r0, int64_t n) {
  const int64_t per = o.rows_per_part();
  for (int64_t r = r0; r < r0 + n;) {
    const TensorRef* p = o.parts[size_t(r / per)];
    const int64_t a = r % per, b = std::min(per, a + (r0 + n - r));
    release_range(*p, p->data + uint64_t(a) * p->row_bytes(), uint64_t(b - a) * p->row_bytes());
    r += b - a;
  }
}

class Progress {
 public:
  Progress(uint64_t total, bool enabled) : total_(total), on_(enabled && isatty(2)) {}
  ~Progress() {
    if (on_) std::fprintf(stderr, "\r%*s\r", 100, "");
  }
  void advance(uint64_t n, const std::string& what) {
    done_ += n;
    if (!on_) return;
    const int width = 30;
    double f = total_ ? double(done_) / double(total_) : 1.0;
    int fill = int(f * width);
    std::fprintf(stderr, "\r[%s%s] %3d%% %-48.48s", std::string(size_t(fill), '#').c_str(),
                 std::string(size_t(width - fill), '.').c_str(), int(f * 100), what.c_str());
    std::fflush(stderr);
  }

 private:
  uint64_t total_, done_ = 0;
  bool on_;
};

}  // namespace

QuantTarget parse_quant_target(const std::string& name) {
  const std::string u = upper(name);
  for (const auto& t : kTargets)
    if (u == t.name) return {t.name, t.file_type, t.mix, t.base};
  std::string list;
  for (const auto& n : quant_target_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("quantization type '" + name + "' is unknown; expected one of: " + list);
}

std::vector<std::string> quant_target_names() {
  std::vector<std::string> v;
  for (const auto& t : kTargets) v.push_back(t.name);
  return v;
}

DType plain_tensor_type(DType base, const std::string& name, const std::vector<int64_t>& ne) {
  if (keep_f32(name, ne)) return DType::F32;
  DType t = base;
  const int64_t n = ne[0];
  if (is_quantized(t) && n % int64_t(info(t).block_elems) != 0) {
    // llama.cpp's fallbacks for rows that do not hold whole 256-element K-quant blocks.
    if (t == DType::Q4_K) t = DType::Q5_0;
    else if (t == DType::Q5_K) t = DType::Q5_1;
    else if (t == DType::Q6_K) t = DType::Q8_0;
    if (is_quantized(t) && n % int64_t(info(t).block_elems) != 0) t = DType::F16;
  }
  return t;
}

namespace {

std::vector<DType> plan_types(const ModelFile& src, const std::vector<OutTensor>& outs,
                              const QuantTarget& target) {
  std::vector<DType> types;
  if (!target.mix) {
    for (const auto& o : outs) types.push_back(plain_tensor_type(target.base, o.name, o.ne));
    return types;
  }
  const auto recipe = place::recipe_from_name(target.name);
  if (!recipe) throw Error("no quantization recipe named '" + target.name + "'");
  place::RecipeModel rm;
  const Metadata& md = src.metadata();
  const std::string arch = md.get_string("general.architecture").value_or("");
  rm.n_layers = int(md.get_int(arch + ".block_count").value_or(0));
  rm.n_expert = int(md.get_int(arch + ".expert_count").value_or(0));
  rm.tied_embeddings = true;
  for (const auto& o : outs)
    if (o.name == "output.weight") rm.tied_embeddings = false;
  for (const auto& o : outs) {
    place::TensorSpec t;
    t.name = o.name;
    t.ne = o.ne;
    TensorClass c = classify_tensor(o.name);
    t.role = c.role;
    t.layer = c.layer;
    t.experts = o.ne.size() == 3 ? int(o.ne[2]) : 1;
    DType ty = place::recipe_type(*recipe, t, rm);
    if (keep_f32(o.name, o.ne)) ty = DType::F32;
    types.push_back(ty);
  }
  return types;
}

}  // namespace

QuantizeResult quantize_model(const ModelFile& src, const std::string& out_path,
                              const QuantTarget& target, const QuantizeOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<OutTensor> outs = plan_output_tensors(src);
  const std::vector<DType> types = plan_types(src, outs, target);
  for (const auto& o : outs)
    for (const TensorRef* p : o.parts)
      if (!info(p->type).computable && p->fp8.data == nullptr)
        throw Error(p->file + ": tensor '" + p->name + "' is " + std::string(dtype_name(p->type)) +
                    ", which hexe cannot dequantise (expected f32/f16/bf16/q4_0..q8_0/q4_K..q6_K)");

  if (outs.empty()) throw Error(src.path() + ": the model has no tensors");
  GgufWriter writer(out_path);
  writer.metadata() = output_metadata(src, target.file_type);
  QuantizeResult res;
  for (size_t i = 0; i < outs.size(); ++i) {
    writer.add_tensor(outs[i].name, types[i], outs[i].ne);
    QuantizedTensor q;
    q.name = outs[i].name;
    q.ne = outs[i].ne;
    q.from = outs[i].source_type();
    q.to = types[i];
    q.bytes = writer.tensor_bytes(i);
    for (const TensorRef* p : outs[i].parts) res.source_bytes += p->bytes;
    res.tensors.push_back(std::move(q));
  }
  writer.write_header();
  // The writer pads the data section to its alignment (32) after the last tensor too.
  const uint64_t file_bytes =
      (writer.tensor_file_offset(outs.size() - 1) + writer.tensor_bytes(outs.size() - 1) + 31) /
      32 * 32;
  if (opt.dry_run) {
    // The header went to "<out>.partial", which the writer removes when it is destroyed unfinished.
    res.file_bytes = file_bytes;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
  }

  const int n_threads = opt.threads > 0 ? opt.threads
                                        : int(std::max(1u, std::thread::hardware_concurrency()));
  cpu::ThreadPool pool(n_threads);
  uint64_t total_rows = 0;
  for (const auto& o : outs) total_rows += uint64_t(o.rows()) * uint64_t(o.ne[0]);
  Progress bar(total_rows, opt.progress);
  std::vector<float> f32;
  std::vector<uint8_t> qbuf;
  std::vector<double> err(static_cast<size_t>(n_threads)), ref(static_cast<size_t>(n_threads));
  std::vector<std::vector<float>> back(static_cast<size_t>(n_threads));

  for (size_t i = 0; i < outs.size(); ++i) {
    const OutTensor& o = outs[i];
    const DType to = types[i];
    QuantizedTensor& q = res.tensors[i];
    const int64_t n = o.ne[0], rows = o.rows();
    const std::string label = o.name + " -> " + std::string(dtype_name(to));
    if (to == o.source_type() && o.plain() && !opt.verbose) {
      // Same type, same row order: the bytes are the answer (no requantisation loss).
      constexpr uint64_t kCopyChunk = uint64_t(64) << 20;
      for (const TensorRef* p : o.parts)
        for (uint64_t off = 0; off < p->bytes; off += kCopyChunk) {
          const uint64_t len = std::min(kCopyChunk, p->bytes - off);
          writer.write_tensor_data(p->data + off, len);
          release_range(*p, p->data + off, len);
        }
      bar.advance(uint64_t(rows) * uint64_t(n), label);
      continue;
    }
    const uint64_t out_row = row_bytes(to, uint64_t(n));
    // About 4M floats (16 MiB) per chunk, whole rows.
    const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 22) / n);
    f32.resize(size_t(std::min(chunk, rows) * n));
    qbuf.resize(size_t(std::min(chunk, rows)) * out_row);
    std::fill(err.begin(), err.end(), 0.0);
    std::fill(ref.begin(), ref.end(), 0.0);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t nr = std::min(chunk, rows - r0);
      pool.run([&](int ith, int nth) {
        const int64_t b = nr * ith / nth, e = nr * (ith + 1) / nth;
        if (b == e) return;
        float* x = f32.data() + b * n;
        read_rows_f32(o, r0 + b, e - b, x);
        for (int64_t r = b; r < e; ++r)
          cpu::quantize_row(to, f32.data() + r * n, qbuf.data() + uint64_t(r) * out_row, n);
        if (opt.verbose) {
          auto& y = back[size_t(ith)];
          y.resize(size_t(n));
          double se = 0, sr = 0;
          for (int64_t r = b; r < e; ++r) {
            cpu::dequantize_row(to, qbuf.data() + uint64_t(r) * out_row, y.data(), n);
            const float* s = f32.data() + r * n;
            for (int64_t k = 0; k < n; ++k) {
              const double d = double(y[size_t(k)]) - double(s[k]);
              se += d * d;
              sr += double(s[k]) * double(s[k]);
            }
          }
          err[size_t(ith)] += se;
          ref[size_t(ith)] += sr;
        }
      });
      writer.write_tensor_data(qbuf.data(), uint64_t(nr) * out_row);
      if (o.plain()) release_rows(o, r0, nr);
      bar.advance(uint64_t(nr) * uint64_t(n), label);
    }
    for (const TensorRef* p : o.parts) release_pages(*p);
    if (opt.verbose) {
      double se = 0, sr = 0;
      for (int t = 0; t < n_threads; ++t) se += err[size_t(t)], sr += ref[size_t(t)];
      const double count = double(rows) * double(n);
      q.rmse = std::sqrt(se / count);
      q.source_rms = std::sqrt(sr / count);
    }
  }
  // The buffers can be large for wide tensors; give them back before the final flush.
  std::vector<float>().swap(f32);
  std::vector<uint8_t>().swap(qbuf);
  writer.finish();
  res.file_bytes = file_bytes;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

std::string format_quantize_report(const QuantizeResult& r, bool verbose) {
  std::string s;
  char line[512];
  if (verbose) {
    s += "tensor                                   shape                 from   to      rmse      rel\n";
    for (const auto& t : r.tensors) {
      std::string shape;
      for (size_t k = 0; k < t.ne.size(); ++k) shape += (k ? " x " : "") + std::to_string(t.ne[k]);
      if (t.rmse >= 0)
        std::snprintf(line, sizeof line, "%-40s %-21s %-6s %-6s %9.3e %8.5f\n", t.name.c_str(),
                      shape.c_str(), std::string(dtype_name(t.from)).c_str(),
                      std::string(dtype_name(t.to)).c_str(), t.rmse,
                      t.source_rms > 0 ? t.rmse / t.source_rms : 0.0);
      else
        std::snprintf(line, sizeof line, "%-40s %-21s %-6s %-6s %9s %8s\n", t.name.c_str(),
                      shape.c_str(), std::string(dtype_name(t.from)).c_str(),
                      std::string(dtype_name(t.to)).c_str(), "-", "-");
      s += line;
    }
  }
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  for (const auto& t : r.tensors) {
    auto& e = by_type[std::string(dtype_name(t.to))];
    e.first += 1;
    e.second += t.bytes;
  }
  for (const auto& [name, e] : by_type) {
    std::snprintf(line, sizeof line, "  %-6s %5d tensors %12s\n", name.c_str(), e.first,
                  format_bytes(e.second).c_str());
    s += line;
  }
  std::snprintf(line, sizeof line, "  source tensor data %s -> file %s (%.2f%%)\n",
                format_bytes(r.source_bytes).c_str(), format_bytes(r.file_bytes).c_str(),
                r.source_bytes ? 100.0 * double(r.file_bytes) / double(r.source_bytes) : 0.0);
  s += line;
  return s;
}

}  // namespace hexe

// Block-FP8 decoding: the float product of each FP8 value and its block's scale_inv.
#include "runtime/model/fp8_blocks.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "cpu_kernels/quant.h"
#include "memory/error.h"
#include "runtime/model/mapped_model.h"

namespace hexe {
namespace {

std::string hf_shape(const std::vector<int64_t>& ne) {  // GGUF order -> HF shape, for messages
  std::string r = "[";
  for (size_t i = ne.size(); i-- > 0;) r += std::to_string(ne[i]) + (i ? ", " : "");
  return r + "]";
}

struct Lut {
  float v[256];
  Lut() {
    for (int i = 0; i < 256; ++i) v[i] = f8_e4m3_to_float(uint8_t(i));
  }
};

}  // namespace

float f8_e4m3_to_float(uint8_t v) {
  const int exp = (v >> 3) & 0xF, man = v & 0x7;
  const float sign = (v & 0x80) ? -1.f : 1.f;
  if (exp == 0xF && man == 0x7) return std::nanf("");
  if (exp == 0) return sign * std::ldexp(float(man), -9);  // subnormal: man / 8 * 2^-6
  return sign * std::ldexp(float(8 + man), exp - 10);      // (1 + man / 8) * 2^(exp - 7)
}

Fp8BlockSize fp8_block_size(const nlohmann::json& config, const std::string& source) {
  Fp8BlockSize b;
  auto qc = config.is_object() ? config.find("quantization_config") : config.end();
  if (qc == config.end() || !qc->is_object()) return b;
  const std::string where = source + ": quantization_config";
  auto method = qc->find("quant_method");
  if (method != qc->end() && (!method->is_string() || *method != "fp8"))
    throw Error(where + ".quant_method is " + method->dump() +
                ", hexe reads only \"fp8\" (block float8_e4m3fn) checkpoints");
  auto fmt = qc->find("fmt");
  if (fmt != qc->end() && (!fmt->is_string() || *fmt != "e4m3"))
    throw Error(where + ".fmt is " + fmt->dump() + ", expected \"e4m3\"");
  auto bs = qc->find("weight_block_size");
  if (bs == qc->end() || bs->is_null()) return b;
  if (!bs->is_array() || bs->size() != 2 || !(*bs)[0].is_number_integer() || !(*bs)[1].is_number_integer() ||
      (*bs)[0].get<int64_t>() < 1 || (*bs)[1].get<int64_t>() < 1)
    throw Error(where + ".weight_block_size is " + bs->dump() + ", expected [rows, cols] >= 1");
  b.rows = (*bs)[0].get<int64_t>();
  b.cols = (*bs)[1].get<int64_t>();
  return b;
}

Fp8Scales fp8_scales(const TensorRef& w, const TensorRef& s, Fp8BlockSize block) {
  auto fail = [&](const std::string& what) {
    throw Error(w.file + ": FP8 tensor '" + w.name + "' with scales '" + s.name + "': " + what);
  };
  if (w.ne.size() < 2) fail("the weight has shape " + hf_shape(w.ne) + ", expected >= 2 dimensions");
  const int64_t C = w.ne[0], R = w.ne[1];
  std::vector<int64_t> want = {(C + block.cols - 1) / block.cols, (R + block.rows - 1) / block.rows};
  want.insert(want.end(), w.ne.begin() + 2, w.ne.end());
  std::vector<int64_t> got = s.ne;
  if (got.size() == 1 && want.size() == 2) got.push_back(1);  // [n] for a one-block-row weight
  if (got != want)
    fail("scale shape " + hf_shape(s.ne) + ", expected " + hf_shape(want) + " for weight " + hf_shape(w.ne) +
         " in " + std::to_string(block.rows) + " x " + std::to_string(block.cols) + " blocks");
  if (s.type != DType::F32 && s.type != DType::BF16 && s.type != DType::F16)
    fail("scales of type " + std::string(info(s.type).name) + ", expected F32, BF16 or F16");
  return {s.data, s.type, block.rows, block.cols};
}

void dequantize_fp8_rows(const TensorRef& w, int64_t row0, int64_t n_rows, float* out) {
  static const Lut lut;
  const Fp8Scales& f = w.fp8;
  const int64_t C = w.ne[0], R = w.ne[1];
  const int64_t bc = (C + f.block_cols - 1) / f.block_cols, br = (R + f.block_rows - 1) / f.block_rows;
  const uint64_t scale_bytes = row_bytes(f.type, uint64_t(bc));
  std::vector<float> srow(static_cast<size_t>(bc));
  int64_t cached = -1;
  for (int64_t r = row0; r < row0 + n_rows; ++r) {
    const int64_t block_row = (r / R) * br + (r % R) / f.block_rows;  // matrix r / R, its block row
    if (block_row != cached) {
      cpu::dequantize_row(f.type, f.data + uint64_t(block_row) * scale_bytes, srow.data(), bc);
      cached = block_row;
    }
    const uint8_t* src = w.data + uint64_t(r) * uint64_t(C);
    float* dst = out + (r - row0) * C;
    for (int64_t c = 0; c < C; ++c) dst[c] = lut.v[src[c]] * srow[size_t(c / f.block_cols)];
  }
}

void materialise_fp8(MappedModel& model) {
  for (TensorRef& t : model.mutable_tensors()) {
    if (t.fp8.data == nullptr) continue;
    float* out = model.add_buffer(size_t(t.n_elements()));
    dequantize_fp8_rows(t, 0, t.rows(), out);
    t.type = DType::F32;
    t.data = reinterpret_cast<const uint8_t*>(out);
    t.bytes = uint64_t(t.n_elements()) * sizeof(float);
    t.file_backed = false;
    t.fp8 = {};
  }
}

}  // namespace hexe

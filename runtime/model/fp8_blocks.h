// Block-FP8 HF checkpoints (DeepSeek-V3/R1, Qwen3 "-FP8"): float8_e4m3fn weights, each block of
// block_rows x block_cols values scaled by one float in the companion "<name>_scale_inv" tensor.
// The reader keeps them as they are on disk (TensorRef::fp8); converting and quantising decode
// them row by row (streamed like any source type); the engine decodes them once at load.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "runtime/model/model_file.h"

namespace hexe {

class MappedModel;

// float8_e4m3fn (1 sign, 4 exponent bits biased by 7, 3 mantissa bits; no infinities, S.1111.111
// is NaN) as float; exact.
float f8_e4m3_to_float(uint8_t v);

struct Fp8BlockSize {
  int64_t rows = 128;
  int64_t cols = 128;
};

// config.json's quantization_config for block FP8: {"quant_method": "fp8", "fmt": "e4m3",
// "weight_block_size": [rows, cols], ...}. Absent: 128 x 128 (DeepSeek's). Throws hexe::Error
// naming `source` for another quant_method or format, or a malformed block size.
Fp8BlockSize fp8_block_size(const nlohmann::json& config, const std::string& source);

// The Fp8Scales of FP8 weight `w` (raw bytes, DType::I8, >= 2 dims; HF [.., R, C]) from its
// scale tensor: F32, BF16 or F16 of HF shape [.., ceil(R / rows), ceil(C / cols)] (the last
// block of a row or column may be partial). Another shape or type throws naming both tensors.
Fp8Scales fp8_scales(const TensorRef& w, const TensorRef& scale_inv, Fp8BlockSize block);

// Rows [row0, row0 + n_rows) of FP8 tensor `w` (rows over all dims but ne[0], as TensorRef::rows)
// as float: out[r][c] = f8(w[r][c]) * scale[r / block_rows][c / block_cols], one float multiply,
// as DeepSeek's fp8_cast_bf16.py computes it before its bfloat16 store (we keep the float).
void dequantize_fp8_rows(const TensorRef& w, int64_t row0, int64_t n_rows, float* out);

// Replaces every FP8 tensor of `model` by its float32 values, in memory the model owns (the
// engine computes on them; n_elements x 4 bytes each).
void materialise_fp8(MappedModel& model);

}  // namespace hexe

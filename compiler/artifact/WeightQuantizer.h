// Compile-time weight quantization: scheme names -> encodings, and parallel quantization of a
// weight (all experts) into codes + scales (+ zero points).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "artifact_generated.h"

namespace mlir::ds {

struct QuantEncoding {
  ::ds::fb::QuantKind kind = ::ds::fb::QuantKind_None;
  ::ds::fb::DType dtype = ::ds::fb::DType_F32;  // storage of the codes
  int64_t group_size = 0;                         // int4 / int6 only
  bool asymmetric = false;
};

// "int8", "fp8", "int4_g64", "int4_g128", "int4_g64_asym", "int4_g128_asym", "int6_g64",
// "int6_g128" (the output layer / embedding only: the pass allows it there).
std::optional<QuantEncoding> parseQuantScheme(const std::string& scheme);

// Group scales (int4 / int6) rather than one scale per row (int8, FP8).
bool isGroupQuant(const QuantEncoding& e);
// Bytes of one row of `cols` codes (int4: two per byte; int6: four per three bytes, rows padded).
int64_t codeRowBytes(const QuantEncoding& e, int64_t cols);

struct QuantizedWeight {
  std::vector<uint8_t> codes;
  std::vector<float> scales;  // [experts * rows] or [experts * rows * groups]
  std::vector<float> zeros;   // asymmetric int4 only
};

// `w` holds experts x rows x cols f32 values. Rows are split across threads; every row's
// result depends on that row only, so the output is the same for any thread count.
// int8: round to nearest. int4 / int6 / FP8: per-group / per-row scale search (the least squared
// error over a candidate grid, kernels/cpu/quantize.h). With `hessian` ([cols x cols] E[x x^T] of
// the weight's inputs, from --quant-calib; used for every expert) int4 codes are then chosen by
// GPTQ error feedback and the scales refitted; int8 and FP8 ignore it.
// `threads` < 1: quantThreads().
bool quantizeWeight(const QuantEncoding& e, const float* w, int64_t experts, int64_t rows,
                    int64_t cols, QuantizedWeight* out, const double* hessian = nullptr,
                    int threads = 0);

// Threads for quantizeWeight: $DS_QUANT_THREADS if set (>= 1), else the hardware threads. The
// output never depends on it (tested).
int quantThreads();

}  // namespace mlir::ds

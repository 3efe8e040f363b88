// GPTQ error feedback for int4 group codes (Frantar et al., 2022): quantizes a row's columns in
// order of decreasing input energy and spreads each rounding error over the columns not yet
// quantized, using the calibration Hessian.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace mlir::ds {

// What one weight's rows share: the column order and the upper Cholesky factor of the inverse
// of the damped Hessian (in that order), plus the undamped Hessian for the scale refit.
struct GptqPlan {
  int64_t cols = 0;
  std::vector<int64_t> perm;  // columns by decreasing H[c, c] (stable: ties keep index order)
  std::vector<double> U;      // [cols x cols], row jj holds the update for column perm[jj]
  const double* H = nullptr;  // [cols x cols] as given (original column order)
};

// `H` (cols x cols, symmetric, positive semi-definite) must outlive the plan. The diagonal is
// damped by `damp` times its mean (zero columns get 1). nullopt when the damped matrix is still
// not positive definite (the caller then keeps the round-to-nearest codes).
std::optional<GptqPlan> makeGptqPlan(const double* H, int64_t cols, double damp = 0.05);

// Re-quantizes one int4 row with error feedback. `scales` / `zeros` ([ceil(cols / group_size)])
// hold the per-group choice made on the original row (zeros null when symmetric); codes are
// written to `packed` (ceil(cols / 2) bytes, the I4 layout). Afterwards each group's scale is
// refitted by least squares in the H-weighted norm (codes fixed) when that lowers the error.
void gptqInt4Row(const GptqPlan& plan, const float* w, int64_t group_size, bool asymmetric,
                 float* scales, const float* zeros, uint8_t* packed);

}  // namespace mlir::ds

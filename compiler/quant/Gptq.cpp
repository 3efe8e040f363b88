// GPTQ for int4 group codes: Cholesky-based plan per weight, error feedback per row.
#include "compiler/quant/Gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cpu/quantize.h"

namespace mlir::ds {

namespace {

// In-place lower Cholesky factor of the n x n matrix A (row-major); false if not positive definite.
bool cholesky(std::vector<double>& A, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = A[j * n + j];
    for (int64_t k = 0; k < j; ++k) d -= A[j * n + k] * A[j * n + k];
    if (!(d > 0) || !std::isfinite(d)) return false;
    d = std::sqrt(d);
    A[j * n + j] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = A[i * n + j];
      for (int64_t k = 0; k < j; ++k) s -= A[i * n + k] * A[j * n + k];
      A[i * n + j] = s / d;
    }
    for (int64_t k = j + 1; k < n; ++k) A[j * n + k] = 0;
  }
  return true;
}

}  // namespace

std::optional<GptqPlan> makeGptqPlan(const double* H, int64_t cols, double damp) {
  const int64_t n = cols;
  GptqPlan plan;
  plan.cols = n;
  plan.H = H;
  plan.perm.resize(n);
  std::iota(plan.perm.begin(), plan.perm.end(), 0);
  std::stable_sort(plan.perm.begin(), plan.perm.end(),
                   [&](int64_t a, int64_t b) { return H[a * n + a] > H[b * n + b]; });
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += H[i * n + i];
  mean /= std::max<int64_t>(1, n);
  // Permuted, damped Hessian; a column no calibration token reached gets a unit diagonal.
  std::vector<double> A(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) A[i * n + j] = H[plan.perm[i] * n + plan.perm[j]];
  for (int64_t i = 0; i < n; ++i) {
    if (A[i * n + i] == 0) A[i * n + i] = 1;
    A[i * n + i] += damp * mean;
  }
  // H^-1 = L^-T L^-1, then U = chol(H^-1)^T (upper).
  if (!cholesky(A, n)) return std::nullopt;
  std::vector<double> Linv(n * n, 0.0);
  for (int64_t j = 0; j < n; ++j) {
    Linv[j * n + j] = 1.0 / A[j * n + j];
    for (int64_t i = j + 1; i < n; ++i) {
      double s = 0;
      for (int64_t k = j; k < i; ++k) s -= A[i * n + k] * Linv[k * n + j];
      Linv[i * n + j] = s / A[i * n + i];
    }
  }
  std::vector<double> Hinv(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = i; k < n; ++k) s += Linv[k * n + i] * Linv[k * n + j];
      Hinv[i * n + j] = Hinv[j * n + i] = s;
    }
  if (!cholesky(Hinv, n)) return std::nullopt;
  plan.U.assign(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) plan.U[i * n + j] = Hinv[j * n + i];
  return plan;
}

void gptqInt4Row(const GptqPlan& plan, const float* w, int64_t group_size, bool asymmetric,
                 float* scales, const float* zeros, uint8_t* packed) {
  const int64_t n = plan.cols, G = ::ds::cpu::int4Groups(n, group_size);
  std::vector<double> x(n);
  for (int64_t jj = 0; jj < n; ++jj) x[jj] = w[plan.perm[jj]];
  std::vector<float> v(n);  // decoded value without the scale: q, or q - zero
  std::fill(packed, packed + (n + 1) / 2, uint8_t{0});
  for (int64_t jj = 0; jj < n; ++jj) {
    const int64_t c = plan.perm[jj], g = c / group_size;
    const float s = scales[g], z = asymmetric ? zeros[g] : 0.0f;
    const int q = ::ds::cpu::int4Code(static_cast<float>(x[jj]), s, z, asymmetric);
    packed[c / 2] |= static_cast<uint8_t>((q & 0xf) << (4 * (c & 1)));
    v[c] = asymmetric ? static_cast<float>(q) - z : static_cast<float>(q);
    const double err = (x[jj] - double(v[c] * s)) / plan.U[jj * n + jj];
    const double* u = plan.U.data() + jj * n;
    for (int64_t kk = jj + 1; kk < n; ++kk) x[kk] -= err * u[kk];
  }
  // Least-squares scale per group for the fixed codes: s = v'Hw / v'Hv over the group's block.
  for (int64_t g = 0; g < G; ++g) {
    const int64_t c0 = g * group_size, c1 = std::min(n, c0 + group_size);
    double vhw = 0, vhv = 0;
    for (int64_t i = c0; i < c1; ++i)
      for (int64_t j = c0; j < c1; ++j) {
        const double h = plan.H[i * n + j];
        vhw += double(v[i]) * h * w[j];
        vhv += double(v[i]) * h * v[j];
      }
    auto error = [&](float s) {
      double e = 0;
      for (int64_t i = c0; i < c1; ++i)
        for (int64_t j = c0; j < c1; ++j)
          e += (w[i] - double(v[i] * s)) * plan.H[i * n + j] * (w[j] - double(v[j] * s));
      return e;
    };
    if (!(vhv > 0)) continue;
    // Rounded as the scale search stores its scales (f16 values: the CPU device's half-size
    // panel copies need every scale of a weight to be one).
    const float s = ::ds::cpu::groupScaleAsStored(static_cast<float>(vhw / vhv));
    if (s > 0 && std::isfinite(s) && error(s) < error(scales[g])) scales[g] = s;
  }
}

}  // namespace mlir::ds

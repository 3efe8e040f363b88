// planBlasLtGemm: a row-major GEMM as cuBLASLt column-major descriptor values (pure).
#include "hal/cuda/cuda_blaslt_plan.h"

namespace ds::hal::cuda {

namespace {
int64_t elemBytes(int dt) { return dt == DS_CUDA_BF16 ? 2 : 4; }
bool validDtype(int dt) { return dt == DS_CUDA_F32 || dt == DS_CUDA_BF16; }
int blasType(int dt) { return dt == DS_CUDA_BF16 ? CUDA_R_16BF : CUDA_R_32F; }
}  // namespace

uint32_t blasLtAlignment(uint64_t ptr) {
  if (ptr == 0) return 256;
  const uint64_t low = ptr & (~ptr + 1);  // lowest set bit
  return static_cast<uint32_t>(low < 256 ? low : 256);
}

const char* planBlasLtGemm(const GemmDesc& g, BlasLtMatmulPlan* out) {
  *out = BlasLtMatmulPlan{};
  if (!validDtype(g.act_dtype) || !validDtype(g.weight_dtype))
    return "cuBLASLt GEMM: activations and weights must be f32 or bf16";
  if (g.act_dtype != g.weight_dtype)
    return "cuBLASLt GEMM: activations and weights of different dtypes (cuBLASLt wants A and B "
           "of one type)";
  if (g.M < 1 || g.N < 1 || g.K < 1) return "cuBLASLt GEMM: M, N and K must be >= 1";
  if (g.x_stride < g.K || g.w_stride < g.K || g.y_stride < g.N)
    return "cuBLASLt GEMM: a row stride is shorter than the row";
  if (!g.x || !g.w || !g.y) return "cuBLASLt GEMM: x, w and y are required";
  const int64_t eb = elemBytes(g.act_dtype);
  if (g.x % eb || g.w % eb || g.y % (g.y_f32 ? 4 : eb))
    return "cuBLASLt GEMM: x, w or y not aligned to its element";
  if (g.bias && (g.bias_dtype != DS_CUDA_F32 || g.bias % 4))
    return "cuBLASLt GEMM: the bias must be f32 and 4-byte aligned";

  BlasLtMatmulPlan& p = *out;
  const int type = blasType(g.act_dtype);
  p.compute_type = CUBLAS_COMPUTE_32F;
  p.scale_type = CUDA_R_32F;
  p.trans_a = CUBLAS_OP_T;
  p.trans_b = CUBLAS_OP_N;
  p.m = g.N;
  p.n = g.M;
  p.k = g.K;
  // A: W [N, K] row-major = column-major [K, N], ld w_stride; op T.
  p.a = {type, static_cast<uint64_t>(g.K), static_cast<uint64_t>(g.N), g.w_stride, g.w,
         blasLtAlignment(g.w)};
  // B: X [M, K] row-major = column-major [K, M] = X^T, ld x_stride; op N.
  p.b = {type, static_cast<uint64_t>(g.K), static_cast<uint64_t>(g.M), g.x_stride, g.x,
         blasLtAlignment(g.x)};
  // D (and C): Y [M, N] row-major = column-major [N, M] = Y^T, ld y_stride.
  // bf16 A/B with an f32 D is one of cuBLASLt's CUBLAS_COMPUTE_32F combinations (logits).
  p.d = {g.y_f32 ? CUDA_R_32F : type, static_cast<uint64_t>(g.N), static_cast<uint64_t>(g.M),
         g.y_stride, g.y, blasLtAlignment(g.y)};
  if (g.bias) {
    p.epilogue = CUBLASLT_EPILOGUE_BIAS;  // bias[i] added to row i of D = column i of Y
    p.bias_type = CUDA_R_32F;
    p.bias = g.bias;
    p.bias_align = blasLtAlignment(g.bias);
  }
  p.alpha = 1.0f;
  p.beta = 0.0f;
  return nullptr;
}

BlasLtShapeKey blasLtShapeKey(const BlasLtMatmulPlan& p) {
  return {p.compute_type, p.scale_type, p.trans_a, p.trans_b, p.m, p.n, p.k,
          p.a.type, p.a.ld, p.a.align,
          p.b.type, p.b.ld, p.b.align,
          p.d.type, p.d.ld, p.d.align,
          p.epilogue, p.bias_type, p.bias_align,
          static_cast<int64_t>(p.a.rows), static_cast<int64_t>(p.a.cols),
          static_cast<int64_t>(p.b.cols), static_cast<int64_t>(p.d.rows), 0};
}

}  // namespace ds::hal::cuda

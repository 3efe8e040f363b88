// One GEMM of a launch as cuBLASLt sees it (docs/cuda.md "cuBLASLt"): the row-major description
// the launch builder emits (GemmDesc) and the pure mapping to cuBLASLt's column-major descriptor
// values (planBlasLtGemm). No CUDA header and no runtime dependency beyond the kernel library's
// C header: hal_cuda_test checks the mapping without a GPU, and ds_cuda_kernel_check compiles
// this file to drive the real cuBLASLt with the same values on a GPU.
#pragma once

#include <array>
#include <cstdint>

#include "ds_cuda_kernels.h"

namespace ds::hal::cuda {

// cuBLASLt's enum values this runtime passes (cublasLt.h, cublas_api.h, library_types.h; the same
// in CUDA 12 and 13). test/unit/hal/cuda_blaslt_header_test.cpp static_asserts them against
// cublasLt.h where the toolkit is installed.
constexpr int CUBLAS_STATUS_SUCCESS = 0;
constexpr int CUBLAS_STATUS_NOT_INITIALIZED = 1;
constexpr int CUBLAS_STATUS_ALLOC_FAILED = 3;
constexpr int CUBLAS_STATUS_INVALID_VALUE = 7;
constexpr int CUBLAS_STATUS_ARCH_MISMATCH = 8;
constexpr int CUBLAS_STATUS_EXECUTION_FAILED = 13;
constexpr int CUBLAS_STATUS_INTERNAL_ERROR = 14;
constexpr int CUBLAS_STATUS_NOT_SUPPORTED = 15;
constexpr int CUDA_R_32F = 0;    // cudaDataType_t
constexpr int CUDA_R_16BF = 14;
constexpr int CUBLAS_COMPUTE_32F = 68;  // cublasComputeType_t: f32 accumulate, no down-conversion
constexpr int CUBLAS_OP_N = 0;
constexpr int CUBLAS_OP_T = 1;
constexpr int CUBLASLT_EPILOGUE_DEFAULT = 1;
constexpr int CUBLASLT_EPILOGUE_BIAS = 4;
// cublasLtMatmulDescAttributes_t
constexpr int CUBLASLT_MATMUL_DESC_TRANSA = 3;
constexpr int CUBLASLT_MATMUL_DESC_TRANSB = 4;
constexpr int CUBLASLT_MATMUL_DESC_EPILOGUE = 7;
constexpr int CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8;
constexpr int CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26;
// cublasLtMatmulPreferenceAttributes_t
constexpr int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7;
constexpr int CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8;

// Y[M, N] = X[M, K] W[N, K]^T (+ bias[N]), all row-major; strides are elements between rows.
// Activations X and Y share act_dtype; no kind accumulates onto Y (the residual adds are kernels
// of their own: add, add_rms_norm), so beta is always 0.
struct GemmDesc {
  uint64_t x = 0, w = 0, y = 0;
  uint64_t bias = 0;  // f32 [N] (bias_dtype), 0 = none
  int64_t M = 0, N = 0, K = 0;
  int64_t x_stride = 0, y_stride = 0, w_stride = 0;
  int act_dtype = DS_CUDA_F32, weight_dtype = DS_CUDA_F32, bias_dtype = DS_CUDA_F32;
  bool y_f32 = false;  // Y is f32 whatever act_dtype (the logits of a bf16 model)
};

// One matrix in cuBLASLt's terms: column-major (CUBLASLT_ORDER_COL, the default), `rows` x
// `cols` as stored (before the operation's transpose), leading dimension `ld` in elements.
struct BlasLtMatrix {
  int type = CUDA_R_32F;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
  uint64_t ptr = 0;
  uint32_t align = 256;  // the pointer's alignment in bytes, at most 256 (a preference attribute)
};

// The descriptor values of one cublasLtMatmul: D = alpha op(A) op(B) + beta C (+ bias), C = D.
struct BlasLtMatmulPlan {
  int compute_type = CUBLAS_COMPUTE_32F;
  int scale_type = CUDA_R_32F;  // alpha, beta: f32 on the host
  int trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  int64_t m = 0, n = 0, k = 0;  // D is m x n, the reduction is k long
  BlasLtMatrix a, b, d;         // C has D's layout and pointer (beta = 0)
  int epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  int bias_type = -1;           // CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE when epilogue is BIAS
  uint64_t bias = 0;
  uint32_t bias_align = 256;
  float alpha = 1.0f, beta = 0.0f;
};

// The mapping (row-major -> cuBLASLt's column-major), with r = row stride:
//   a row-major [R, C] matrix with stride r is the same memory as a column-major [C, R] with ld r.
//   So Y [M, N] (stride y_stride) is D = Y^T, column-major [N, M] with ld y_stride;
//      X [M, K] (stride x_stride) is B = X^T, column-major [K, M] with ld x_stride, op N;
//      W [N, K] (stride w_stride) is stored as column-major [K, N] with ld w_stride (that is
//      W^T), so A = that matrix with op T gives op(A) = W [N, K].
//   D [N, M] = op(A) [N, K] x op(B) [K, M] = W X^T = (X W^T)^T = Y^T: m = N, n = M, k = K.
//   The bias is one value per column of Y = per row of D, which is what CUBLASLT_EPILOGUE_BIAS
//   adds ("bias vector length must match matrix D rows", broadcast over D's columns).
// Types: f32 x f32 -> f32 and bf16 x bf16 -> bf16, both CUBLAS_COMPUTE_32F with f32 scale
// (f32 accumulation like the GEMV kernels; no TF32). The f32 bias is declared with
// BIAS_DATA_TYPE = CUDA_R_32F also for bf16 output (cublasLt.h: the bias type defaults to D's).
// Returns null and fills `out`, or a static message naming the refusal: f32 activations with
// bf16 weights (cuBLASLt wants A and B of one type; the GEMV kernels take it), a dtype that is
// not f32/bf16, empty shapes, strides shorter than a row, misaligned pointers.
const char* planBlasLtGemm(const GemmDesc& g, BlasLtMatmulPlan* out);

// Everything of a plan that selects descriptors and an algorithm - shapes, types, leading
// dimensions, epilogue and the pointers' alignments - but not the addresses: the cache key of
// the device's descriptor/heuristic cache.
using BlasLtShapeKey = std::array<int64_t, 24>;
BlasLtShapeKey blasLtShapeKey(const BlasLtMatmulPlan& p);

// The largest power of two (at most 256) dividing `ptr`; 256 for 0.
uint32_t blasLtAlignment(uint64_t ptr);

}  // namespace ds::hal::cuda

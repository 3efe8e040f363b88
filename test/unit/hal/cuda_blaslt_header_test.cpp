// The runtime declares cuBLASLt's few types and enum values itself (hal/cuda/cuda_blaslt*.h) so
// it needs no CUDA header; where the toolkit's cublasLt.h is installed this test proves they
// match it. Built only when CMake finds cublasLt.h (the runtime itself never includes it).
#include <cublasLt.h>
#include <gtest/gtest.h>

#include <cstddef>

#include "hal/cuda/cuda_blaslt.h"

namespace c = ds::hal::cuda;

static_assert(c::CUBLAS_STATUS_SUCCESS == ::CUBLAS_STATUS_SUCCESS);
static_assert(c::CUBLAS_STATUS_NOT_INITIALIZED == ::CUBLAS_STATUS_NOT_INITIALIZED);
static_assert(c::CUBLAS_STATUS_ALLOC_FAILED == ::CUBLAS_STATUS_ALLOC_FAILED);
static_assert(c::CUBLAS_STATUS_INVALID_VALUE == ::CUBLAS_STATUS_INVALID_VALUE);
static_assert(c::CUBLAS_STATUS_ARCH_MISMATCH == ::CUBLAS_STATUS_ARCH_MISMATCH);
static_assert(c::CUBLAS_STATUS_EXECUTION_FAILED == ::CUBLAS_STATUS_EXECUTION_FAILED);
static_assert(c::CUBLAS_STATUS_INTERNAL_ERROR == ::CUBLAS_STATUS_INTERNAL_ERROR);
static_assert(c::CUBLAS_STATUS_NOT_SUPPORTED == ::CUBLAS_STATUS_NOT_SUPPORTED);
static_assert(c::CUDA_R_32F == ::CUDA_R_32F);
static_assert(c::CUDA_R_16BF == ::CUDA_R_16BF);
static_assert(c::CUBLAS_COMPUTE_32F == ::CUBLAS_COMPUTE_32F);
static_assert(c::CUBLAS_OP_N == ::CUBLAS_OP_N);
static_assert(c::CUBLAS_OP_T == ::CUBLAS_OP_T);
static_assert(c::CUBLASLT_EPILOGUE_DEFAULT == ::CUBLASLT_EPILOGUE_DEFAULT);
static_assert(c::CUBLASLT_EPILOGUE_BIAS == ::CUBLASLT_EPILOGUE_BIAS);
static_assert(c::CUBLASLT_MATMUL_DESC_TRANSA == ::CUBLASLT_MATMUL_DESC_TRANSA);
static_assert(c::CUBLASLT_MATMUL_DESC_TRANSB == ::CUBLASLT_MATMUL_DESC_TRANSB);
static_assert(c::CUBLASLT_MATMUL_DESC_EPILOGUE == ::CUBLASLT_MATMUL_DESC_EPILOGUE);
static_assert(c::CUBLASLT_MATMUL_DESC_BIAS_POINTER == ::CUBLASLT_MATMUL_DESC_BIAS_POINTER);
static_assert(c::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE == ::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE);
static_assert(c::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES == ::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES);
static_assert(c::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES == ::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES);
static_assert(c::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES == ::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES);
static_assert(c::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES == ::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES);
static_assert(c::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES == ::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES);
// The enums travel as int (same size, passed the same way); the structs the library fills.
static_assert(sizeof(cublasStatus_t) == sizeof(int) && sizeof(cublasComputeType_t) == sizeof(int) &&
              sizeof(cudaDataType_t) == sizeof(int) && sizeof(cublasLtMatmulDescAttributes_t) == sizeof(int));
static_assert(sizeof(c::cublasLtMatmulAlgo_t) == sizeof(::cublasLtMatmulAlgo_t));
static_assert(sizeof(c::cublasLtMatmulHeuristicResult_t) == sizeof(::cublasLtMatmulHeuristicResult_t));
static_assert(offsetof(c::cublasLtMatmulHeuristicResult_t, workspaceSize) ==
              offsetof(::cublasLtMatmulHeuristicResult_t, workspaceSize));
static_assert(offsetof(c::cublasLtMatmulHeuristicResult_t, state) ==
              offsetof(::cublasLtMatmulHeuristicResult_t, state));
static_assert(offsetof(c::cublasLtMatmulHeuristicResult_t, wavesCount) ==
              offsetof(::cublasLtMatmulHeuristicResult_t, wavesCount));
static_assert(sizeof(c::CUstream) == sizeof(cudaStream_t));

// The signatures: each table entry's parameter and result types, with the header's enums and
// opaque pointers replaced by the table's int and pointer stand-ins, have the same sizes.
template <typename R, typename... A>
constexpr size_t signatureSize(R (*)(A...)) {
  return sizeof(R) + (sizeof(A) + ... + 0) * 1000 + sizeof...(A) * 1000000;
}
#define DS_CHECK_SIGNATURE(name, type) \
  static_assert(signatureSize(c::BlasLtLibrary::name##_fn{}) == signatureSize(&::name), #name);
DS_BLASLT_SYMBOLS(DS_CHECK_SIGNATURE)
DS_BLASLT_OPTIONAL_SYMBOLS(DS_CHECK_SIGNATURE)
#undef DS_CHECK_SIGNATURE

TEST(BlasLtHeader, ValuesAndLayoutsMatchCublasLtH) {
  // Everything above is checked at compile time; this records that the check was built.
  EXPECT_EQ(sizeof(c::cublasLtMatmulHeuristicResult_t), sizeof(::cublasLtMatmulHeuristicResult_t));
}

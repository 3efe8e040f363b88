// cuBLASLt without a GPU (hal/cuda/cuda_blaslt{,_plan}.h): the row-major -> column-major mapping
// checked field by field and by running cuBLASLt's documented semantics on the host over the
// plan's layouts, the shape key, the refusals, and the dlopen loader's statuses.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cmath>
#include <random>
#include <vector>

#include "hal/cuda/cuda_blaslt.h"
#include "hal/cuda/cuda_blaslt_plan.h"

namespace ds::hal::cuda {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

uint64_t addr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

GemmDesc f32Gemm(int64_t M, int64_t N, int64_t K) {
  GemmDesc g;
  g.x = 0x10000, g.w = 0x20000, g.y = 0x30000;
  g.M = M, g.N = N, g.K = K;
  g.x_stride = K, g.w_stride = K, g.y_stride = N;
  return g;
}

TEST(BlasLtPlan, LinearIsTransposedWeightTimesTransposedX) {
  GemmDesc g = f32Gemm(64, 96, 128);
  g.x_stride = 160, g.y_stride = 200;  // views: rows longer than the matrix
  BlasLtMatmulPlan p;
  ASSERT_EQ(planBlasLtGemm(g, &p), nullptr);
  EXPECT_EQ(p.compute_type, CUBLAS_COMPUTE_32F);
  EXPECT_EQ(p.scale_type, CUDA_R_32F);
  EXPECT_EQ(p.trans_a, CUBLAS_OP_T);
  EXPECT_EQ(p.trans_b, CUBLAS_OP_N);
  EXPECT_EQ(p.m, 96);   // N
  EXPECT_EQ(p.n, 64);   // M
  EXPECT_EQ(p.k, 128);  // K
  // A = W as column-major [K, N], ld = its row stride.
  EXPECT_EQ(p.a.type, CUDA_R_32F);
  EXPECT_EQ(p.a.rows, 128u);
  EXPECT_EQ(p.a.cols, 96u);
  EXPECT_EQ(p.a.ld, 128);
  EXPECT_EQ(p.a.ptr, g.w);
  // B = X^T, column-major [K, M], ld = x's row stride.
  EXPECT_EQ(p.b.rows, 128u);
  EXPECT_EQ(p.b.cols, 64u);
  EXPECT_EQ(p.b.ld, 160);
  EXPECT_EQ(p.b.ptr, g.x);
  // D = Y^T, column-major [N, M], ld = y's row stride.
  EXPECT_EQ(p.d.rows, 96u);
  EXPECT_EQ(p.d.cols, 64u);
  EXPECT_EQ(p.d.ld, 200);
  EXPECT_EQ(p.d.ptr, g.y);
  EXPECT_EQ(p.epilogue, CUBLASLT_EPILOGUE_DEFAULT);
  EXPECT_EQ(p.bias_type, -1);
  EXPECT_EQ(p.alpha, 1.0f);
  EXPECT_EQ(p.beta, 0.0f);
  EXPECT_EQ(p.a.align, 256u);
}

TEST(BlasLtPlan, BiasIsTheEpilogueOverDRows) {
  GemmDesc g = f32Gemm(32, 48, 64);
  g.act_dtype = g.weight_dtype = DS_CUDA_BF16;
  g.bias = 0x40010;  // f32, 16-byte aligned
  BlasLtMatmulPlan p;
  ASSERT_EQ(planBlasLtGemm(g, &p), nullptr);
  EXPECT_EQ(p.a.type, CUDA_R_16BF);
  EXPECT_EQ(p.b.type, CUDA_R_16BF);
  EXPECT_EQ(p.d.type, CUDA_R_16BF);
  EXPECT_EQ(p.compute_type, CUBLAS_COMPUTE_32F);  // f32 accumulation for bf16 too
  EXPECT_EQ(p.epilogue, CUBLASLT_EPILOGUE_BIAS);
  EXPECT_EQ(p.bias_type, CUDA_R_32F);  // the f32 bias, declared: D is bf16
  EXPECT_EQ(p.bias, 0x40010u);
  EXPECT_EQ(p.bias_align, 16u);
  EXPECT_EQ(p.d.rows, 48u);  // the bias has D's row count: N
}

TEST(BlasLtPlan, Refusals) {
  BlasLtMatmulPlan p;
  GemmDesc g = f32Gemm(32, 48, 64);
  g.weight_dtype = DS_CUDA_BF16;  // f32 activations x bf16 weights: the GEMV kernels' case
  EXPECT_TRUE(contains(planBlasLtGemm(g, &p), "different dtypes"));
  g = f32Gemm(32, 48, 64);
  g.act_dtype = g.weight_dtype = 7;
  EXPECT_TRUE(contains(planBlasLtGemm(g, &p), "f32 or bf16"));
  g = f32Gemm(0, 48, 64);
  EXPECT_TRUE(contains(planBlasLtGemm(g, &p), ">= 1"));
  g = f32Gemm(32, 48, 64);
  g.x_stride = 63;
  EXPECT_TRUE(contains(planBlasLtGemm(g, &p), "stride"));
  g = f32Gemm(32, 48, 64);
  g.y = 0x30002;  // f32 y on a 2-byte boundary
  EXPECT_TRUE(contains(planBlasLtGemm(g, &p), "aligned"));
  g = f32Gemm(32, 48, 64);
  g.bias = 0x40000, g.bias_dtype = DS_CUDA_BF16;
  EXPECT_TRUE(contains(planBlasLtGemm(g, &p), "bias must be f32"));
  g = f32Gemm(32, 48, 64);
  g.w = 0;
  EXPECT_TRUE(contains(planBlasLtGemm(g, &p), "required"));
}

TEST(BlasLtPlan, AlignmentAndShapeKey) {
  EXPECT_EQ(blasLtAlignment(0), 256u);
  EXPECT_EQ(blasLtAlignment(0x1000), 256u);
  EXPECT_EQ(blasLtAlignment(0x1010), 16u);
  EXPECT_EQ(blasLtAlignment(0x1002), 2u);
  BlasLtMatmulPlan a, b;
  GemmDesc g = f32Gemm(32, 48, 64);
  ASSERT_EQ(planBlasLtGemm(g, &a), nullptr);
  g.x += 0x100000, g.y += 0x2000;  // other addresses, same alignment: same descriptors
  ASSERT_EQ(planBlasLtGemm(g, &b), nullptr);
  EXPECT_EQ(blasLtShapeKey(a), blasLtShapeKey(b));
  g.y += 8;  // D only 8-byte aligned: the heuristic may choose another algorithm
  ASSERT_EQ(planBlasLtGemm(g, &b), nullptr);
  EXPECT_NE(blasLtShapeKey(a), blasLtShapeKey(b));
  for (auto change : {+[](GemmDesc& d) { d.M = 33; }, +[](GemmDesc& d) { d.y_stride = 64; },
                      +[](GemmDesc& d) { d.bias = 0x50000; },
                      +[](GemmDesc& d) { d.act_dtype = d.weight_dtype = DS_CUDA_BF16; }}) {
    GemmDesc h = f32Gemm(32, 48, 64);
    change(h);
    ASSERT_EQ(planBlasLtGemm(h, &b), nullptr);
    EXPECT_NE(blasLtShapeKey(a), blasLtShapeKey(b));
  }
}

// cublasLtMatmul's definition run on the host over the plan's layouts (column-major, element
// (i, j) of a rows x cols matrix at i + j ld; op T swaps the indices): D = alpha op(A) op(B) +
// bias[row]. Compared with the row-major Y = X W^T + b it must implement, on strided views.
TEST(BlasLtPlan, ColumnMajorSemanticsGiveTheRowMajorGemm) {
  const int64_t M = 5, N = 7, K = 6, xs = 9, ys = 11;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(M * xs), w(N * K), bias(N), y(M * ys, 0.0f);
  for (auto* v : {&x, &w, &bias})
    for (float& f : *v) f = u(rng);
  GemmDesc g;
  g.x = addr(x.data()), g.w = addr(w.data()), g.y = addr(y.data()), g.bias = addr(bias.data());
  g.M = M, g.N = N, g.K = K, g.x_stride = xs, g.w_stride = K, g.y_stride = ys;
  BlasLtMatmulPlan p;
  ASSERT_EQ(planBlasLtGemm(g, &p), nullptr);
  auto at = [](const BlasLtMatrix& m, bool trans, int64_t i, int64_t j) {
    const float* base = reinterpret_cast<const float*>(static_cast<uintptr_t>(m.ptr));
    return trans ? base[j + i * m.ld] : base[i + j * m.ld];
  };
  // op(A) must be m x k, op(B) k x n, D m x n.
  ASSERT_EQ(p.trans_a == CUBLAS_OP_T ? p.a.cols : p.a.rows, static_cast<uint64_t>(p.m));
  ASSERT_EQ(p.trans_b == CUBLAS_OP_T ? p.b.rows : p.b.cols, static_cast<uint64_t>(p.n));
  ASSERT_EQ(p.d.rows, static_cast<uint64_t>(p.m));
  ASSERT_EQ(p.d.cols, static_cast<uint64_t>(p.n));
  const float* bias_at = reinterpret_cast<const float*>(static_cast<uintptr_t>(p.bias));
  float* d = reinterpret_cast<float*>(static_cast<uintptr_t>(p.d.ptr));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      double s = 0;
      for (int64_t l = 0; l < p.k; ++l)
        s += double(at(p.a, p.trans_a == CUBLAS_OP_T, i, l)) * at(p.b, p.trans_b == CUBLAS_OP_T, l, j);
      if (p.epilogue == CUBLASLT_EPILOGUE_BIAS) s += bias_at[i];
      d[i + j * p.d.ld] = static_cast<float>(p.alpha * s);
    }
  for (int64_t r = 0; r < M; ++r) {
    for (int64_t c = 0; c < N; ++c) {
      double s = bias[c];
      for (int64_t k = 0; k < K; ++k) s += double(x[r * xs + k]) * w[c * K + k];
      EXPECT_NEAR(y[r * ys + c], s, 1e-5) << r << "," << c;
    }
    for (int64_t c = N; c < ys; ++c) EXPECT_EQ(y[r * ys + c], 0.0f) << "wrote past the row";
  }
}

// ---- the loader ---------------------------------------------------------------------------------

TEST(BlasLtLibrary, MissingLibraryNamesWhatWasTried) {
  auto lib = loadBlasLt({"/nonexistent/libcublasLt.so.13", "/nonexistent/libcublasLt.so.12"});
  ASSERT_FALSE(lib.isOk());
  EXPECT_EQ(lib.status().code(), DS_UNAVAILABLE);
  EXPECT_EQ(lib.status().message(),
            "/nonexistent/libcublasLt.so.13, /nonexistent/libcublasLt.so.12 not found");
}

TEST(BlasLtLibrary, MissingSymbolIsNamed) {
  auto lib = loadBlasLt({"/nonexistent/libcublasLt.so", "libc.so.6"});
  ASSERT_FALSE(lib.isOk());
  EXPECT_EQ(lib.status().code(), DS_UNAVAILABLE);
  EXPECT_TRUE(contains(lib.status().message(), "libc.so.6 has no symbol cublasLtGetVersion"))
      << lib.status().message();
}

TEST(BlasLtLibrary, DefaultNamesAndStatusTexts) {
  EXPECT_EQ(defaultBlasLtLibraries(),
            (std::vector<std::string>{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}));
  BlasLtLibrary bare;  // no cublasLtGetStatusName/String: cublas_api.h's names
  EXPECT_EQ(blasLtStatusText(bare, CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED");
  EXPECT_EQ(blasLtStatusText(bare, 99), "cuBLAS status 99");
  EXPECT_TRUE(bare.check(CUBLAS_STATUS_SUCCESS, "x").isOk());
  Status st = bare.check(CUBLAS_STATUS_ALLOC_FAILED, "cublasLtCreate");
  EXPECT_EQ(st.code(), DS_OUT_OF_MEMORY);
  EXPECT_EQ(st.message(), "cublasLtCreate: CUBLAS_STATUS_ALLOC_FAILED");
  EXPECT_EQ(bare.check(CUBLAS_STATUS_NOT_SUPPORTED, "x").code(), DS_UNSUPPORTED);
  EXPECT_EQ(bare.check(CUBLAS_STATUS_ARCH_MISMATCH, "x").code(), DS_UNSUPPORTED);
  EXPECT_EQ(bare.check(CUBLAS_STATUS_EXECUTION_FAILED, "x").code(), DS_INTERNAL);
  EXPECT_EQ(gemmText(f32Gemm(64, 4096, 512)), "M=64 N=4096 K=512 f32");
}

// Where the toolkit's cuBLASLt is installed (not needed: skipped elsewhere), the table binds
// against the real library and its own status texts come through. No GPU is touched.
TEST(BlasLtLibrary, ThisMachinesLibrary) {
  void* h = ::dlopen("libcublasLt.so.13", RTLD_NOW | RTLD_LOCAL);
  if (!h) h = ::dlopen("libcublasLt.so.12", RTLD_NOW | RTLD_LOCAL);
  if (!h) GTEST_SKIP() << "no libcublasLt.so.13/.12 on this machine";
  ::dlclose(h);
  auto lib = loadBlasLt();
  ASSERT_TRUE(lib.isOk()) << lib.status().message();
  EXPECT_GT((*lib)->version, 110000u);
  EXPECT_TRUE(contains((*lib)->path, "libcublasLt.so.1"));
  ASSERT_NE((*lib)->cublasLtGetStatusName, nullptr);
  EXPECT_TRUE(contains(blasLtStatusText(**lib, CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED"))
      << blasLtStatusText(**lib, CUBLAS_STATUS_NOT_SUPPORTED);
  // Descriptors are host objects: they can be made and destroyed without a GPU.
  cublasLtMatrixLayout_t layout = nullptr;
  ASSERT_TRUE((*lib)->check((*lib)->cublasLtMatrixLayoutCreate(&layout, CUDA_R_16BF, 4096, 64, 4096),
                            "cublasLtMatrixLayoutCreate").isOk());
  EXPECT_TRUE((*lib)->check((*lib)->cublasLtMatrixLayoutDestroy(layout), "cublasLtMatrixLayoutDestroy").isOk());
  cublasLtMatmulDesc_t desc = nullptr;
  ASSERT_TRUE((*lib)->check((*lib)->cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                            "cublasLtMatmulDescCreate").isOk());
  const int32_t ta = CUBLAS_OP_T;
  EXPECT_TRUE((*lib)->check((*lib)->cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta),
                            "TRANSA").isOk());
  // A wrong attribute size is refused: the sizes this runtime passes are the library's.
  const int64_t wrong = CUBLAS_OP_T;
  EXPECT_FALSE((*lib)->check((*lib)->cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &wrong, sizeof wrong),
                             "TRANSA").isOk());
  const int32_t epi = CUBLASLT_EPILOGUE_BIAS, bt = CUDA_R_32F;
  EXPECT_TRUE((*lib)->check((*lib)->cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
                            "EPILOGUE").isOk());
  EXPECT_TRUE((*lib)->check((*lib)->cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt),
                            "BIAS_DATA_TYPE").isOk());
  EXPECT_TRUE((*lib)->check((*lib)->cublasLtMatmulDescDestroy(desc), "cublasLtMatmulDescDestroy").isOk());
  cublasLtMatmulPreference_t pref = nullptr;
  ASSERT_TRUE((*lib)->check((*lib)->cublasLtMatmulPreferenceCreate(&pref), "pref").isOk());
  const uint64_t ws = 32ull << 20;
  const uint32_t align = 16;
  EXPECT_TRUE((*lib)->check((*lib)->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                            "MAX_WORKSPACE_BYTES").isOk());
  EXPECT_TRUE((*lib)->check((*lib)->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align, sizeof align),
                            "MIN_ALIGNMENT_D_BYTES").isOk());
  (*lib)->cublasLtMatmulPreferenceDestroy(pref);
}

// Without a GPU driver cublasLtCreate fails; BlasLt::create says so, naming the call, the
// library and cuBLASLt's status, and allocates no workspace (the handle comes first).
TEST(BlasLtLibrary, CreateWithoutAGpuIsANamedError) {
  void* h = ::dlopen("libcublasLt.so.13", RTLD_NOW | RTLD_LOCAL);
  if (!h) GTEST_SKIP() << "no libcublasLt.so.13 on this machine";
  ::dlclose(h);
  void* driver = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (driver) {
    ::dlclose(driver);
    GTEST_SKIP() << "a GPU driver is present: the GPU check covers BlasLt there";
  }
  struct CountingAllocator : Allocator {
    int calls = 0;
    StatusOr<Allocation> allocate(uint64_t bytes, MemoryKind kind) override {
      ++calls;
      return Status(DS_OUT_OF_MEMORY, "no memory here");
    }
    void release(const Allocation&) override {}
    uint64_t bytesInUse(MemoryKind) const override { return 0; }
  } alloc;
  auto lib = loadBlasLt();
  ASSERT_TRUE(lib.isOk()) << lib.status().message();
  auto blas = BlasLt::create(**lib, alloc, 32ull << 20);
  ASSERT_FALSE(blas.isOk());
  EXPECT_EQ(blas.status().code(), DS_INTERNAL);
  EXPECT_TRUE(contains(blas.status().message(), "cublasLtCreate (libcublasLt.so.13): CUBLAS_STATUS_NOT_INITIALIZED"))
      << blas.status().message();
  EXPECT_EQ(alloc.calls, 0);
}

}  // namespace
}  // namespace ds::hal::cuda

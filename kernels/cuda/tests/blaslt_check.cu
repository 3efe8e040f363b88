// The cuBLASLt stage of ds_cuda_kernel_check: the runtime's own mapping (planBlasLtGemm,
// runtime/src/hal/cuda/cuda_blaslt_plan.cpp, compiled into this program) drives the real
// cuBLASLt, loaded with dlopen as the runtime does, on random row-major GEMMs Y = X W^T (+ f32
// bias) with the GEMV check's CPU reference and tolerances; then bf16 8B-layer shapes are timed
// (TFLOP/s) next to the GEMV kernels in chunks of 16 rows, the device's path without cuBLASLt.
// Without libcublasLt the stage says SKIP and counts nothing.
#include <cublasLt.h>
#include <dlfcn.h>

#include "check_common.cuh"
#include "hal/cuda/cuda_blaslt_plan.h"

namespace dscheck {
namespace {

namespace rt = ds::hal::cuda;

// The entry points, typed by cublasLt.h, bound with dlsym (no link dependency on cuBLASLt).
#define DS_LT_FNS(X)                                                                              \
  X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtGetVersion) X(cublasLtGetStatusName)             \
  X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescSetAttribute) X(cublasLtMatmulDescDestroy)      \
  X(cublasLtMatrixLayoutCreate) X(cublasLtMatrixLayoutDestroy) X(cublasLtMatmulPreferenceCreate)  \
  X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatmulPreferenceDestroy)                      \
  X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmul)
struct Lt {
#define DS_LT_FIELD(name) decltype(&::name) name = nullptr;
  DS_LT_FNS(DS_LT_FIELD)
#undef DS_LT_FIELD
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = size_t(32) << 20;  // the runtime's kBlasLtWorkspaceBytes
} lt;

std::string loadLt() {
  void* h = nullptr;
  for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"})
    if ((h = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  if (!h) return "libcublasLt.so.13/.12 not found";
#define DS_LT_BIND(name)                                                   \
  lt.name = reinterpret_cast<decltype(&::name)>(dlsym(h, #name));          \
  if (!lt.name) return "no symbol " #name;
  DS_LT_FNS(DS_LT_BIND)
#undef DS_LT_BIND
  if (lt.cublasLtCreate(&lt.handle) != CUBLAS_STATUS_SUCCESS) return "cublasLtCreate failed";
  CK(cudaMalloc(&lt.workspace, lt.workspace_bytes));
  return "";
}

std::string ltError(const char* call, cublasStatus_t s) {
  return std::string(call) + ": " + lt.cublasLtGetStatusName(s);
}
#define LT_TRY(call)                                                  \
  do {                                                                \
    const cublasStatus_t s_ = (call);                                 \
    if (s_ != CUBLAS_STATUS_SUCCESS) return ltError(#call, s_);       \
  } while (0)

// One GEMM's descriptors and algorithm, set from the runtime's plan exactly as BlasLt::entry does.
struct Op {
  rt::BlasLtMatmulPlan p;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t ws = 0;
  ~Op() {
    if (a) lt.cublasLtMatrixLayoutDestroy(a);
    if (b) lt.cublasLtMatrixLayoutDestroy(b);
    if (d) lt.cublasLtMatrixLayoutDestroy(d);
    if (desc) lt.cublasLtMatmulDescDestroy(desc);
  }
  std::string build(const rt::GemmDesc& g) {
    if (const char* e = rt::planBlasLtGemm(g, &p)) return e;
    LT_TRY(lt.cublasLtMatmulDescCreate(&desc, cublasComputeType_t(p.compute_type), cudaDataType_t(p.scale_type)));
    const int32_t ta = p.trans_a, tb = p.trans_b, epi = p.epilogue, bt = p.bias_type;
    LT_TRY(lt.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_TRY(lt.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (p.epilogue != rt::CUBLASLT_EPILOGUE_DEFAULT) {
      const void* bias = reinterpret_cast<const void*>(p.bias);
      LT_TRY(lt.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
      LT_TRY(lt.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
      LT_TRY(lt.cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    LT_TRY(lt.cublasLtMatrixLayoutCreate(&a, cudaDataType_t(p.a.type), p.a.rows, p.a.cols, p.a.ld));
    LT_TRY(lt.cublasLtMatrixLayoutCreate(&b, cudaDataType_t(p.b.type), p.b.rows, p.b.cols, p.b.ld));
    LT_TRY(lt.cublasLtMatrixLayoutCreate(&d, cudaDataType_t(p.d.type), p.d.rows, p.d.cols, p.d.ld));
    cublasLtMatmulPreference_t pref = nullptr;
    LT_TRY(lt.cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t wsb = lt.workspace_bytes;
    const uint32_t al[4] = {p.a.align, p.b.align, p.d.align, p.d.align};
    lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
    for (int i = 0; i < 4; ++i)
      lt.cublasLtMatmulPreferenceSetAttribute(
          pref, cublasLtMatmulPreferenceAttributes_t(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES + i), &al[i], sizeof al[i]);
    cublasLtMatmulHeuristicResult_t r{};
    int found = 0;
    const cublasStatus_t hs = lt.cublasLtMatmulAlgoGetHeuristic(lt.handle, desc, a, b, d, d, pref, 1, &r, &found);
    lt.cublasLtMatmulPreferenceDestroy(pref);
    if (hs != CUBLAS_STATUS_SUCCESS) return ltError("cublasLtMatmulAlgoGetHeuristic", hs);
    if (found == 0) return "the heuristic found no algorithm";
    algo = r.algo;
    ws = r.workspaceSize;
    return "";
  }
  std::string run() {
    LT_TRY(lt.cublasLtMatmul(lt.handle, desc, &p.alpha, reinterpret_cast<void*>(p.a.ptr), a,
                             reinterpret_cast<void*>(p.b.ptr), b, &p.beta, reinterpret_cast<void*>(p.d.ptr), d,
                             reinterpret_cast<void*>(p.d.ptr), d, &algo, ws ? lt.workspace : nullptr, ws, 0));
    return "";
  }
};

// Y rows of `ys` elements starting `y_off` elements into the buffer (the separate up half of
// swiglu_linear's scratch is such a view); X rows of `xs`.
void checkGemm(int dt, int M, int N, int K, bool with_bias, int xs, int ys, int y_off) {
  const bool bf = dt == DS_CUDA_BF16;
  auto x = randomVec(size_t(M) * xs, -1, 1, bf);
  auto w = randomVec(size_t(N) * K, -0.05f, 0.05f, bf);
  auto bias = randomVec(N);
  Buf bx(x, dt), bw(w, dt), bb(bias, DS_CUDA_F32), by(std::vector<float>(size_t(M) * ys + y_off), dt);
  rt::GemmDesc g;
  g.x = bx.d(), g.w = bw.d(), g.y = by.d() + uint64_t(y_off) * (bf ? 2 : 4);
  g.bias = with_bias ? bb.d() : 0;
  g.M = M, g.N = N, g.K = K, g.x_stride = xs, g.w_stride = K, g.y_stride = ys;
  g.act_dtype = g.weight_dtype = dt;
  const std::string name = std::string("cublasLt ") + dn(dt) + " M" + std::to_string(M) + " N" +
                           std::to_string(N) + " K" + std::to_string(K) + (with_bias ? " +bias" : "") +
                           (xs != K || ys != N || y_off ? " (views)" : "");
  Op op;
  std::string err = op.build(g);
  if (err.empty()) err = op.run();
  if (!err.empty()) {
    std::printf("FAIL %-44s %s\n", name.c_str(), err.c_str());
    ++g_fail;
    return;
  }
  CK(cudaDeviceSynchronize());
  const std::vector<float> all = by.get();
  std::vector<float> got;
  std::vector<double> ref, tol;
  for (int m = 0; m < M; ++m)
    for (int c = 0; c < ys; ++c) {
      const float v = all[size_t(y_off) + size_t(m) * ys + c];
      if (c >= N) {  // padding of the view: must stay 0
        got.push_back(v), ref.push_back(0.0), tol.push_back(0.0);
        continue;
      }
      double s = with_bias ? bias[c] : 0.0, a = with_bias ? std::fabs(bias[c]) : 0.0;
      for (int k = 0; k < K; ++k) {
        const double t = double(w[size_t(c) * K + k]) * x[size_t(m) * xs + k];
        s += t, a += std::fabs(t);
      }
      got.push_back(v), ref.push_back(s), tol.push_back(2e-6 * a + outUlp(dt, s) + 1e-7);
    }
  for (int i = 0; i < y_off; ++i) got.push_back(all[size_t(i)]), ref.push_back(0.0), tol.push_back(0.0);
  report(name, got, ref, tol);
}

// Seconds per call of `fn` (3 warm-up calls, then `iters`).
template <class F>
double timeIt(F fn, int iters) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  CK(cudaEventRecord(e0));
  for (int i = 0; i < iters; ++i) fn();
  CK(cudaEventRecord(e1));
  CK(cudaEventSynchronize(e1));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return ms * 1e-3 / iters;
}

void timeGemm(int M, int N, int K) {
  Buf x(randomVec(size_t(M) * K, -1, 1, true), DS_CUDA_BF16);
  Buf w(randomVec(size_t(N) * K, -0.05f, 0.05f, true), DS_CUDA_BF16);
  Buf y(std::vector<float>(size_t(M) * N), DS_CUDA_BF16);
  rt::GemmDesc g;
  g.x = x.d(), g.w = w.d(), g.y = y.d();
  g.M = M, g.N = N, g.K = K, g.x_stride = K, g.w_stride = K, g.y_stride = N;
  g.act_dtype = g.weight_dtype = DS_CUDA_BF16;
  Op op;
  std::string err = op.build(g);
  if (!err.empty()) {
    std::printf("time cublasLt bf16 M%d N%d K%d: %s\n", M, N, K, err.c_str());
    cudaFree(x.p), cudaFree(w.p), cudaFree(y.p);
    return;
  }
  const double flop = 2.0 * M * N * K;
  const double t = timeIt([&] { (void)op.run(); }, 20);
  std::printf("time cublasLt bf16 M%-5d N%-6d K%-6d %9.2f us  %7.1f TFLOP/s", M, N, K, t * 1e6, flop / t * 1e-12);
  if (M <= 256) {  // the same GEMM as GEMV chunks of 16 rows: the path without cuBLASLt
    std::vector<std::pair<ds_cuda_gemv_params, ds_cuda_plan>> chunks;
    ds_cuda_ptr ws = 0;
    for (int r0 = 0; r0 < M; r0 += DS_CUDA_GEMV_MAX_M) {
      ds_cuda_gemv_params p{};
      p.x = x.d() + uint64_t(r0) * K * 2, p.w = w.d(), p.y = y.d() + uint64_t(r0) * N * 2;
      p.M = std::min(DS_CUDA_GEMV_MAX_M, M - r0), p.N = N, p.K = K, p.x_stride = K, p.y_stride = N;
      p.act_dtype = p.weight_dtype = DS_CUDA_BF16;
      ds_cuda_plan plan;
      planOk(ds_cuda_plan_gemv(&p, &g_dev, &plan), "gemv chunks");
      if (!ws && plan.workspace_bytes) ws = scratch(plan.workspace_bytes);
      p.workspace = ws;
      chunks.push_back({p, plan});
    }
    const double tg = timeIt([&] { for (auto& c : chunks) launch(c.second, c.first); }, 20);
    std::printf("   GEMV x%zu %9.2f us (%.2fx)", chunks.size(), tg * 1e6, tg / t);
    cudaFree(reinterpret_cast<void*>(ws));
  }
  std::printf("\n");
  cudaFree(x.p), cudaFree(w.p), cudaFree(y.p);  // Buf does not free (the 8B weights add up)
}

}  // namespace

void blasLtStage() {
  const std::string err = loadLt();
  if (!err.empty()) {
    std::printf("SKIP cuBLASLt stage: %s\n", err.c_str());
    return;
  }
  std::printf("cuBLASLt %zu (dlopen)\n", lt.cublasLtGetVersion());
  for (int dt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (int M : {17, 64, 256, 2048})
      for (bool bias : {false, true}) checkGemm(dt, M, 520, 1024, bias, 1024, 520, 0);
  for (int dt : {DS_CUDA_BF16, DS_CUDA_F32}) {
    checkGemm(dt, 100, 264, 512, true, 520, 600, 0);   // strided x and y views
    checkGemm(dt, 33, 256, 512, false, 512, 512, 256);  // y at a row offset (swiglu's up half)
    checkGemm(dt, 24, 100, 256, true, 256, 300, 36);   // y only 8 (bf16) / 16 (f32) byte aligned
    checkGemm(dt, 40, 96, 4096, true, 4096, 96, 0);     // long K
  }
}

void blasLtTiming() {
  if (!lt.handle) return;
  for (int M : {32, 64, 256, 2048}) {
    timeGemm(M, 4096, 4096);   // q/o projections of an 8B layer
    timeGemm(M, 14336, 4096);  // gate or up
    timeGemm(M, 4096, 14336);  // down
  }
  cudaFree(lt.workspace);
  lt.cublasLtDestroy(lt.handle);
  lt.handle = nullptr;
}

}  // namespace dscheck

// The 8-bit GEMV stage of ds_cuda_kernel_check, counted in g_pass / g_fail like the other stages:
// ds_gemv_wfp8_a<a>_m<mt> and ds_gemv_wi8_a<a>_m<mt> (ds_cuda_plan_gemv_fp8, include/
// ds_cuda_layout.h) over FP8 E4M3 (or int8) codes [N, K] with f32 block scales [ceil(N / br),
// ceil(K / bc)], against the host's dequantization (decode(code) * scale in f32, check_common.cuh
// randomFp8) in double:
//   FP8, bf16 activations M 1, 3, 6 (rows per pass 1, 2, 4: a partial last pass), f32 M 1, 2, 5;
//   N 200 K 512 with 128 x 128 blocks (a partial last row block) + bias, N 96 K 2048 (16 column
//   blocks), and N 100 K 528 with 24 x 48 blocks (partial row and column blocks; not DeepSeek's
//   shape but the plan takes any block_rows and block_cols % 16 == 0);
//   per-channel scales (1 x K blocks: --quant fp8 / w8), FP8 and int8, N 72 K 1024.
// x rows strided (K + 32); y starts NaN, so an output not written fails.
#include "check_common.cuh"

namespace dscheck {
namespace {

void checkGemv8(bool int8, int adt, int M, int N, int K, int br, int bc, bool bias) {
  const bool bf = adt == DS_CUDA_BF16;
  const int xs = K + 32;
  // Scales in [1, 3] / 512: FP8 |w| <= 448 * 3 / 512 (about 2.6), RMS about 0.4; int8 RMS about 0.3.
  Fp8Matrix w = randomFp8(N, K, br, bc, 1.0f / 512, 3.0f / 512, int8);
  const auto x = randomVec(size_t(M) * xs, -1, 1, bf), b = randomVec(N, -1, 1);
  Buf bx(x, adt), bb(b, DS_CUDA_F32), by(std::vector<float>(size_t(M) * N), adt);
  CK(cudaMemset(by.p, 0xff, by.n * (bf ? 2 : 4)));  // NaN until written
  ds_cuda_gemv_fp8_params p{};
  p.x = bx.d(); p.w = reinterpret_cast<ds_cuda_ptr>(w.codes); p.scale = w.dscale.d(); p.bias = bias ? bb.d() : 0;
  p.y = by.d(); p.M = M; p.N = N; p.K = K; p.x_stride = xs; p.y_stride = N; p.block_rows = br; p.block_cols = bc;
  p.act_dtype = adt; p.int8_codes = int8 ? 1 : 0;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_gemv_fp8(&p, &plan), "gemv_fp8");
  launch(plan, p);
  std::vector<double> ref(size_t(M) * N), tol(ref.size());
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias ? b[n] : 0.0, a = std::fabs(s);
      for (int k = 0; k < K; ++k) {
        const double t = double(w.f[size_t(n) * K + k]) * x[size_t(m) * xs + k];
        s += t, a += std::fabs(t);
      }
      ref[size_t(m) * N + n] = s;
      // f32 accumulation (the GEMV check's bound) + output rounding.
      tol[size_t(m) * N + n] = 2e-6 * a + outUlp(adt, s) + 1e-7;
    }
  char name[128];
  std::snprintf(name, sizeof name, "gemv_%s a%s M%d N%d K%d blocks %dx%d mt%d%s", int8 ? "i8" : "fp8", dn(adt),
                M, N, K, br, bc, p.rows_per_pass, bias ? " +bias" : "");
  report(name, by.get(), ref, tol);
  w.release();
  for (void* q : {bx.p, bb.p, by.p}) (void)cudaFree(q);
}

}  // namespace

// Every 8-bit GEMV case, one report line each.
void fp8Stage() {
  for (int adt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (int M : adt == DS_CUDA_BF16 ? std::vector<int>{1, 3, 6} : std::vector<int>{1, 2, 5}) {
      checkGemv8(false, adt, M, 200, 512, 128, 128, true);
      checkGemv8(false, adt, M, 96, 2048, 128, 128, false);
    }
  checkGemv8(false, DS_CUDA_BF16, 6, 100, 528, 24, 48, false);
  checkGemv8(false, DS_CUDA_F32, 5, 100, 528, 24, 48, true);
  for (bool int8 : {false, true}) {
    checkGemv8(int8, DS_CUDA_BF16, 3, 72, 1024, 1, 1024, true);
    checkGemv8(int8, DS_CUDA_F32, 2, 72, 1024, 1, 1024, false);
  }
  checkGemv8(true, DS_CUDA_BF16, 6, 200, 512, 128, 128, false);
  CK(cudaDeviceSynchronize());
}

}  // namespace dscheck

// The quantized prefill GEMM stage of ds_cuda_kernel_check: ds_gemm_q_{i4,fp8,i8}_abf16
// (include/ds_cuda_gemm_q.h) against its definition in double: W decoded to the host's f32
// values (int4: q * s or (q - z) * s from the GPU storage made by ds_cuda_i4_to_gpu; FP8 / int8:
// decode(q) * s), rounded once to bf16, times bf16 x, plus bias. Tolerance: f32 accumulation of
// K products + the output's rounding. Cases: M 17 / 64 / 130 (partial tiles), N 200 (a partial
// column tile) and 64, K 512 and 176 (a half K step); int4 symmetric g64 and asymmetric g128,
// FP8 128 x 128 blocks and per channel, int8 per channel, bias, an f32 output. y starts NaN.
// Then the time of a 512-token prefill projection of an 8B model (4096 x 4096) next to the GEMV
// passes the device ran before (32 of 16 rows).
#include "check_common.cuh"

namespace dscheck {
namespace {

struct QWeights {
  std::vector<float> value;  // [N, K]: the kernel's bf16-rounded weight values
  void* w = nullptr;
  Buf scale, zero;
  int group = 0, br = 0, bc = 0;
};

QWeights makeI4(int N, int K, int group, bool asym) {
  QWeights q;
  q.group = group;
  const int groups = (K + group - 1) / group;
  std::uniform_int_distribution<int> code(asym ? 0 : -8, asym ? 15 : 7);
  std::vector<uint8_t> bytes(size_t(N) * K / 2, 0);
  std::vector<int> codes(size_t(N) * K);
  for (size_t i = 0; i < codes.size(); ++i) {
    codes[i] = code(rng);
    bytes[i / 2] |= uint8_t((codes[i] & 15) << (4 * (i % 2)));
  }
  auto s = randomVec(size_t(N) * groups, 0.01f, 0.05f), z = randomVec(size_t(N) * groups, 4.0f, 11.0f);
  for (auto& v : z) v = std::round(v);
  q.value.resize(codes.size());
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) {
      const size_t g = size_t(n) * groups + k / group;
      const float c = float(codes[size_t(n) * K + k]);
      q.value[size_t(n) * K + k] = roundBf16(asym ? (c - z[g]) * s[g] : c * s[g]);
    }
  ds_cuda_i4_to_gpu(bytes.data(), bytes.size(), asym ? 0 : 1);
  CK(cudaMalloc(&q.w, bytes.size()));
  CK(cudaMemcpy(q.w, bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
  q.scale = Buf(s, DS_CUDA_F32);
  if (asym) q.zero = Buf(z, DS_CUDA_F32);
  return q;
}

QWeights make8(int N, int K, int br, int bc, bool int8) {
  QWeights q;
  q.br = br, q.bc = bc;
  Fp8Matrix m = randomFp8(N, K, br, bc, 1.0f / 512, 3.0f / 512, int8);
  q.value.resize(m.f.size());
  for (size_t i = 0; i < m.f.size(); ++i) q.value[i] = roundBf16(m.f[i]);
  q.w = m.codes;
  q.scale = m.dscale;
  return q;
}

void checkGemmQ(int wtype, int M, int N, int K, QWeights q, bool bias, bool y_f32, const char* what) {
  const int xs = K + 8;
  const auto x = randomVec(size_t(M) * xs, -1, 1, true), b = randomVec(N, -1, 1);
  Buf bx(x, DS_CUDA_BF16), bb(b, DS_CUDA_F32), by(std::vector<float>(size_t(M) * N), y_f32 ? DS_CUDA_F32 : DS_CUDA_BF16);
  CK(cudaMemset(by.p, 0xff, by.n * (y_f32 ? 4 : 2)));
  ds_cuda_gemm_q_params p{};
  p.x = bx.d(); p.w = reinterpret_cast<ds_cuda_ptr>(q.w); p.scale = q.scale.d(); p.zero = q.zero.p ? q.zero.d() : 0;
  p.bias = bias ? bb.d() : 0; p.y = by.d();
  p.M = M; p.N = N; p.K = K; p.x_stride = xs; p.y_stride = N;
  p.wtype = wtype; p.group_size = q.group; p.block_rows = q.br; p.block_cols = q.bc; p.y_f32 = y_f32 ? 1 : 0;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_gemm_q(&p, &plan), "gemm_q");
  launch(plan, p);
  std::vector<double> ref(size_t(M) * N), tol(ref.size());
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias ? b[n] : 0.0, a = std::fabs(s);
      for (int k = 0; k < K; ++k) {
        const double t = double(q.value[size_t(n) * K + k]) * x[size_t(m) * xs + k];
        s += t, a += std::fabs(t);
      }
      ref[size_t(m) * N + n] = s;
      tol[size_t(m) * N + n] = 2e-6 * a + (y_f32 ? std::fabs(s) * 1e-6 : outUlp(DS_CUDA_BF16, s)) + 1e-7;
    }
  char name[128];
  std::snprintf(name, sizeof name, "gemm_q %s M%d N%d K%d%s%s", what, M, N, K, bias ? " +bias" : "", y_f32 ? " y f32" : "");
  report(name, by.get(), ref, tol);
  (void)cudaFree(q.w);
  for (void* v : {q.scale.p, q.zero.p, bx.p, bb.p, by.p}) (void)cudaFree(v);
}

void timeGemmQ(int wtype, const char* what) {
  const int M = 512, N = 4096, K = 4096;
  QWeights q = wtype == DS_CUDA_GEMM_Q_I4 ? makeI4(N, K, 128, false) : make8(N, K, 128, 128, false);
  Buf x(randomVec(size_t(M) * K, -1, 1, true), DS_CUDA_BF16), y(std::vector<float>(size_t(M) * N), DS_CUDA_BF16);
  ds_cuda_gemm_q_params p{};
  p.x = x.d(); p.w = reinterpret_cast<ds_cuda_ptr>(q.w); p.scale = q.scale.d(); p.y = y.d();
  p.M = M; p.N = N; p.K = K; p.x_stride = K; p.y_stride = N; p.wtype = wtype;
  p.group_size = 128; p.block_rows = 128; p.block_cols = 128;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_gemm_q(&p, &plan), "gemm_q timing");
  // The GEMV passes the device runs without the GEMM: 16 rows each.
  ds_cuda_gemv_i4_params g4{};
  ds_cuda_gemv_fp8_params g8{};
  ds_cuda_plan gplan;
  if (wtype == DS_CUDA_GEMM_Q_I4) {
    g4.x = x.d(); g4.w = p.w; g4.scale = p.scale; g4.y = y.d(); g4.M = 16; g4.N = N; g4.K = K;
    g4.x_stride = K; g4.y_stride = N; g4.group_size = 128; g4.act_dtype = DS_CUDA_BF16;
    planOk(ds_cuda_plan_gemv_i4(&g4, &gplan), "gemv_i4 timing");
  } else {
    g8.x = x.d(); g8.w = p.w; g8.scale = p.scale; g8.y = y.d(); g8.M = 16; g8.N = N; g8.K = K;
    g8.x_stride = K; g8.y_stride = N; g8.block_rows = 128; g8.block_cols = 128; g8.act_dtype = DS_CUDA_BF16;
    planOk(ds_cuda_plan_gemv_fp8(&g8, &gplan), "gemv_fp8 timing");
  }
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  auto timeIt = [&](auto&& body) {
    body();
    CK(cudaEventRecord(e0));
    for (int i = 0; i < 20; ++i) body();
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return ms * 1e-3 / 20;
  };
  const double t_gemm = timeIt([&] { launch(plan, p); });
  const double t_gemv = timeIt([&] {
    for (int r0 = 0; r0 < M; r0 += 16) {
      if (wtype == DS_CUDA_GEMM_Q_I4) {
        g4.x = x.d() + size_t(r0) * K * 2, g4.y = y.d() + size_t(r0) * N * 2;
        launch(gplan, g4);
      } else {
        g8.x = x.d() + size_t(r0) * K * 2, g8.y = y.d() + size_t(r0) * N * 2;
        launch(gplan, g8);
      }
    }
  });
  const double flop = 2.0 * M * N * K;
  std::printf("time gemm_q %-4s M%d N%d K%d: %8.1f us (%6.1f TFLOP/s); GEMV passes %8.1f us: %.1fx\n", what, M, N, K,
              t_gemm * 1e6, flop / t_gemm * 1e-12, t_gemv * 1e6, t_gemv / t_gemm);
  (void)cudaFree(q.w);
  for (void* v : {q.scale.p, x.p, y.p}) (void)cudaFree(v);
}

}  // namespace

void gemmQStage() {
  for (int M : {17, 64, 130}) {
    checkGemmQ(DS_CUDA_GEMM_Q_I4, M, 200, 512, makeI4(200, 512, 64, false), M == 17, false, "i4 sym g64");
    checkGemmQ(DS_CUDA_GEMM_Q_I4, M, 64, 512, makeI4(64, 512, 128, true), true, false, "i4 asym g128");
    checkGemmQ(DS_CUDA_GEMM_Q_FP8, M, 200, 512, make8(200, 512, 128, 128, false), true, false, "fp8 128x128");
    checkGemmQ(DS_CUDA_GEMM_Q_FP8, M, 64, 176, make8(64, 176, 1, 176, false), false, false, "fp8 per channel");
    checkGemmQ(DS_CUDA_GEMM_Q_I8, M, 200, 176, make8(200, 176, 1, 176, true), M == 64, false, "i8 per channel");
  }
  checkGemmQ(DS_CUDA_GEMM_Q_I4, 40, 72, 176, makeI4(72, 176, 16, false), false, true, "i4 sym g16");
  CK(cudaDeviceSynchronize());
}

void gemmQTiming() {
  timeGemmQ(DS_CUDA_GEMM_Q_I4, "i4");
  timeGemmQ(DS_CUDA_GEMM_Q_FP8, "fp8");
}

}  // namespace dscheck

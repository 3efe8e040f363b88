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
#include "cpu/moe_routing.h"
#include "ds_cuda_kv_quant.h"

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

// ds_moe_gemm_* (the experts' grouped GEMM) against the definition: per routed row r of local
// expert e, x_r = x[row_token[r]] (gather) or h[r]; swiglu: silu(bf16(x_r Wg_e)) * bf16(x_r Wu_e);
// plain: x_r W_e. Routing from kernels/cpu/moe_routing.h (ds_moe_permute's definition), with a
// skewed choice so some experts get more than one 64-row tile and some none; y starts NaN.
// act8: ds_moe_gemm_wfp8_afp8_* (--quant-act fp8): x rows quantized per 1 x 128 block, the
// weights' codes and scales as stored (ds_gemm_fp8mma's definition).
void checkMoeGemm(bool fp8, bool swiglu, int T, int top_k, int E, int N, int K, bool act8 = false) {
  std::vector<int32_t> ids(size_t(T) * top_k);
  std::vector<float> rw(ids.size(), 1.0f);
  std::uniform_int_distribution<int> hot(0, 2), any(0, E - 1);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < top_k; ++j) {
      const int v = j == 0 ? hot(rng) : any(rng);  // experts 0-2 hot: several row tiles
      ids[size_t(t) * top_k + j] = j == 1 && v == E - 1 ? -1 : v;  // some slots skipped
    }
  ds::cpu::ExpertRows rows;
  ds::cpu::permuteByExpert(ids.data(), rw.data(), T, top_k, 0, E, &rows);
  const int R = rows.rows();
  const int max_rows = T * top_k;
  // Expert weights [E, N, K] (and the up projection): bf16 values, or FP8 with 128 x 128 scales.
  std::vector<std::vector<float>> wv(swiglu ? 2 : 1);
  std::vector<void*> wd(wv.size(), nullptr), sd(wv.size(), nullptr);
  std::vector<std::vector<uint8_t>> all_codes(wv.size());
  std::vector<std::vector<float>> all_scales(wv.size());
  for (size_t b = 0; b < wv.size(); ++b) {
    wv[b].resize(size_t(E) * N * K);
    if (fp8) {
      std::vector<uint8_t>& codes = all_codes[b];
      std::vector<float>& scales = all_scales[b];
      for (int e = 0; e < E; ++e) {
        Fp8Matrix m = randomFp8(N, K, 128, 128, 1.0f / 512, 3.0f / 512);
        codes.insert(codes.end(), m.q.begin(), m.q.end());
        scales.insert(scales.end(), m.scale.begin(), m.scale.end());
        for (size_t i = 0; i < m.f.size(); ++i) wv[b][size_t(e) * N * K + i] = roundBf16(m.f[i]);
        m.release();
      }
      CK(cudaMalloc(&wd[b], codes.size()));
      CK(cudaMemcpy(wd[b], codes.data(), codes.size(), cudaMemcpyHostToDevice));
      sd[b] = Buf(scales, DS_CUDA_F32).p;
    } else {
      wv[b] = randomVec(wv[b].size(), -0.1f, 0.1f, true);
      wd[b] = Buf(wv[b], DS_CUDA_BF16).p;
    }
  }
  const int xrows = swiglu ? T : max_rows;
  const auto x = randomVec(size_t(xrows) * K, -1, 1, true);
  Buf bx(x, DS_CUDA_BF16), by(std::vector<float>(size_t(max_rows) * N), DS_CUDA_BF16);
  CK(cudaMemset(by.p, 0xff, by.n * 2));
  IBuf start(rows.start), active(rows.active), tok(rows.row_token.empty() ? std::vector<int32_t>{0} : rows.row_token);
  ds_cuda_moe_gemv_params p{};
  p.x = bx.d(); p.w = reinterpret_cast<ds_cuda_ptr>(wd[0]); p.w2 = swiglu ? reinterpret_cast<ds_cuda_ptr>(wd[1]) : 0;
  p.w_scale = fp8 ? reinterpret_cast<ds_cuda_ptr>(sd[0]) : 0;
  p.w2_scale = fp8 && swiglu ? reinterpret_cast<ds_cuda_ptr>(sd[1]) : 0;
  p.y = by.d(); p.expert_start = start.d(); p.active = active.d(); p.row_token = tok.d();
  p.N = N; p.K = K; p.x_stride = K; p.y_stride = N; p.num_local = E; p.max_rows = max_rows;
  p.gather = p.swiglu = swiglu ? 1 : 0; p.act_dtype = DS_CUDA_BF16;
  p.weight_dtype = fp8 ? int32_t{DS_CUDA_FP8_E4M3} : int32_t{DS_CUDA_BF16};
  ds_cuda_plan plan;
  planOk(act8 ? ds_cuda_plan_moe_gemm_fp8mma(&p, &plan) : ds_cuda_plan_moe_gemm(&p, &plan), "moe_gemm");
  launch(plan, p);
  // act8: each x row quantized per 1 x 128 block, as the kernel does.
  std::vector<float> xq(x.size()), xs(x.size() / 128 + 1);
  if (act8)
    for (size_t row = 0; row < size_t(xrows); ++row)
      for (int blk = 0; blk < K / 128; ++blk) {
        const float* v = &x[row * K + size_t(blk) * 128];
        float amax = 0.0f;
        for (int k = 0; k < 128; ++k) amax = ds_kvq::absMaxStep(amax, v[k]);
        const float sc = amax > 0.0f ? ds_kvq::divF(amax, 448.0f) : 1.0f;
        xs[row * (K / 128) + blk] = sc;
        for (int k = 0; k < 128; ++k) xq[row * K + size_t(blk) * 128 + k] = ds_kvq::decodeFp8(ds_kvq::encodeFp8(ds_kvq::divF(v[k], sc)));
      }
  const int kbs = K / 128, nbs = (N + 127) / 128;
  std::vector<double> ref(size_t(R) * N), tol(ref.size());
  for (int e = 0; e < E; ++e)
    for (int r = rows.start[e]; r < rows.start[e + 1]; ++r) {
      const float* xr = &x[size_t(swiglu ? rows.row_token[r] : r) * K];
      for (int n = 0; n < N; ++n) {
        double acc[2] = {0, 0}, mag[2] = {0, 0};
        const size_t xrow = size_t(swiglu ? rows.row_token[r] : r);
        for (size_t b = 0; b < wv.size(); ++b) {
          if (!act8) {
            for (int k = 0; k < K; ++k) {
              const double t = double(wv[b][(size_t(e) * N + n) * K + k]) * xr[k];
              acc[b] += t, mag[b] += std::fabs(t);
            }
            continue;
          }
          for (int blk = 0; blk < kbs; ++blk) {
            double part = 0, pm = 0;
            for (int k = blk * 128; k < blk * 128 + 128; ++k) {
              const double t = double(xq[xrow * K + k]) * e4m3(all_codes[b][(size_t(e) * N + n) * K + k]);
              part += t, pm += std::fabs(t);
            }
            const double sc = double(xs[xrow * kbs + blk]) * all_scales[b][(size_t(e) * nbs + n / 128) * kbs + blk];
            acc[b] += part * sc, mag[b] += pm * sc;
          }
        }
        // FP8 MMA accumulates each block in a narrower adder than f32 on some GPUs: 1e-3 of it.
        const double rel = act8 ? 1e-3 : 2e-6;
        double v = acc[0], t = rel * mag[0];
        if (swiglu) {
          const double g = roundBf16(float(acc[0])), u = roundBf16(float(acc[1]));
          v = g / (1.0 + std::exp(-g)) * u;
          // the gate and up roundings may each move one bf16 step: bound their effect
          t = (std::fabs(u) + std::fabs(g)) * (1.0 / 128) + rel * (mag[0] + mag[1]);
        }
        ref[size_t(r) * N + n] = v;
        tol[size_t(r) * N + n] = t + outUlp(DS_CUDA_BF16, v) + 1e-6;
      }
    }
  std::vector<float> got = by.get();
  got.resize(ref.size());
  char name[128];
  std::snprintf(name, sizeof name, "moe_gemm w%s%s %s T%d k%d E%d N%d K%d rows %d", fp8 ? "fp8" : "bf16", act8 ? " afp8" : "",
                swiglu ? "swiglu" : "plain", T, top_k, E, N, K, R);
  report(name, got, ref, tol);
  for (size_t b = 0; b < wv.size(); ++b) (void)cudaFree(wd[b]), (void)cudaFree(sd[b]);
  for (void* v : {bx.p, by.p, start.p, active.p, tok.p}) (void)cudaFree(v);
}

// ds_gemm_fp8mma_abf16 (--quant-act fp8) against its definition: x rows quantized per 1 x 128
// block (scale amax / 448, ds_kvq::encodeFp8), per block sum of decode(qx) decode(qw) times both
// scales. Tolerance: FP8 MMA accumulation (not a full f32 adder on every GPU) 1e-3 of the block
// magnitudes, + output rounding. sm_89 and newer only.
void checkFp8Mma(int M, int N, int K, int br, int bc, bool bias) {
  const int xs = K + 8;
  Fp8Matrix w = randomFp8(N, K, br, bc, 1.0f / 512, 3.0f / 512);
  const auto x = randomVec(size_t(M) * xs, -1, 1, true), b = randomVec(N, -1, 1);
  Buf bx(x, DS_CUDA_BF16), bb(b, DS_CUDA_F32), by(std::vector<float>(size_t(M) * N), DS_CUDA_BF16);
  CK(cudaMemset(by.p, 0xff, by.n * 2));
  ds_cuda_gemm_q_params p{};
  p.x = bx.d(); p.w = reinterpret_cast<ds_cuda_ptr>(w.codes); p.scale = w.dscale.d(); p.bias = bias ? bb.d() : 0;
  p.y = by.d(); p.M = M; p.N = N; p.K = K; p.x_stride = xs; p.y_stride = N;
  p.wtype = DS_CUDA_GEMM_Q_FP8; p.block_rows = br; p.block_cols = bc;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_gemm_fp8mma(&p, &plan), "gemm_fp8mma");
  launch(plan, p);
  const int kb = (K + bc - 1) / bc;
  std::vector<double> ref(size_t(M) * N), tol(ref.size());
  std::vector<float> qx(static_cast<size_t>(K)), sx(static_cast<size_t>(K / 128));
  for (int m = 0; m < M; ++m) {
    for (int blk = 0; blk < K / 128; ++blk) {
      float amax = 0.0f;
      for (int k = 0; k < 128; ++k) amax = ds_kvq::absMaxStep(amax, x[size_t(m) * xs + blk * 128 + k]);
      const float s = amax > 0.0f ? ds_kvq::divF(amax, 448.0f) : 1.0f;
      sx[size_t(blk)] = s;
      for (int k = 0; k < 128; ++k)
        qx[size_t(blk * 128 + k)] = ds_kvq::decodeFp8(ds_kvq::encodeFp8(ds_kvq::divF(x[size_t(m) * xs + blk * 128 + k], s)));
    }
    for (int n = 0; n < N; ++n) {
      double acc = bias ? b[n] : 0.0, mag = std::fabs(acc);
      for (int blk = 0; blk < K / 128; ++blk) {
        double part = 0, pm = 0;
        for (int k = blk * 128; k < blk * 128 + 128; ++k) {
          const double t = double(qx[size_t(k)]) * e4m3(w.q[size_t(n) * K + k]);
          part += t, pm += std::fabs(t);
        }
        const double sc = double(sx[size_t(blk)]) * w.scale[size_t(n / br) * kb + blk * 128 / bc];
        acc += part * sc, mag += pm * sc;
      }
      ref[size_t(m) * N + n] = acc;
      tol[size_t(m) * N + n] = 1e-3 * mag + outUlp(DS_CUDA_BF16, acc) + 1e-6;
    }
  }
  char name[128];
  std::snprintf(name, sizeof name, "gemm_fp8mma M%d N%d K%d blocks %dx%d%s", M, N, K, br, bc, bias ? " +bias" : "");
  report(name, by.get(), ref, tol);
  w.release();
  for (void* v : {bx.p, bb.p, by.p}) (void)cudaFree(v);
}

}  // namespace

void gemmQStage() {
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  if (prop.major * 10 + prop.minor >= 89) {
    for (bool swiglu : {true, false}) checkMoeGemm(true, swiglu, 100, 4, 8, 200, 256, /*act8=*/true);
    for (int M : {17, 64, 130}) {
      checkFp8Mma(M, 200, 512, 128, 128, M == 17);
      checkFp8Mma(M, 64, 256, 1, 256, false);  // per-channel scales (--quant fp8)
    }
  } else {
    std::printf("SKIP gemm_fp8mma: sm_%d%d has no FP8 tensor cores\n", prop.major, prop.minor);
  }
  for (bool fp8 : {false, true})
    for (bool swiglu : {true, false}) checkMoeGemm(fp8, swiglu, 100, 4, 8, 200, 256);
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

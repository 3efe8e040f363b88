// One-shot GPU check of the CUDA kernel library: loads ds_cuda_kernels.fatbin, runs every kernel
// on random inputs through the host plans of ds_cuda_kernels.h (one params struct per launch, as
// the driver-API device will), compares with a simple CPU reference (double), prints one line per
// case and a summary, then times GEMV against the copy-bandwidth roofline for 8B-shape layers
// and the MLA decode (mla_check.cu's mlaTiming) for DeepSeek-V2-Lite's attention.
// The cuBLASLt stage (blaslt_check.cu) checks and times the device's prefill GEMMs; the MoE stage
// (moe_check.cu) checks the mixture-of-experts kernels (ds_cuda_moe.h) case by case and one layer;
// the MLA stage (mla_check.cu) the MLA decode (ds_cuda_mla.h) and the int4 GEMV (ds_cuda_layout.h);
// the 8-bit stage (fp8_check.cu) the GEMV over FP8 E4M3 / int8 block-scaled weights (ds_cuda_layout.h).
// Usage: ds_cuda_kernel_check [path/to/ds_cuda_kernels.fatbin]
// Exit: 0 all pass, 1 a mismatch, 77 no CUDA device (nothing run), 2 setup error.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "check_common.cuh"
#include "ds_cuda_kernels.h"
int checkSyntheticFill(cudaLibrary_t lib, int sm_count);  // tests/synthetic_check.cu: device = host fill
namespace dscheck {
void moeStage();  // tests/moe_check.cu: router, permutation, expert GEMVs, combine, one layer
void mlaStage();  // tests/mla_check.cu: MLA latent write + decode (split-KV), int4 GEMV
void mlaTiming(double bw);  // tests/mla_check.cu: MLA decode steps vs the copy-bandwidth roofline
void kvQuantStage();  // tests/kvq_check.cu: GQA write + decode + prefill over int8 / FP8 KV caches
void fp8Stage();  // tests/fp8_check.cu: the dense GEMV over FP8 E4M3 / int8 block-scaled weights
void collectiveStage();  // tests/collective_check.cu: the all-reduce's rank-ordered sum, bitwise
void gemmQStage();       // tests/gemm_q_check.cu: the quantized-weight prefill GEMM
void gemmQTiming();      // tests/gemm_q_check.cu: its time at an 8B projection vs GEMV passes
}

namespace {

using namespace dscheck;

// ---- GEMV -------------------------------------------------------------------------------------
void checkGemv(int wdt, int adt, int M, int N, int K, int sm_count_override) {
  auto x = randomVec(size_t(M) * K, -1, 1, adt == DS_CUDA_BF16);
  auto w = randomVec(size_t(N) * K, -0.05f, 0.05f, wdt == DS_CUDA_BF16);
  auto bias = randomVec(N);
  Buf bx(x, adt), bw(w, wdt), bb(bias, DS_CUDA_F32), by(std::vector<float>(size_t(M) * N), adt);
  ds_cuda_gemv_params p{};
  p.x = bx.d(); p.w = bw.d(); p.bias = bb.d(); p.y = by.d();
  p.M = M; p.N = N; p.K = K; p.x_stride = K; p.y_stride = N; p.act_dtype = adt; p.weight_dtype = wdt;
  ds_cuda_device_limits dev = g_dev;
  if (sm_count_override) dev.sm_count = sm_count_override;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_gemv(&p, &dev, &plan), "gemv");
  p.workspace = scratch(plan.workspace_bytes);
  launch(plan, p);
  std::vector<double> ref(size_t(M) * N), tol(ref.size());
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias[n], a = std::fabs(bias[n]);
      for (int k = 0; k < K; ++k) {
        s += double(w[size_t(n) * K + k]) * x[size_t(m) * K + k];
        a += std::fabs(double(w[size_t(n) * K + k]) * x[size_t(m) * K + k]);
      }
      ref[size_t(m) * N + n] = s;
      // f32 accumulation error bound (K-length sums, ~1e-6 relative per term) + output rounding.
      tol[size_t(m) * N + n] = 2e-6 * a + outUlp(adt, s) + 1e-7;
    }
  report("gemv w" + std::string(dn(wdt)) + " a" + dn(adt) + " M" + std::to_string(M) + " N" +
             std::to_string(N) + " K" + std::to_string(K) + " splits" + std::to_string(p.splits),
         by.get(), ref, tol);
  cudaFree(reinterpret_cast<void*>(p.workspace));
}

// ---- paged attention ----------------------------------------------------------------------------
struct Cache {
  int num_blocks, bs, kvh, D, maxb;
  std::vector<float> k, v;           // [num_blocks * bs, kvh, D]
  std::vector<int32_t> table;        // [S, maxb]
};
Cache makeCache(int S, int maxb, int bs, int kvh, int D, bool bf16) {
  Cache c{S * maxb + 3, bs, kvh, D, maxb, {}, {}, {}};
  c.k = randomVec(size_t(c.num_blocks) * bs * kvh * D, -1, 1, bf16);
  c.v = randomVec(c.k.size(), -1, 1, bf16);
  std::vector<int32_t> ids(c.num_blocks);
  for (int i = 0; i < c.num_blocks; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);  // tables are not in order
  c.table.assign(ids.begin(), ids.begin() + S * maxb);
  return c;
}
// out [Hq, D] for one query at pos of sequence s.
void refAttention(const Cache& c, const float* q, int Hq, int s, int pos, int window, float scale,
                  double* out) {
  const int group = Hq / c.kvh, lo = window > 0 ? std::max(0, pos - window + 1) : 0;
  for (int h = 0; h < Hq; ++h) {
    const int kh = h / group;
    std::vector<double> sc;
    double mx = -1e300;
    for (int j = lo; j <= pos; ++j) {
      const int64_t slot = int64_t(c.table[s * c.maxb + j / c.bs]) * c.bs + j % c.bs;
      double d = 0;
      for (int i = 0; i < c.D; ++i) d += double(q[h * c.D + i]) * c.k[(slot * c.kvh + kh) * c.D + i];
      sc.push_back(d * scale);
      mx = std::max(mx, d * scale);
    }
    double sum = 0;
    for (auto& x : sc) sum += (x = std::exp(x - mx));
    for (int i = 0; i < c.D; ++i) {
      double o = 0;
      for (int j = lo; j <= pos; ++j) {
        const int64_t slot = int64_t(c.table[s * c.maxb + j / c.bs]) * c.bs + j % c.bs;
        o += sc[j - lo] * c.v[(slot * c.kvh + kh) * c.D + i];
      }
      out[h * c.D + i] = o / sum;
    }
  }
}
ds_cuda_paged_kv bindKV(const Cache& c, const Buf& k, const Buf& v, const IBuf& pos, const IBuf& seq,
                        const IBuf& table, int dt) {
  ds_cuda_paged_kv kv{};
  kv.k_cache = k.d(); kv.v_cache = v.d(); kv.positions = pos.d(); kv.token_seq = seq.d();
  kv.block_table = table.d(); kv.num_blocks = c.num_blocks; kv.block_size = c.bs; kv.kv_heads = c.kvh;
  kv.head_dim = c.D; kv.max_blocks_per_seq = c.maxb; kv.dtype = dt;
  return kv;
}

// Decode: one token per sequence at the end of its context; its k, v written by ds_kv_write.
void checkDecode(int dt, int D, int Hq, int kvh, int window, int sm_override) {
  const bool bf = dt == DS_CUDA_BF16;
  const std::vector<int> lens = {1, 37, 300, 1500};
  const int S = int(lens.size()), bs = 16, maxb = (1500 + bs - 1) / bs;
  Cache c = makeCache(S, maxb, bs, kvh, D, bf);
  std::vector<int32_t> pos(S), seq(S);
  for (int s = 0; s < S; ++s) { pos[s] = lens[s] - 1; seq[s] = s; }
  auto q = randomVec(size_t(S) * Hq * D, -1, 1, bf);
  auto knew = randomVec(size_t(S) * kvh * D, -1, 1, bf), vnew = randomVec(knew.size(), -1, 1, bf);
  for (int s = 0; s < S; ++s) {  // the host copy gets the step's k, v too
    const int64_t slot = int64_t(c.table[s * maxb + pos[s] / bs]) * bs + pos[s] % bs;
    std::copy_n(&knew[size_t(s) * kvh * D], kvh * D, &c.k[slot * kvh * D]);
    std::copy_n(&vnew[size_t(s) * kvh * D], kvh * D, &c.v[slot * kvh * D]);
  }
  Buf bk(std::vector<float>(c.k.size()), dt), bv(std::vector<float>(c.v.size()), dt);
  { Buf tk(c.k, dt), tv(c.v, dt);  // fill the cache, then overwrite the step's slots with garbage
    CK(cudaMemcpy(bk.p, tk.p, c.k.size() * (bf ? 2 : 4), cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(bv.p, tv.p, c.v.size() * (bf ? 2 : 4), cudaMemcpyDeviceToDevice)); }
  IBuf bpos(pos), bseq(seq), btab(c.table);
  Buf bq(q, dt), bkn(knew, dt), bvn(vnew, dt), bo(std::vector<float>(q.size()), dt);
  ds_cuda_kv_write_params wp{};
  wp.kv = bindKV(c, bk, bv, bpos, bseq, btab, dt);
  wp.k = bkn.d(); wp.v = bvn.d(); wp.num_tokens = S;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_kv_write(&wp, &plan), "kv_write");
  launch(plan, wp);
  ds_cuda_attn_decode_params p{};
  p.kv = wp.kv; p.q = bq.d(); p.out = bo.d(); p.num_tokens = S; p.q_heads = Hq;
  p.sliding_window = window; p.scale = 1.0f / std::sqrt(float(D)); p.max_context = 1500;
  ds_cuda_device_limits dev = g_dev;
  if (sm_override) dev.sm_count = sm_override;
  planOk(ds_cuda_plan_attn_decode(&p, &dev, &plan), "attn_decode");
  p.workspace = scratch(plan.workspace_bytes);
  launch(plan, p);
  std::vector<double> ref(q.size()), tol(q.size());
  for (int s = 0; s < S; ++s)
    refAttention(c, &q[size_t(s) * Hq * D], Hq, s, pos[s], window, p.scale, &ref[size_t(s) * Hq * D]);
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = (bf ? 4e-3 : 2e-5) + outUlp(dt, ref[i]);
  char name[96];
  std::snprintf(name, sizeof name, "kv_write+attn_decode %s d%d q%d/kv%d win%d splits%d", dn(dt), D,
                Hq, kvh, window, p.splits);
  report(name, bo.get(), ref, tol);
  cudaFree(reinterpret_cast<void*>(p.workspace));
}

// Prefill: sequences with a cached prefix and several new tokens each.
void checkPrefill(int dt, int D, int Hq, int kvh, int window) {
  const bool bf = dt == DS_CUDA_BF16;
  const std::vector<int> prefix = {0, 5, 33}, qlen = {20, 1, 70};
  const int S = 3, bs = 16, maxb = 8;
  Cache c = makeCache(S, maxb, bs, kvh, D, bf);
  std::vector<int32_t> pos, seq, start = {0};
  for (int s = 0; s < S; ++s) {
    for (int i = 0; i < qlen[s]; ++i) { pos.push_back(prefix[s] + i); seq.push_back(s); }
    start.push_back(int32_t(pos.size()));
  }
  const int T = int(pos.size());
  auto q = randomVec(size_t(T) * Hq * D, -1, 1, bf);
  Buf bk(c.k, dt), bv(c.v, dt), bq(q, dt), bo(std::vector<float>(q.size()), dt);
  IBuf bpos(pos), bseq(seq), btab(c.table), bstart(start);
  ds_cuda_attn_prefill_params p{};
  p.kv = bindKV(c, bk, bv, bpos, bseq, btab, dt);
  p.q = bq.d(); p.out = bo.d(); p.seq_q_start = bstart.d(); p.num_seqs = S; p.max_q_len = 70;
  p.q_heads = Hq; p.sliding_window = window; p.scale = 1.0f / std::sqrt(float(D));
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_attn_prefill(&p, &g_dev, &plan), "attn_prefill");
  launch(plan, p);
  std::vector<double> ref(q.size()), tol(q.size());
  for (int t = 0; t < T; ++t)
    refAttention(c, &q[size_t(t) * Hq * D], Hq, seq[t], pos[t], window, p.scale, &ref[size_t(t) * Hq * D]);
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = (bf ? 4e-3 : 2e-5) + outUlp(dt, ref[i]);
  char name[96];
  std::snprintf(name, sizeof name, "attn_prefill %s d%d q%d/kv%d win%d", dn(dt), D, Hq, kvh, window);
  report(name, bo.get(), ref, tol);
}

// ---- norms, rope, elementwise ---------------------------------------------------------------------
void checkNorm(int dt, bool add, int rows, int cols) {
  const bool bf = dt == DS_CUDA_BF16;
  auto x = randomVec(size_t(rows) * cols, -2, 2, bf), r = randomVec(x.size(), -2, 2, bf);
  auto w = randomVec(cols, 0.5f, 1.5f, bf);
  Buf bx(x, dt), br(r, dt), bw(w, dt), by(std::vector<float>(x.size()), dt), bs(std::vector<float>(x.size()), dt);
  ds_cuda_rms_norm_params p{};
  p.x = bx.d(); p.residual = add ? br.d() : 0; p.weight = bw.d(); p.y = by.d(); p.sum = add ? bs.d() : 0;
  p.rows = rows; p.cols = cols; p.eps = 1e-5f; p.dtype = dt; p.add = add;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_rms_norm(&p, &plan), "rms_norm");
  launch(plan, p);
  std::vector<double> ref(x.size()), tol(x.size());
  for (int i = 0; i < rows; ++i) {
    double ss = 0;
    std::vector<double> v(cols);
    for (int j = 0; j < cols; ++j) {
      double a = x[size_t(i) * cols + j];
      if (add) a = bf ? roundBf16(float(a + r[size_t(i) * cols + j])) : float(a + r[size_t(i) * cols + j]);
      v[j] = a;
      ss += a * a;
    }
    const double inv = 1.0 / std::sqrt(ss / cols + 1e-5);
    for (int j = 0; j < cols; ++j) {
      const double n = bf ? roundBf16(float(v[j] * inv)) : v[j] * inv;
      ref[size_t(i) * cols + j] = n * w[j];
      // bf16: the intermediate rounding may land one bf16 step away, then the output rounding.
      tol[size_t(i) * cols + j] = bf ? std::fabs(n * w[j]) * (2.0 / 256) + 1e-6 : std::fabs(n * w[j]) * 1e-5 + 1e-6;
    }
  }
  report(std::string(add ? "add_rms_norm " : "rms_norm ") + dn(dt) + " " + std::to_string(rows) + "x" +
             std::to_string(cols), by.get(), ref, tol);
}

void checkRope(int dt, bool interleaved, int rot_dim) {
  const bool bf = dt == DS_CUDA_BF16;
  const int T = 7, H = 4, D = 128, half = rot_dim / 2;
  auto x = randomVec(size_t(T) * H * D, -1, 1, bf);
  std::vector<int32_t> pos = {0, 1, 2, 17, 511, 4095, 100000};
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) inv[i] = 1.0f / std::pow(500000.0f, float(2 * i) / float(rot_dim));
  Buf bx(x, dt), binv(inv, DS_CUDA_F32);
  IBuf bpos(pos);
  ds_cuda_rope_params p{};
  p.x = bx.d(); p.positions = bpos.d(); p.inv_freq = binv.d(); p.num_tokens = T; p.heads = H;
  p.head_dim = D; p.rot_dim = rot_dim; p.token_stride = H * D; p.interleaved = interleaved;
  p.attention_factor = 1.0f; p.dtype = dt;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_rope(&p, &plan), "rope");
  launch(plan, p);
  std::vector<double> ref(x.begin(), x.end()), tol(x.size());
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < half; ++i) {
        const float f = float(pos[t]) * inv[i];
        const double c = float(std::cos(double(f))), s = float(std::sin(double(f)));
        const size_t b = (size_t(t) * H + h) * D;
        const size_t ia = interleaved ? b + 2 * i : b + i, ib = interleaved ? b + 2 * i + 1 : b + i + half;
        ref[ia] = x[ia] * c - x[ib] * s;
        ref[ib] = x[ib] * c + x[ia] * s;
      }
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = 1e-6 + outUlp(dt, ref[i]) + 2e-7;
  report(std::string("rope ") + dn(dt) + (interleaved ? " interleaved" : " half-split") + " rot" +
             std::to_string(rot_dim), bx.get(), ref, tol);
}

void checkElementwise(int dt) {
  const bool bf = dt == DS_CUDA_BF16;
  ds_cuda_plan plan;
  {  // swiglu over the two halves of a merged [rows, 2 cols] buffer
    const int rows = 5, cols = 1000;
    auto gu = randomVec(size_t(rows) * 2 * cols, -4, 4, bf);
    Buf bgu(gu, dt), by(std::vector<float>(size_t(rows) * cols), dt);
    ds_cuda_swiglu_params p{};
    p.gate = bgu.d(); p.up = bgu.d() + uint64_t(cols) * (bf ? 2 : 4); p.y = by.d();
    p.rows = rows; p.cols = cols; p.gate_stride = 2 * cols; p.up_stride = 2 * cols; p.y_stride = cols; p.dtype = dt;
    planOk(ds_cuda_plan_swiglu(&p, &plan), "swiglu");
    launch(plan, p);
    std::vector<double> ref(size_t(rows) * cols), tol(ref.size());
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) {
        const double g = gu[size_t(r) * 2 * cols + c], u = gu[size_t(r) * 2 * cols + cols + c];
        ref[size_t(r) * cols + c] = g / (1 + std::exp(-g)) * u;
        tol[size_t(r) * cols + c] = 1e-6 * (1 + std::fabs(u * g)) + outUlp(dt, ref[size_t(r) * cols + c]);
      }
    report(std::string("swiglu ") + dn(dt), by.get(), ref, tol);
  }
  {
    const int64_t n = 100003;
    auto a = randomVec(n, -1, 1, bf), b = randomVec(n, -1, 1, bf);
    Buf ba(a, dt), bb(b, dt), by(std::vector<float>(n), dt);
    ds_cuda_add_params p{};
    p.a = ba.d(); p.b = bb.d(); p.y = by.d(); p.n = n; p.dtype = dt;
    planOk(ds_cuda_plan_add(&p, &plan), "add");
    launch(plan, p);
    std::vector<double> ref(n), tol(n);
    for (int64_t i = 0; i < n; ++i) { ref[i] = double(a[i]) + b[i]; tol[i] = outUlp(dt, ref[i]); }
    report(std::string("add ") + dn(dt), by.get(), ref, tol);
  }
  {  // vocab-parallel rank 1 of rows [100, 200): other ids give zero rows
    const int rows = 100, H = 264, off = 100;
    std::vector<int32_t> ids = {150, 100, 199, 3, 200, 120};
    auto w = randomVec(size_t(rows) * H, -1, 1, bf);
    Buf bw(w, dt), by(std::vector<float>(ids.size() * H, 7.0f), dt);
    IBuf bids(ids);
    ds_cuda_embed_params p{};
    p.ids = bids.d(); p.weight = bw.d(); p.y = by.d(); p.num_tokens = int(ids.size()); p.hidden = H;
    p.table_rows = rows; p.row_offset = off; p.dtype = dt;
    planOk(ds_cuda_plan_embed(&p, &plan), "embed");
    launch(plan, p);
    std::vector<double> ref(ids.size() * H, 0.0), tol(ref.size(), 0.0);
    for (size_t t = 0; t < ids.size(); ++t)
      if (ids[t] >= off && ids[t] < off + rows)
        for (int i = 0; i < H; ++i) ref[t * H + i] = w[size_t(ids[t] - off) * H + i];
    report(std::string("embed ") + dn(dt), by.get(), ref, tol);
  }
  {
    const int xr = 9, H = 300;
    std::vector<int32_t> rows = {8, 0, 3, 3};
    auto x = randomVec(size_t(xr) * H, -1, 1, bf);
    Buf bx(x, dt), by(std::vector<float>(rows.size() * H), dt);
    IBuf brows(rows);
    ds_cuda_gather_rows_params p{};
    p.x = bx.d(); p.rows = brows.d(); p.y = by.d(); p.num_rows = int(rows.size()); p.x_rows = xr;
    p.hidden = H; p.dtype = dt;
    planOk(ds_cuda_plan_gather_rows(&p, &plan), "gather_rows");
    launch(plan, p);
    std::vector<double> ref(rows.size() * H), tol(ref.size(), 0.0);
    for (size_t r = 0; r < rows.size(); ++r)
      for (int i = 0; i < H; ++i) ref[r * H + i] = x[size_t(rows[r]) * H + i];
    report(std::string("gather_rows ") + dn(dt), by.get(), ref, tol);
  }
  {  // ties (lowest index wins), NaN (never wins), all -inf (index 0)
    const int R = 4, V = 128256;
    auto x = randomVec(size_t(R) * V, -10, 10, bf);
    x[size_t(0) * V + 70000] = 20; x[size_t(0) * V + 90000] = 20; x[size_t(0) * V + 5] = NAN;
    x[size_t(1) * V + V - 1] = 30;
    for (int i = 0; i < V; ++i) x[size_t(2) * V + i] = -INFINITY;
    x[size_t(3) * V + 3] = 15; x[size_t(3) * V + 2] = NAN;
    Buf bx(x, dt);
    std::vector<int32_t> zero(R);
    IBuf bout(zero);
    ds_cuda_argmax_params p{};
    p.x = bx.d(); p.out = bout.d(); p.rows = R; p.vocab = V; p.x_stride = V; p.dtype = dt;
    planOk(ds_cuda_plan_argmax(&p, &plan), "argmax");
    launch(plan, p);
    std::vector<int32_t> got(R);
    CK(cudaMemcpy(got.data(), bout.p, R * 4, cudaMemcpyDeviceToHost));
    std::vector<float> gotf(got.begin(), got.end());
    std::vector<double> ref(R), tol(R, 0.0);
    for (int r = 0; r < R; ++r) {
      int best = -1;
      for (int i = 0; i < V; ++i) {
        const float v = x[size_t(r) * V + i];
        if (std::isnan(v)) continue;
        if (best < 0 || v > x[size_t(r) * V + best]) best = i;
      }
      ref[r] = best < 0 ? 0 : best;
    }
    report(std::string("argmax ") + dn(dt), gotf, ref, tol);
  }
}

// ---- GEMV vs the bandwidth roofline ----------------------------------------------------------------
double copyBandwidth() {
  const size_t bytes = size_t(1) << 30;
  void *a, *b;
  CK(cudaMalloc(&a, bytes));
  CK(cudaMalloc(&b, bytes));
  CK(cudaMemset(a, 1, bytes));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  CK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  CK(cudaEventRecord(e0));
  const int iters = 10;
  for (int i = 0; i < iters; ++i) CK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  CK(cudaEventRecord(e1));
  CK(cudaEventSynchronize(e1));
  float ms;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes * iters / (ms * 1e-3);  // read + write
}

void timeGemv(double bw, int M, int N, int K) {
  // Enough weight copies to exceed any L2 (>= 256 MiB cycled), so every launch streams from DRAM.
  const size_t wbytes = size_t(N) * K * 2;
  const int copies = int(std::max<size_t>(1, (size_t(256) << 20) / wbytes + 1));
  std::vector<void*> ws(copies);
  for (auto& w : ws) { CK(cudaMalloc(&w, wbytes)); CK(cudaMemset(w, 0, wbytes)); }
  Buf x(randomVec(size_t(M) * K, -1, 1, true), DS_CUDA_BF16), y(std::vector<float>(size_t(M) * N), DS_CUDA_BF16);
  ds_cuda_gemv_params p{};
  p.x = x.d(); p.y = y.d(); p.M = M; p.N = N; p.K = K; p.x_stride = K; p.y_stride = N;
  p.act_dtype = DS_CUDA_BF16; p.weight_dtype = DS_CUDA_BF16;
  p.w = reinterpret_cast<ds_cuda_ptr>(ws[0]);
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_gemv(&p, &g_dev, &plan), "gemv timing");
  p.workspace = scratch(plan.workspace_bytes);
  for (int i = 0; i < 3; ++i) launch(plan, p);
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  const int iters = 100;
  CK(cudaEventRecord(e0));
  for (int i = 0; i < iters; ++i) {
    p.w = reinterpret_cast<ds_cuda_ptr>(ws[i % copies]);
    launch(plan, p);
  }
  CK(cudaEventRecord(e1));
  CK(cudaEventSynchronize(e1));
  float ms;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  const double t = ms * 1e-3 / iters;
  const double bytes = double(wbytes) + double(M) * K * 2 + double(M) * N * 2;
  const double roof = bytes / bw;
  std::printf("time gemv bf16 M%-2d N%-6d K%-6d splits%-2d %8.2f us  %7.1f GB/s  roofline %7.2f us  %5.1f%% of roofline\n",
              M, N, K, p.splits, t * 1e6, bytes / t * 1e-9, roof * 1e6, 100.0 * roof / t);
  for (auto w : ws) cudaFree(w);
  cudaFree(reinterpret_cast<void*>(p.workspace));
}

}  // namespace

int main(int argc, char** argv) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    std::printf("no CUDA device: %s; nothing was run\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount returned 0");
    return 77;
  }
  const char* path = argc > 1 ? argv[1] : "build/kernels/cuda/ds_cuda_kernels.fatbin";
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d, %d SMs); fatbin: %s\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, path);
  CK(cudaLibraryLoadFromFile(&g_lib, path, nullptr, nullptr, 0, nullptr, nullptr, 0));
  g_dev.sm_count = prop.multiProcessorCount;
  g_dev.max_shared_per_block = int(prop.sharedMemPerBlock);
  // Every symbol the header lists must be in the fatbin.
  for (const char* const* s = ds_cuda_kernel_symbols(); *s; ++s) {
    cudaKernel_t k;
    if (cudaLibraryGetKernel(&k, g_lib, *s) != cudaSuccess) {
      std::printf("FAIL symbol %s not in the fatbin\n", *s);
      ++g_fail;
    }
  }

  for (int adt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (int M : {1, 3, 8, 16})
      for (int K : {1024, 4096}) {
        checkGemv(DS_CUDA_BF16, adt, M, 520, K, 0);           // the device's own split choice
        if (M == 3) checkGemv(DS_CUDA_BF16, adt, M, 520, K, 1);  // forced: no split
      }
  checkGemv(DS_CUDA_F32, DS_CUDA_F32, 1, 300, 4096, 0);
  checkGemv(DS_CUDA_F32, DS_CUDA_F32, 5, 300, 2048, 0);
  // K not a multiple of the 16-byte vector (stories260K's MLP: 172): ds_gemv_any_*.
  checkGemv(DS_CUDA_BF16, DS_CUDA_BF16, 3, 64, 172, 0);
  checkGemv(DS_CUDA_BF16, DS_CUDA_F32, 1, 64, 172, 0);
  checkGemv(DS_CUDA_F32, DS_CUDA_F32, 2, 64, 171, 0);
  for (int dt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (int D : {64, 128, 256}) {
      checkDecode(dt, D, 8, 2, 0, 0);
      checkDecode(dt, D, 12, 2, 100, 0);  // group 6: a partial head chunk; sliding window
      checkDecode(dt, D, 4, 4, 0, 1);     // forced one split (writes out directly)
      checkPrefill(dt, D, 8, 2, 0);
      checkPrefill(dt, D, 6, 2, 16);
    }
  // Small heads (the tiny test models: 8 and 16): ds_attn_small through the prefill plan.
  for (int dt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (int D : {8, 16, 32}) {
      checkPrefill(dt, D, 8, 2, 0);
      checkPrefill(dt, D, 6, 2, 16);
    }
  for (int dt : {DS_CUDA_BF16, DS_CUDA_F32}) {
    checkNorm(dt, false, 5, 4096);
    checkNorm(dt, true, 5, 4096);
    checkNorm(dt, true, 3, 64);
    checkRope(dt, false, 128);
    checkRope(dt, true, 128);
    checkRope(dt, false, 64);
    checkElementwise(dt);
  }
  moeStage();
  mlaStage();
  fp8Stage();
  kvQuantStage();
  collectiveStage();
  gemmQStage();
  blasLtStage();
  const int synth_failed = checkSyntheticFill(g_lib, g_dev.sm_count);  // 7 dtypes x 15 cases
  g_fail += synth_failed, g_pass += 7 * 5 * 3 - synth_failed;
  CK(cudaDeviceSynchronize());
  std::printf("summary: %d passed, %d failed\n", g_pass, g_fail);

  const double bw = copyBandwidth();
  std::printf("device copy bandwidth (cudaMemcpy D2D, read + write): %.1f GB/s\n", bw * 1e-9);
  for (int M : {1, 8}) {
    timeGemv(bw, M, 4096, 4096);   // q/o projections of an 8B layer
    timeGemv(bw, M, 14336, 4096);  // gate or up
    timeGemv(bw, M, 4096, 14336);  // down
  }
  mlaTiming(bw);
  gemmQTiming();
  blasLtTiming();
  return g_fail ? 1 : 0;
}

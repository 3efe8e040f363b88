// The mixture-of-experts stage of ds_cuda_kernel_check (include/ds_cuda_moe.h), counted in
// g_pass / g_fail like the other stages:
//   1. ds_moe_route against the host router's semantics (kernels/cpu/moe.cpp moeGate) in double:
//      ids exact, weights to 1e-5 relative; tokens whose reference has a near-tie (two
//      candidates within 1e-6 relative at a decision the f32 kernel may take either way) are
//      skipped and counted in the case's name.
//   2. ds_moe_permute against ds::cpu::permuteByExpert (kernels/cpu/moe_routing.h), bit for bit.
//   3. One MoE layer (permute -> gate/up SwiGLU -> down -> combine) with bf16 and FP8 block-scaled
//      weights, bf16 and f32 activations: each launch against a double reference over the
//      device's own inputs of that launch (per-element bounds), then the whole layer against a
//      reference from scratch.
#include <functional>
#include <utility>

#include "check_common.cuh"
#include "cpu/moe_routing.h"
#include "ds_cuda_moe.h"

namespace dscheck {
namespace {

template <class... B>
void freeAll(const B&... b) {
  ((void)cudaFree(b.p), ...);
}
std::vector<int32_t> getInts(const IBuf& b, size_t n, size_t offset = 0) {
  std::vector<int32_t> v(n);
  if (n) CK(cudaMemcpy(v.data(), static_cast<int32_t*>(b.p) + offset, n * 4, cudaMemcpyDeviceToHost));
  return v;
}

// ---- 1. router ---------------------------------------------------------------------------------
struct RouteCfg {
  const char* name;
  int E, top_k, n_group, topk_group, scoring, method, norm;
  float scale;
  bool bias;
};

// Indices by value, larger first, the lower index on ties (the host's topK order).
std::vector<int> rankDesc(const std::vector<double>& v) {
  std::vector<int> o(v.size());
  for (size_t i = 0; i < o.size(); ++i) o[i] = int(i);
  std::stable_sort(o.begin(), o.end(), [&](int a, int b) { return v[a] > v[b]; });
  return o;
}
// Two different finite candidates that f32 rounding may order either way.
bool nearTie(double a, double b) {
  return std::isfinite(a) && std::isfinite(b) && a != b &&
         std::fabs(a - b) <= 1e-6 * std::max(std::fabs(a), std::fabs(b));
}

// moeGate for one token's logits in double: ids and weights; false when a decision (the group
// cut, the expert cut or the order of the chosen experts) is a near-tie.
bool refRoute(const RouteCfg& c, const float* lg, const float* bias, int32_t* ids, double* w) {
  const int E = c.E;
  std::vector<double> score(E), choice(E);
  if (c.scoring == DS_CUDA_MOE_SOFTMAX) {
    const double mx = *std::max_element(lg, lg + E);
    double sum = 0;
    for (int i = 0; i < E; ++i) sum += score[i] = std::exp(double(lg[i]) - mx);
    for (auto& s : score) s /= sum;
  } else {
    for (int i = 0; i < E; ++i) score[i] = 1.0 / (1.0 + std::exp(-double(lg[i])));
  }
  for (int i = 0; i < E; ++i) choice[i] = score[i] + (bias ? bias[i] : 0.0);  // bias: choice only
  bool tie = false;
  if (c.method != DS_CUDA_MOE_GREEDY && c.n_group > 1) {
    const int G = c.n_group, per = E / G;
    const bool v2 = c.method == DS_CUDA_MOE_GROUP_LIMITED_GREEDY;
    std::vector<double> gs(G);
    for (int g = 0; g < G; ++g) {
      std::vector<double> v(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(v.begin(), v.end(), std::greater<double>());
      gs[g] = v2 || per < 2 ? v[0] : v[0] + v[1];  // V2: the best; V3: the sum of the top-2
    }
    const std::vector<int> go = rankDesc(gs);
    if (c.topk_group < G) tie |= nearTie(gs[go[c.topk_group - 1]], gs[go[c.topk_group]]);
    std::vector<char> keep(G, 0);
    for (int k = 0; k < c.topk_group; ++k) keep[go[k]] = 1;
    for (int i = 0; i < E; ++i)
      if (!keep[i / per]) {
        choice[i] = v2 ? 0.0 : -INFINITY;  // V2 masks scores and choices with 0, V3 with -inf
        if (v2) score[i] = 0.0;
      }
  }
  const std::vector<int> o = rankDesc(choice);
  for (int j = 0; j < c.top_k && j + 1 < E; ++j) tie |= nearTie(choice[o[j]], choice[o[j + 1]]);
  double den = 0;
  for (int j = 0; j < c.top_k; ++j) den += score[o[j]];
  for (int j = 0; j < c.top_k; ++j) {
    ids[j] = o[j];
    w[j] = (c.norm ? score[o[j]] / (den + 1e-20) : score[o[j]]) * c.scale;
  }
  return !tie;
}

void checkRoute(const RouteCfg& c, int T) {
  auto lg = randomVec(size_t(T) * c.E, -3, 3);
  std::uniform_int_distribution<int> pick(0, c.E - 1);
  for (int t = 0; t < T; ++t) {  // exact ties at the top: the lower index must win
    float* row = &lg[size_t(t) * c.E];
    row[pick(rng)] = *std::max_element(row, row + c.E);
  }
  const auto bias = randomVec(c.E, -0.05f, 0.05f);
  const int K = c.top_k;
  Buf blg(lg, DS_CUDA_F32), bbias(bias, DS_CUDA_F32), bw(std::vector<float>(size_t(T) * K, -1), DS_CUDA_F32);
  IBuf bid(std::vector<int32_t>(size_t(T) * K, -7));
  ds_cuda_moe_route_params p{};
  p.logits = blg.d(); p.correction_bias = c.bias ? bbias.d() : 0; p.weights = bw.d(); p.ids = bid.d();
  p.num_tokens = T; p.num_experts = c.E; p.top_k = K; p.n_group = c.n_group;
  p.topk_group = c.topk_group; p.scoring = c.scoring; p.method = c.method;
  p.norm_topk_prob = c.norm; p.routed_scaling_factor = c.scale;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_moe_route(&p, &plan), "moe_route");
  launch(plan, p);
  const std::vector<float> gw = bw.get();
  const std::vector<int32_t> gid = getInts(bid, size_t(T) * K);
  std::vector<float> gotId, gotW;
  std::vector<double> refId, refW, tolId, tolW;
  std::vector<int32_t> ids(K);
  std::vector<double> w(K);
  int skipped = 0;
  for (int t = 0; t < T; ++t) {
    if (!refRoute(c, &lg[size_t(t) * c.E], c.bias ? bias.data() : nullptr, ids.data(), w.data())) {
      ++skipped;
      continue;
    }
    for (int j = 0; j < K; ++j) {
      gotId.push_back(float(gid[size_t(t) * K + j]));
      refId.push_back(ids[j]);
      tolId.push_back(0.0);
      gotW.push_back(gw[size_t(t) * K + j]);
      refW.push_back(w[j]);
      tolW.push_back(1e-5 * std::fabs(w[j]));
    }
  }
  const std::string name = std::string("moe_route ") + c.name + " T" + std::to_string(T);
  const std::string ties = " (" + std::to_string(skipped) + " near-tie tokens skipped)";
  report(name + " ids" + ties, gotId, refId, tolId);
  report(name + " weights", gotW, refW, tolW);
  freeAll(blg, bbias, bw, bid);
}

// ---- 2. permutation ----------------------------------------------------------------------------
// ids with repeats (also inside a token), ~5% -1, ~20% one hot expert, the rest in [0, id_hi).
void checkPermute(int T, int K, int first, int L, int id_hi, int hot) {
  const int slots = T * K;
  std::vector<int32_t> ids(slots);
  std::uniform_real_distribution<float> u01(0, 1);
  std::uniform_int_distribution<int> any(0, id_hi - 1);
  for (auto& id : ids) {
    const float r = u01(rng);
    id = r < 0.05f ? -1 : r < 0.25f ? hot : any(rng);
  }
  const auto w = randomVec(slots, 0, 1);
  ds::cpu::ExpertRows ref;
  ds::cpu::permuteByExpert(ids.data(), w.data(), T, K, first, L, &ref);
  const std::vector<int32_t> junk(std::max(slots, L + 1), 0x7badbeef);  // every output word unset
  IBuf bids(ids), bstart(junk), bactive(junk), btok(junk), brw(junk), bslot(junk);
  Buf bw(w, DS_CUDA_F32);
  ds_cuda_moe_permute_params p{};
  p.ids = bids.d(); p.weights = bw.d(); p.expert_start = bstart.d(); p.active = bactive.d();
  p.row_token = btok.d(); p.row_weight = brw.d(); p.slot_row = bslot.d();
  p.num_tokens = T; p.top_k = K; p.first_expert = first; p.num_local = L;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_moe_permute(&p, &plan), "moe_permute");
  launch(plan, p);
  const int rows = ref.rows();
  std::vector<float> got;
  std::vector<double> want;
  // Raw words compared bit for bit: ints (< 2^24) and floats shown as values; a difference of
  // bits only (+0 / -0) is shown as NaN so that it fails too.
  auto add = [&](const std::vector<int32_t>& g, const void* r, size_t n, bool isFloat) {
    for (size_t i = 0; i < n; ++i) {
      int32_t rw;
      std::memcpy(&rw, static_cast<const char*>(r) + 4 * i, 4);
      float gf, rf;
      std::memcpy(&gf, &g[i], 4);
      std::memcpy(&rf, &rw, 4);
      const double gv = isFloat ? double(gf) : double(g[i]), rv = isFloat ? double(rf) : double(rw);
      got.push_back(g[i] != rw && gv == rv ? NAN : float(gv));
      want.push_back(rv);
    }
  };
  add(getInts(bstart, L + 1), ref.start.data(), L + 1, false);
  add(getInts(bactive, L + 1), ref.active.data(), L + 1, false);
  add(getInts(btok, rows), ref.row_token.data(), rows, false);
  add(getInts(brw, rows), ref.row_weight.data(), rows, true);
  add(getInts(bslot, slots), ref.slot_row.data(), slots, false);
  char name[128];
  std::snprintf(name, sizeof name, "moe_permute T%d k%d experts [%d, %d) rows %d active %d (bit-exact)",
                T, K, first, first + L, rows, ref.active[L]);
  report(name, got, want, std::vector<double>(want.size(), 0.0));
  freeAll(bids, bstart, bactive, btok, brw, bslot, bw);
}

// ---- 3. one layer ------------------------------------------------------------------------------
// Expert weights [L, N, K]: the f32 values the kernel computes with (bf16, or FP8 code * block
// scale rounded to f32, exact in double first) and the device copies.
struct Experts {
  std::vector<float> f;
  Buf w, scale;  // scale: FP8 only (else unset)
  void* codes = nullptr;
  ds_cuda_ptr wd() const { return codes ? reinterpret_cast<ds_cuda_ptr>(codes) : w.d(); }
  ds_cuda_ptr sd() const { return codes ? scale.d() : 0; }
  void release() { codes ? (void)cudaFree(codes) : (void)cudaFree(w.p); if (scale.p) (void)cudaFree(scale.p); }
};
Experts makeExperts(int wdt, int L, int N, int K) {
  Experts x;
  const size_t n = size_t(L) * N * K;
  if (wdt == DS_CUDA_BF16) {
    x.f = randomVec(n, -0.1f, 0.1f, true);
    x.w = Buf(x.f, DS_CUDA_BF16);
    return x;
  }
  const int B = DS_CUDA_MOE_FP8_BLOCK, nb = (N + B - 1) / B, kb = (K + B - 1) / B;
  std::vector<uint8_t> codes(n);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& c : codes)
    do c = uint8_t(byte(rng)); while (((c >> 3) & 15) == 15);  // finite: exponent not all ones
  const auto s = randomVec(size_t(L) * nb * kb, 0.5f / 512, 1.5f / 512);  // |w| <= 240 * s
  x.f.resize(n);
  for (int e = 0; e < L; ++e)
    for (int r = 0; r < N; ++r)
      for (int k = 0; k < K; ++k) {
        const size_t i = (size_t(e) * N + r) * K + k;
        x.f[i] = float(e4m3(codes[i]) * s[(size_t(e) * nb + r / B) * kb + k / B]);
      }
  CK(cudaMalloc(&x.codes, n));
  CK(cudaMemcpy(x.codes, codes.data(), n, cudaMemcpyHostToDevice));
  x.scale = Buf(s, DS_CUDA_F32);
  return x;
}

double rndAct(int adt, double v) { return adt == DS_CUDA_BF16 ? roundBf16(float(v)) : double(float(v)); }
double silu(double g) { return g / (1.0 + std::exp(-g)); }

// Experts [first, first + 8) of 12 (expert parallelism: ids 0, 1, 10, 11 are another rank's and
// skipped by the permutation and the combine); slot 0 of most tokens (all of token 0) is one hot
// expert, so that with 9 tokens it has more rows than one pass of the GEMV (4).
void checkLayer(int wdt, int adt, int T) {
  const int H = 256, I = 128, L = 8, K = 2, first = 2, E = 12, hot = first + 5, slots = T * K;
  const bool bf = adt == DS_CUDA_BF16;
  std::vector<int32_t> ids(slots);
  std::uniform_int_distribution<int> any(0, E - 1);
  std::uniform_real_distribution<float> u01(0, 1);
  for (int t = 0; t < T; ++t) {
    ids[t * K] = t == 0 || u01(rng) < 0.7f ? hot : any(rng);
    do ids[t * K + 1] = any(rng); while (ids[t * K + 1] == ids[t * K]);
  }
  const auto rw = randomVec(slots, 0.1f, 1.0f);
  Experts wg = makeExperts(wdt, L, I, H), wu = makeExperts(wdt, L, I, H), wd = makeExperts(wdt, L, H, I);
  const auto x = randomVec(size_t(T) * H, -1, 1, bf), sh = randomVec(size_t(T) * H, -1, 1, bf);
  Buf bx(x, adt), bsh(sh, adt), bout(std::vector<float>(size_t(T) * H), adt);

  // Steps 3-6 in one workspace of ds_cuda_moe_workspace_layout, all bytes 0xff first (NaN in
  // every float, -1 in every int) so that a read of an unwritten word shows.
  ds_cuda_moe_workspace ws;
  planOk(ds_cuda_moe_workspace_layout(T, E, K, L, I, H, adt, &ws), "moe workspace");
  const ds_cuda_ptr base = scratch(ws.total_bytes);
  CK(cudaMemset(reinterpret_cast<void*>(base), 0xff, ws.total_bytes));
  CK(cudaMemcpy(reinterpret_cast<void*>(base + ws.ids), ids.data(), slots * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(reinterpret_cast<void*>(base + ws.weights), rw.data(), slots * 4, cudaMemcpyHostToDevice));
  ds_cuda_plan plan;
  ds_cuda_moe_permute_params pp{};
  pp.ids = base + ws.ids; pp.weights = base + ws.weights; pp.expert_start = base + ws.expert_start;
  pp.active = base + ws.active; pp.row_token = base + ws.row_token; pp.row_weight = base + ws.row_weight;
  pp.slot_row = base + ws.slot_row; pp.num_tokens = T; pp.top_k = K; pp.first_expert = first; pp.num_local = L;
  planOk(ds_cuda_plan_moe_permute(&pp, &plan), "moe_permute (layer)");
  launch(plan, pp);
  ds_cuda_moe_gemv_params gu{};
  gu.x = bx.d(); gu.w = wg.wd(); gu.w2 = wu.wd(); gu.w_scale = wg.sd(); gu.w2_scale = wu.sd();
  gu.y = base + ws.h; gu.expert_start = pp.expert_start; gu.active = pp.active; gu.row_token = pp.row_token;
  gu.N = I; gu.K = H; gu.x_stride = H; gu.y_stride = I; gu.num_local = L; gu.max_rows = slots;
  gu.gather = 1; gu.swiglu = 1; gu.act_dtype = adt; gu.weight_dtype = wdt;
  planOk(ds_cuda_plan_moe_gemv(&gu, &plan), "moe_gemv swiglu");
  launch(plan, gu);
  ds_cuda_moe_gemv_params dp = gu;
  dp.x = base + ws.h; dp.w = wd.wd(); dp.w2 = 0; dp.w_scale = wd.sd(); dp.w2_scale = 0; dp.y = base + ws.y;
  dp.N = H; dp.K = I; dp.x_stride = I; dp.y_stride = H; dp.gather = 0; dp.swiglu = 0;
  planOk(ds_cuda_plan_moe_gemv(&dp, &plan), "moe_gemv down");
  launch(plan, dp);

  ds::cpu::ExpertRows pr;
  ds::cpu::permuteByExpert(ids.data(), rw.data(), T, K, first, L, &pr);
  const int R = pr.rows();
  std::vector<int> rowExpert(R);
  for (int e = 0; e < L; ++e)
    for (int r = pr.start[e]; r < pr.start[e + 1]; ++r) rowExpert[r] = e;
  Buf hv, yv;  // views of the workspace's h and y (the first R rows)
  hv.p = reinterpret_cast<void*>(base + ws.h), hv.n = size_t(R) * I, hv.dtype = adt;
  yv.p = reinterpret_cast<void*>(base + ws.y), yv.n = size_t(R) * H, yv.dtype = adt;
  const std::vector<float> hg = hv.get(), yg = yv.get();
  char tag[64];
  std::snprintf(tag, sizeof tag, "w%s a%s T%d rows %d", wdt == DS_CUDA_BF16 ? "bf16" : "fp8", dn(adt), T, R);

  // Gate/up: f32 accumulation within eg = 2e-6 sum|terms| (the GEMV check's bound), so the
  // kernel's rounded g lies in [rnd(g - eg), rnd(g + eg)]: dg bounds its distance from rnd(g)
  // (one act ulp when g is that close to a rounding boundary, else about 2 eg). Then
  // |d silu(g) u / dg| <= 1.1 |u|, f32 silu ~ 2e-6 relative, and the output rounding.
  std::vector<double> hRef(size_t(R) * I), hTol(hRef.size()), hL(hRef.size());
  for (int r = 0; r < R; ++r) {
    const int e = rowExpert[r];
    const float* xr = &x[size_t(pr.row_token[r]) * H];
    for (int n = 0; n < I; ++n) {
      double g = 0, u = 0, ag = 0, au = 0;
      for (int k = 0; k < H; ++k) {
        const double a = double(wg.f[(size_t(e) * I + n) * H + k]) * xr[k];
        const double b = double(wu.f[(size_t(e) * I + n) * H + k]) * xr[k];
        g += a, u += b, ag += std::fabs(a), au += std::fabs(b);
      }
      const double eg = 2e-6 * ag, eu = 2e-6 * au;
      const double gr = rndAct(adt, g), ur = rndAct(adt, u);
      const double dg = rndAct(adt, g + eg) - rndAct(adt, g - eg), du = rndAct(adt, u + eu) - rndAct(adt, u - eu);
      const double sg = silu(gr), h = sg * ur;
      const size_t i = size_t(r) * I + n;
      hRef[i] = h;
      hTol[i] = 1.1 * std::fabs(ur) * dg + (std::fabs(sg) + 1.1 * dg) * du + 2e-6 * std::fabs(h) + outUlp(adt, h) + 1e-7;
      hL[i] = rndAct(adt, h);
    }
  }
  report("moe_gemv gate/up swiglu " + std::string(tag), hg, hRef, hTol);

  // Down: over the device's h rows (exact inputs): the GEMV check's bound. yL: the layer's
  // reference from scratch, over hL.
  std::vector<double> yRef(size_t(R) * H), yTol(yRef.size()), yL(yRef.size());
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < H; ++n) {
      const float* wr = &wd.f[(size_t(rowExpert[r]) * H + n) * I];
      double s = 0, a = 0, sl = 0;
      for (int k = 0; k < I; ++k) {
        const double t = double(wr[k]) * hg[size_t(r) * I + k];
        s += t, a += std::fabs(t), sl += wr[k] * hL[size_t(r) * I + k];
      }
      yRef[size_t(r) * H + n] = s;
      yTol[size_t(r) * H + n] = 2e-6 * a + outUlp(adt, s) + 1e-7;
      yL[size_t(r) * H + n] = rndAct(adt, sl);
    }
  report("moe_gemv down " + std::string(tag), yg, yRef, yTol);

  for (bool withShared : {false, true}) {
    ds_cuda_moe_combine_params cp{};
    cp.y = base + ws.y; cp.ids = pp.ids; cp.weights = pp.weights; cp.slot_row = pp.slot_row;
    cp.shared = withShared ? bsh.d() : 0; cp.out = bout.d(); cp.num_tokens = T; cp.top_k = K;
    cp.hidden = H; cp.dtype = adt;
    planOk(ds_cuda_plan_moe_combine(&cp, &plan), "moe_combine");
    launch(plan, cp);
    const std::vector<float> out = bout.get();
    // Stage: over the device's y rows, f32 products and sums (few terms): 2e-6 sum|terms| plus
    // the output rounding. Layer: the same sum over yL; a per-element bound through the bf16
    // rounding of g, u, h and y (each may land one ulp away and the next GEMV spreads that) is
    // impractical, so the layer's bound is relative to the largest |ref|: 2e-2 for bf16, 1e-5
    // for f32 activations, plus the output rounding.
    std::vector<double> ref(size_t(T) * H), tol(ref.size()), lref(ref.size()), ltol(ref.size());
    double lmax = 0;
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < H; ++c) {
        double s = withShared ? sh[size_t(t) * H + c] : 0.0, a = std::fabs(s), l = s;
        for (int j = 0; j < K; ++j) {  // the sum's order is no part of the reference
          const int r = pr.slot_row[t * K + j];
          if (r < 0) continue;
          const double v = double(rw[t * K + j]) * yg[size_t(r) * H + c];
          s += v, a += std::fabs(v), l += double(rw[t * K + j]) * yL[size_t(r) * H + c];
        }
        const size_t i = size_t(t) * H + c;
        ref[i] = s, tol[i] = 2e-6 * a + outUlp(adt, s) + 1e-7;
        lref[i] = l, lmax = std::max(lmax, std::fabs(l));
      }
    for (size_t i = 0; i < ref.size(); ++i) ltol[i] = (bf ? 2e-2 : 1e-5) * lmax + outUlp(adt, lref[i]) + 1e-7;
    const std::string sfx = std::string(tag) + (withShared ? " +shared" : "");
    report("moe_combine " + sfx, out, ref, tol);
    report("moe layer (ref from x) " + sfx, out, lref, ltol);
  }
  (void)cudaFree(reinterpret_cast<void*>(base));
  freeAll(bx, bsh, bout);
  wg.release(), wu.release(), wd.release();
}

// The workspace regions: 256-byte aligned, in order, each as large as its contents.
void checkWorkspaceLayout() {
  std::vector<float> got;
  std::vector<double> ref;
  for (int adt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (int T : {1, 7, 4096}) {
      const int E = 256, K = 8, L = 32, I = 2048, H = 7168;
      ds_cuda_moe_workspace ws;
      planOk(ds_cuda_moe_workspace_layout(T, E, K, L, I, H, adt, &ws), "moe workspace");
      const uint64_t s = uint64_t(T) * K, act = adt == DS_CUDA_BF16 ? 2 : 4;
      const uint64_t at[] = {ws.logits, ws.weights, ws.ids, ws.expert_start, ws.active, ws.row_token,
                             ws.row_weight, ws.slot_row, ws.h, ws.y, ws.total_bytes};
      const uint64_t size[] = {uint64_t(T) * E * 4, s * 4, s * 4, (L + 1) * 4u, (L + 1) * 4u,
                               s * 4, s * 4, s * 4, s * I * act, s * H * act};
      int bad = 0;
      for (int i = 0; i < 10; ++i) bad += at[i] % 256 != 0 || at[i] + size[i] > at[i + 1];
      got.push_back(float(bad));
      ref.push_back(0.0);
    }
  report("moe_workspace_layout (misplaced regions)", got, ref, std::vector<double>(ref.size(), 0.0));
}

}  // namespace

// Every MoE case, one report line each.
void moeStage() {
  const RouteCfg routes[] = {
      {"v2-lite softmax greedy E64 k6", 64, 6, 1, 1, DS_CUDA_MOE_SOFTMAX, DS_CUDA_MOE_GREEDY, 0, 1.0f, false},
      {"v3 sigmoid+bias noaux_tc E256 g8/4 k8", 256, 8, 8, 4, DS_CUDA_MOE_SIGMOID, DS_CUDA_MOE_NOAUX_TC, 1, 2.5f, true},
      {"v2 softmax group_limited E160 g8/3 k6", 160, 6, 8, 3, DS_CUDA_MOE_SOFTMAX,
       DS_CUDA_MOE_GROUP_LIMITED_GREEDY, 0, 16.0f, false},
      // E not a multiple of 32 (lanes past E), groups of 12 across lanes, bias with V2 masking.
      {"sigmoid+bias group_limited E72 g6/2 k4 norm", 72, 4, 6, 2, DS_CUDA_MOE_SIGMOID,
       DS_CUDA_MOE_GROUP_LIMITED_GREEDY, 1, 1.0f, true},
  };
  for (const RouteCfg& c : routes)
    for (int T : {1, 7, 130}) checkRoute(c, T);
  // T * top_k = 8, 1000, 5000 (several 1024-slot chunks); all 256 experts local, or 32 of them.
  for (auto [T, K] : {std::pair{1, 8}, std::pair{125, 8}, std::pair{625, 8}, std::pair{2500, 2}}) {
    checkPermute(T, K, 0, 256, 256, 3);
    checkPermute(T, K, 64, 32, 128, 70);
  }
  checkWorkspaceLayout();
  for (int wdt : {int(DS_CUDA_BF16), int(DS_CUDA_FP8_E4M3)})
    for (int adt : {DS_CUDA_BF16, DS_CUDA_F32})
      for (int T : {1, 9}) checkLayer(wdt, adt, T);
  CK(cudaDeviceSynchronize());
}

}  // namespace dscheck

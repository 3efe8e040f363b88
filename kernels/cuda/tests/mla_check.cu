// The MLA decode and int4 GEMV stage of ds_cuda_kernel_check, counted in g_pass / g_fail like the
// other stages:
//   A. ds_mla_kv_write_<kv> of every position of 3 sequences (contexts 1, 37, 700) into a paged
//      latent cache (block size 16, shuffled block tables), the cache read back bit for bit; then
//      the decode (ds_cuda_plan_mla_decode: absorb, attend, [combine,] out) for each sequence's
//      last token against the host's mlaAttention semantics (kernels/cpu/mla.cpp) in double, with
//      the plan's own split choice, with one split (sm_count 1) and with many (max_context 4096).
//      DeepSeek's shape (rank 512, rope 64, nope 128, v 128, 16 heads) and a tiny one (rank 32,
//      rope 16, nope 16, v 24, 4 heads: lanes and warps past the shape); kv_b bf16, f32, or FP8
//      E4M3 with block scales (128 x 128 at DeepSeek's shape, 24 x 12 at the tiny one), the
//      reference over the host's dequantized kv_b (decode(code) * scale in f32).
//      The int8 latent cache (DS_CUDA_KV_INT8, ds_mla_kv_write_i8_a<a> / ds_mla_attend_i8_a<a>) at
//      DeepSeek's shape with bf16 activations and the tiny one with f32: scales and codes read back
//      bit for bit against the host's quantizeVec (KVType::I8) of the same rows, the slots not
//      written still untouched; the decode's reference over the dequantized values (code * scale).
//      The fp8 latent cache (DS_CUDA_FP8_E4M3, ds_mla_kv_write_fp8_a<a> / ds_mla_attend_fp8_a<a>)
//      likewise, against ds_kvq::quantizeVec (the host's scale search, include/ds_cuda_kv_quant.h).
//      Then the prefill (ds_cuda_plan_mla_prefill: absorb, ds_mla_prefill_<kv>_a<a>, out) of 3
//      sequences' last 1, 37 and 150 positions (rows grouped by sequence, seq_q_start; positions
//      shuffled within each sequence: causal by position, not by row) against the same reference.
//   B. ds_gemv_wi4_a<a>_m<mt> over host int4 rows repacked by ds_cuda_i4_to_gpu against the host's
//      dequantization (cpu_kernels.h WeightView) in double: M 1, 3, 5; K 512, 4096; groups 64,
//      128; symmetric and asymmetric codes; bf16 and f32 activations.
// mlaTiming (called by main after the copy bandwidth is measured; informational, not counted):
//   C. the MLA decode at DeepSeek-V2-Lite's attention shape, batch 1, 8, 32 at context 4096,
//      against the copy-bandwidth roofline, one "time mla_decode" line each; then one prefill of
//      512 and 2048 tokens at that shape through the prefill plan and through the decode kernels
//      (what prefill steps ran before), one "time mla_prefill" line each.
#include "check_common.cuh"
#include "ds_cuda_kv_quant.h"

namespace dscheck {
namespace {

// ---- A. MLA decode ------------------------------------------------------------------------------
struct MlaShape {
  const char* name;
  int R, Dr, Dn, Dv, H;
  float w_range, rope_range;  // kv_b in [-w, w], q_rope in [-r, r]: softmax neither flat nor one-hot
};

// wdt FP8_E4M3: kv_b codes with f32 scales per br x bc block (check_common.cuh randomFp8), scales
// in [w / 260, w / 130] (random codes' RMS is about 100: kv_b's RMS near the uniform [-w, w] one).
// kvq DS_CUDA_KV_INT8 / DS_CUDA_FP8_E4M3: the quantized latent cache, written from adt rows
// (scales [slots, 2] then codes [slots, L]); 0: the cache has the activations' dtype.
void checkMla(const MlaShape& sh, int adt, int wdt, int br = 0, int bc = 0, int kvq = 0) {
  const bool i8 = kvq != 0, f8 = kvq == DS_CUDA_FP8_E4M3;  // i8: any one-byte cache
  const bool bf = adt == DS_CUDA_BF16;
  const int R = sh.R, Dr = sh.Dr, Dn = sh.Dn, Dv = sh.Dv, H = sh.H, L = R + Dr, bs = 16;
  const size_t elt = bf ? 2 : 4;
  const std::vector<int> ctx = {1, 37, 700};
  const int S = int(ctx.size()), maxCtx = 700, maxb = (maxCtx + bs - 1) / bs, numBlocks = S * maxb + 5;
  const size_t slots = size_t(numBlocks) * bs;
  std::vector<int32_t> table(numBlocks);
  for (int i = 0; i < numBlocks; ++i) table[i] = i;
  std::shuffle(table.begin(), table.end(), rng);  // tables are not in order; 5 blocks unused
  table.resize(size_t(S) * maxb);
  auto slotOf = [&](int s, int p) { return size_t(table[size_t(s) * maxb + p / bs]) * bs + p % bs; };

  // The write: every position of every sequence, rows in shuffled order; row t of lat is the
  // kv_a output layout [c_kv (R) | k_rope (Dr)], so c_kv and k_rope are strided views of it.
  std::vector<std::pair<int, int>> rows;  // (seq, pos)
  for (int s = 0; s < S; ++s)
    for (int p = 0; p < ctx[s]; ++p) rows.emplace_back(s, p);
  std::shuffle(rows.begin(), rows.end(), rng);
  const int Tw = int(rows.size());
  std::vector<int32_t> wpos(Tw), wseq(Tw), rowOf(size_t(S) * maxCtx, -1);
  for (int t = 0; t < Tw; ++t) {
    wseq[t] = rows[t].first, wpos[t] = rows[t].second;
    rowOf[size_t(wseq[t]) * maxCtx + wpos[t]] = t;
  }
  auto lat = randomVec(size_t(Tw) * L, -1, 1, bf);
  std::vector<float> qs(i8 ? 2 * Tw : 0), deq(i8 ? lat.size() : 0);  // int8: scales, code * scale
  std::vector<int8_t> qc(deq.size());
  if (i8) {
    // Edge rows: 0 ties (absmax 127/128: scale 2^-7 exactly, the rest (2k+1)/256, exact in bf16:
    // x / scale = k + 1/2, rounded half even, not away), 1 zero c_kv, 2 zero k_rope, 3 all zero
    // (scale 1, codes 0). The host's scheme: quantizeVec (KVType::I8), dequantVec.
    std::uniform_int_distribution<int> half(-127, 126);
    for (int i = 0; i < L; ++i) lat[i] = i == 0 || i == R ? 127.0f / 128 : float(2 * half(rng) + 1) / 256;
    std::fill_n(&lat[L], R, 0.0f), std::fill_n(&lat[2 * L + R], Dr, 0.0f), std::fill_n(&lat[3 * L], L, 0.0f);
    for (int t = 0; t < Tw; ++t)
      for (int k = 0; k < 2; ++k) {
        const size_t o = size_t(t) * L + (k ? R : 0);
        const int n = k ? Dr : R;
        if (f8) {  // the host's scale search (ds_kvq::quantizeVec is tied to it by cuda_kv_quant_test)
          std::vector<uint8_t> codes(n);
          const float s = ds_kvq::quantizeVec(true, &lat[o], n, codes.data());
          qs[size_t(t) * 2 + k] = s;
          for (int i = 0; i < n; ++i) qc[o + i] = int8_t(codes[i]), deq[o + i] = ds_kvq::decodeFp8(codes[i]) * s;
          continue;
        }
        float m = 0.0f;
        for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(lat[o + i]));
        float s = m / 127.0f;
        if (!(s > 0.0f && std::isfinite(s))) s = 1.0f;
        qs[size_t(t) * 2 + k] = s;
        for (int i = 0; i < n; ++i) {
          float r = std::nearbyint(lat[o + i] / s);
          if (r != r) r = 0.0f;
          qc[o + i] = int8_t(std::min(std::max(r, -127.0f), 127.0f));
          deq[o + i] = float(qc[o + i]) * s;
        }
      }
  }
  const std::vector<float>& val = i8 ? deq : lat;  // the cache's values
  auto latent = [&](int s, int p) { return &val[size_t(rowOf[size_t(s) * maxCtx + p]) * L]; };
  const size_t cacheBytes = i8 ? slots * (8 + L) : slots * L * elt;
  void* dcache = nullptr;
  CK(cudaMalloc(&dcache, cacheBytes));
  CK(cudaMemset(dcache, 0xff, cacheBytes));  // NaN elements and scales, -1 codes until written
  Buf blat(lat, adt);
  IBuf bwpos(wpos), bwseq(wseq), btab(table);
  ds_cuda_mla_kv_write_params wp{};
  wp.kv.cache = reinterpret_cast<ds_cuda_ptr>(dcache); wp.kv.positions = bwpos.d(); wp.kv.token_seq = bwseq.d();
  wp.kv.block_table = btab.d(); wp.kv.num_blocks = numBlocks; wp.kv.block_size = bs; wp.kv.rank = R;
  wp.kv.rope_dim = Dr; wp.kv.max_blocks_per_seq = maxb; wp.kv.dtype = i8 ? kvq : adt;
  wp.c_kv = blat.d(); wp.k_rope = blat.d() + R * elt; wp.num_tokens = Tw; wp.c_stride = L; wp.k_stride = L;
  wp.act_dtype = adt;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_mla_kv_write(&wp, &plan), "mla_kv_write");
  launch(plan, wp);
  char tag[96];
  std::snprintf(tag, sizeof tag, "%s a%s w%s", sh.name, dn(adt), dn(wdt));
  if (wdt == DS_CUDA_FP8_E4M3) std::snprintf(tag + std::strlen(tag), sizeof tag - std::strlen(tag), " %dx%d", br, bc);
  if (i8) std::snprintf(tag + std::strlen(tag), sizeof tag - std::strlen(tag), f8 ? " kv fp8" : " kv int8");
  {
    std::vector<uint8_t> raw(cacheBytes);
    CK(cudaMemcpy(raw.data(), dcache, cacheBytes, cudaMemcpyDeviceToHost));
    auto f32At = [&](size_t byte) { float f; std::memcpy(&f, &raw[byte], 4); return f; };
    auto bf16At = [&](size_t byte) { uint16_t h; std::memcpy(&h, &raw[byte], 2); return fromBf16(h); };
    std::vector<float> got;
    std::vector<double> want;
    std::vector<char> written(slots, 0);
    // Equal values are equal bits here: scales are positive and finite, NaN (unwritten) fails.
    for (int t = 0; t < Tw; ++t) {
      const size_t sl = slotOf(wseq[t], wpos[t]);
      written[sl] = 1;
      for (int k = 0; i8 && k < 2; ++k) got.push_back(f32At((sl * 2 + k) * 4)), want.push_back(qs[size_t(t) * 2 + k]);
      for (int i = 0; i < L; ++i) {
        const size_t e = sl * L + i;
        got.push_back(i8 ? float(int8_t(raw[slots * 8 + e])) : bf ? bf16At(e * 2) : f32At(e * 4));
        want.push_back(i8 ? qc[size_t(t) * L + i] : lat[size_t(t) * L + i]);
      }
    }
    // int8: every slot not written (partial and unused blocks) keeps its 0xff bytes, scales and codes.
    for (size_t sl = 0; i8 && sl < slots; ++sl) {
      if (written[sl]) continue;
      int changed = 0;
      for (int b = 0; b < 8; ++b) changed += raw[sl * 8 + b] != 0xff;
      for (int i = 0; i < L; ++i) changed += raw[slots * 8 + sl * L + i] != 0xff;
      got.push_back(float(changed)), want.push_back(0.0);
    }
    report("mla_kv_write " + std::string(tag) + " T" + std::to_string(Tw) +
               (i8 ? " (bit-exact, rest untouched)" : " (bit-exact)"),
           got, want, std::vector<double>(want.size(), 0.0));
  }

  // The decode: one token per sequence at its last position, tokens not in sequence order.
  const std::vector<int32_t> dseq = {2, 0, 1};
  const int T = int(dseq.size());
  std::vector<int32_t> dpos(T);
  for (int t = 0; t < T; ++t) dpos[t] = ctx[dseq[t]] - 1;
  const auto qn = randomVec(size_t(T) * H * Dn, -1, 1, bf);
  const auto qr = randomVec(size_t(T) * H * Dr, -sh.rope_range, sh.rope_range, bf);
  // kvb: the element values the kernels compute with (FP8: decode(code) * scale in f32).
  const bool fp8 = wdt == DS_CUDA_FP8_E4M3;
  Fp8Matrix q8 = fp8 ? randomFp8(H * (Dn + Dv), R, br, bc, sh.w_range / 260, sh.w_range / 130) : Fp8Matrix();
  const auto kvb = fp8 ? q8.f : randomVec(size_t(H) * (Dn + Dv) * R, -sh.w_range, sh.w_range, wdt == DS_CUDA_BF16);
  Buf bqn(qn, adt), bqr(qr, adt), bkvb(fp8 ? std::vector<float>() : kvb, wdt);
  Buf bout(std::vector<float>(size_t(T) * H * Dv), adt);
  IBuf bdpos(dpos), bdseq(dseq);
  ds_cuda_mla_decode_params p{};
  p.kv = wp.kv; p.kv.positions = bdpos.d(); p.kv.token_seq = bdseq.d();
  p.q_nope = bqn.d(); p.q_rope = bqr.d(); p.kv_b = fp8 ? reinterpret_cast<ds_cuda_ptr>(q8.codes) : bkvb.d();
  p.kv_b_scale = fp8 ? q8.dscale.d() : 0; p.block_rows = br; p.block_cols = bc; p.out = bout.d();
  p.num_tokens = T; p.heads = H; p.nope_dim = Dn; p.v_dim = Dv; p.act_dtype = adt; p.weight_dtype = wdt;
  p.scale = 1.0f / std::sqrt(float(Dn + Dr));

  // Reference: mlaAttention in double over the same (f32-exact) inputs. q_lat = W_uk^T q_nope,
  // softmax over positions [0, pos] of the token's own sequence, out = W_uv o_lat.
  auto reference = [&](const std::vector<int32_t>& tseq, const std::vector<int32_t>& tpos, const std::vector<float>& qn,
                       const std::vector<float>& qr, double& maxAbs) {
    const int T = int(tseq.size());
    std::vector<double> ref(size_t(T) * H * Dv);
    maxAbs = 0;
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < H; ++h) {
        const float* wuk = &kvb[size_t(h) * (Dn + Dv) * R];
        const float* wuv = wuk + size_t(Dn) * R;
        const float* q = &qn[(size_t(t) * H + h) * Dn];
        const float* qrp = &qr[(size_t(t) * H + h) * Dr];
        std::vector<double> qlat(R, 0.0), olat(R, 0.0), sc(tpos[t] + 1);
        for (int d = 0; d < Dn; ++d)
          for (int r = 0; r < R; ++r) qlat[r] += double(q[d]) * wuk[size_t(d) * R + r];
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j <= tpos[t]; ++j) {
          const float* c = latent(tseq[t], j);
          double s = 0;
          for (int r = 0; r < R; ++r) s += qlat[r] * c[r];
          for (int r = 0; r < Dr; ++r) s += double(qrp[r]) * c[R + r];
          sc[j] = s * double(p.scale);
          mx = std::max(mx, sc[j]);
        }
        for (int j = 0; j <= tpos[t]; ++j) sum += sc[j] = std::exp(sc[j] - mx);
        for (int j = 0; j <= tpos[t]; ++j) {
          const float* c = latent(tseq[t], j);
          for (int r = 0; r < R; ++r) olat[r] += sc[j] / sum * c[r];
        }
        for (int v = 0; v < Dv; ++v) {
          double o = 0;
          for (int r = 0; r < R; ++r) o += double(wuv[size_t(v) * R + r]) * olat[r];
          ref[(size_t(t) * H + h) * Dv + v] = o;
          maxAbs = std::max(maxAbs, std::fabs(o));
        }
      }
    return ref;
  };
  double maxAbs = 0;
  const std::vector<double> ref = reference(dseq, dpos, qn, qr, maxAbs);
  // Every step accumulates in f32 over exact inputs (bf16 values are exact in f32; int8 ones are
  // the f32 products code * scale the kernel stages), so the tolerance is relative to the case's
  // largest |ref| (a per-element bound through the softmax is impractical): 4e-3 for bf16, 2e-5
  // for f32 activations, plus the output's rounding.
  std::vector<double> tol(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = (bf ? 4e-3 : 2e-5) * maxAbs + outUlp(adt, ref[i]);

  // The plan's own split choice; one split (sm_count 1: (token, head-block) blocks fill it); many
  // splits (max_context 4096: up to 16 splits of 256, most past every context, lse -inf).
  const int smCounts[] = {g_dev.sm_count, 1, g_dev.sm_count}, maxContexts[] = {maxCtx, maxCtx, 4096};
  for (int v = 0; v < 3; ++v) {
    ds_cuda_device_limits dev = g_dev;
    dev.sm_count = smCounts[v];
    p.max_context = maxContexts[v];
    planOk(ds_cuda_plan_mla_decode(&p, &dev, &plan), "mla_decode");
    p.workspace = scratch(plan.workspace_bytes);
    CK(cudaMemset(reinterpret_cast<void*>(p.workspace), 0xff, plan.workspace_bytes));  // NaN
    CK(cudaMemset(bout.p, 0xff, bout.n * elt));
    launch(plan, p);
    char name[160];
    std::snprintf(name, sizeof name, "mla_decode %s ctx 1/37/700 max_ctx %d sm %d splits %d x %d", tag,
                  p.max_context, dev.sm_count, p.splits, p.split_len);
    report(name, bout.get(), ref, tol);
    (void)cudaFree(reinterpret_cast<void*>(p.workspace));
  }

  // The prefill: each sequence's last min(ctx, 150) positions as query rows (1, 37, 150 tokens),
  // rows grouped by sequence, positions shuffled within each (masks are by position).
  std::vector<int32_t> pseq, ppos, qstart = {0};
  int maxQ = 0;
  for (int s = 0; s < S; ++s) {
    const int n = std::min(ctx[s], 150);
    std::vector<int32_t> ps(n);
    for (int i = 0; i < n; ++i) ps[i] = ctx[s] - n + i;
    std::shuffle(ps.begin(), ps.end(), rng);
    for (int i = 0; i < n; ++i) pseq.push_back(s), ppos.push_back(ps[i]);
    qstart.push_back(qstart.back() + n);
    maxQ = std::max(maxQ, n);
  }
  const int Tp = int(pseq.size());
  const auto pqn = randomVec(size_t(Tp) * H * Dn, -1, 1, bf);
  const auto pqr = randomVec(size_t(Tp) * H * Dr, -sh.rope_range, sh.rope_range, bf);
  double pmax = 0;
  const std::vector<double> pref = reference(pseq, ppos, pqn, pqr, pmax);
  std::vector<double> ptol(pref.size());
  for (size_t i = 0; i < pref.size(); ++i) ptol[i] = (bf ? 4e-3 : 2e-5) * pmax + outUlp(adt, pref[i]);
  Buf bpqn(pqn, adt), bpqr(pqr, adt), bpout(std::vector<float>(size_t(Tp) * H * Dv), adt);
  IBuf bppos(ppos), bpseq(pseq), bqstart(qstart);
  ds_cuda_mla_decode_params pp = p;
  pp.kv.positions = bppos.d(); pp.kv.token_seq = bpseq.d();
  pp.q_nope = bpqn.d(); pp.q_rope = bpqr.d(); pp.out = bpout.d(); pp.num_tokens = Tp;
  pp.max_context = maxCtx; pp.seq_q_start = bqstart.d(); pp.num_seqs = S; pp.max_q_len = maxQ;
  planOk(ds_cuda_plan_mla_prefill(&pp, &plan), "mla_prefill");
  pp.workspace = scratch(plan.workspace_bytes);
  CK(cudaMemset(reinterpret_cast<void*>(pp.workspace), 0xff, plan.workspace_bytes));  // NaN
  CK(cudaMemset(bpout.p, 0xff, bpout.n * elt));
  launch(plan, pp);
  report("mla_prefill " + std::string(tag) + " q 1/37/150 of ctx 1/37/700", bpout.get(), pref, ptol);
  for (void* b : {dcache, blat.p, bqn.p, bqr.p, bkvb.p, bout.p, bwpos.p, bwseq.p, btab.p, bdpos.p, bdseq.p, bpqn.p,
                  bpqr.p, bpout.p, bppos.p, bpseq.p, bqstart.p, reinterpret_cast<void*>(pp.workspace)})
    (void)cudaFree(b);
  if (fp8) q8.release();
}

// ---- B. int4 GEMV -------------------------------------------------------------------------------
// Host int4 rows (random bytes: every code; low nibble = even column) with f32 group scales in
// [1e-3, 0.05] and, asymmetric, zero points in [0, 15] (floats, in units of q); x rows strided
// (K + 32); asymmetric cases add an f32 bias.
void checkGemvI4(int adt, bool sym, int M, int N, int K, int group) {
  const bool bf = adt == DS_CUDA_BF16, bias = !sym;
  const int G = K / group, xs = K + 32;
  std::vector<uint8_t> codes(size_t(N) * K / 2);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& c : codes) c = uint8_t(byte(rng));
  const auto scale = randomVec(size_t(N) * G, 1e-3f, 0.05f);
  const auto zero = sym ? std::vector<float>() : randomVec(size_t(N) * G, 0.0f, 15.0f);
  const auto x = randomVec(size_t(M) * xs, -1, 1, bf), b = randomVec(N, -1, 1);
  // The host's element values, in f32: q * s (q two's complement) or (q - z) * s (q unsigned).
  std::vector<float> w(size_t(N) * K);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) {
      const int nib = (codes[size_t(n) * K / 2 + k / 2] >> (4 * (k & 1))) & 15;
      const float s = scale[size_t(n) * G + k / group];
      w[size_t(n) * K + k] = sym ? float(nib >= 8 ? nib - 16 : nib) * s
                                 : (float(nib) - zero[size_t(n) * G + k / group]) * s;
    }
  std::vector<uint8_t> gpu = codes;
  ds_cuda_i4_to_gpu(gpu.data(), gpu.size(), sym ? 1 : 0);
  void* dw = nullptr;
  CK(cudaMalloc(&dw, gpu.size()));
  CK(cudaMemcpy(dw, gpu.data(), gpu.size(), cudaMemcpyHostToDevice));
  Buf bx(x, adt), bs(scale, DS_CUDA_F32), bz(zero, DS_CUDA_F32), bb(b, DS_CUDA_F32);
  Buf by(std::vector<float>(size_t(M) * N), adt);
  CK(cudaMemset(by.p, 0xff, by.n * (bf ? 2 : 4)));  // NaN until written
  ds_cuda_gemv_i4_params p{};
  p.x = bx.d(); p.w = reinterpret_cast<ds_cuda_ptr>(dw); p.scale = bs.d(); p.zero = sym ? 0 : bz.d();
  p.bias = bias ? bb.d() : 0; p.y = by.d(); p.M = M; p.N = N; p.K = K; p.x_stride = xs; p.y_stride = N;
  p.group_size = group; p.act_dtype = adt;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_gemv_i4(&p, &plan), "gemv_i4");
  launch(plan, p);
  std::vector<double> ref(size_t(M) * N), tol(ref.size());
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = bias ? b[n] : 0.0, a = std::fabs(s);
      for (int k = 0; k < K; ++k) {
        const double t = double(w[size_t(n) * K + k]) * x[size_t(m) * xs + k];
        s += t, a += std::fabs(t);
      }
      ref[size_t(m) * N + n] = s;
      // f32 accumulation (the GEMV check's bound) + output rounding.
      tol[size_t(m) * N + n] = 2e-6 * a + outUlp(adt, s) + 1e-7;
    }
  char name[128];
  std::snprintf(name, sizeof name, "gemv_i4 a%s %s M%d N%d K%d g%d mt%d%s", dn(adt), sym ? "sym" : "asym",
                M, N, K, group, p.rows_per_pass, bias ? " +bias" : "");
  report(name, by.get(), ref, tol);
  for (void* q : {dw, bx.p, bs.p, bz.p, bb.p, by.p}) (void)cudaFree(q);
}

// ---- C. MLA decode timing (informational) -------------------------------------------------------
// n bf16 values uniform in [-0.1, 0.1] (small: the softmax is neither flat nor one-hot by much):
// a 1 Mi-value random pool copied in, then doubled on the device.
void* randomBf16(size_t n) {
  static const std::vector<uint16_t> pool = [] {
    std::uniform_real_distribution<float> d(-0.1f, 0.1f);
    std::vector<uint16_t> v(size_t(1) << 20);
    for (auto& x : v) x = toBf16(d(rng));
    return v;
  }();
  void* p = nullptr;
  CK(cudaMalloc(&p, n * 2));
  size_t done = std::min(n, pool.size());
  CK(cudaMemcpy(p, pool.data(), done * 2, cudaMemcpyHostToDevice));
  while (done < n) {
    const size_t c = std::min(done, n - done);
    CK(cudaMemcpy(static_cast<char*>(p) + done * 2, p, c * 2, cudaMemcpyDeviceToDevice));
    done += c;
  }
  return p;
}

// One decode step (absorb, attend, [combine,] out) of DeepSeek-V2-Lite's attention (16 heads, rank
// 512, rope 64, nope 128, v 128; bf16 activations, latent cache and kv_b; block size 64, contiguous
// block tables) for `batch` sequences of context 4096, one token each at position 4095. Enough
// copies of the cache and kv_b are cycled to exceed any L2 (>= 256 MiB, as timeGemv), the steps
// captured into a CUDA graph (no host launch cost) and replayed for >= 20 ms. Bytes read: the
// latent cache rows, kv_b once, q_nope and q_rope (the f32 workspace and the output not counted).
void timeMlaDecode(double bw, int batch) {
  const int R = 512, Dr = 64, Dn = 128, Dv = 128, H = 16, L = R + Dr, bs = 64, ctx = 4096, maxb = ctx / bs;
  const size_t cacheElts = size_t(batch) * ctx * L, kvbElts = size_t(H) * (Dn + Dv) * R;
  const double bytes = double(cacheElts) * 2 + double(kvbElts) * 2 + double(batch) * H * (Dn + Dr) * 2;
  const int copies = int(std::max<size_t>(1, (size_t(256) << 20) / ((cacheElts + kvbElts) * 2) + 1));
  void* cache = randomBf16(cacheElts * copies);
  void* kvb = randomBf16(kvbElts * copies);
  void* qn = randomBf16(size_t(batch) * H * Dn);
  void* qr = randomBf16(size_t(batch) * H * Dr);
  void* out = randomBf16(size_t(batch) * H * Dv);
  std::vector<int32_t> table(size_t(copies) * batch * maxb), pos(batch, ctx - 1), seq(batch);
  for (size_t i = 0; i < table.size(); ++i) table[i] = int32_t(i);  // copy c: blocks [c * batch * maxb, ...)
  for (int s = 0; s < batch; ++s) seq[s] = s;
  IBuf btab(table), bpos(pos), bseq(seq);
  ds_cuda_mla_decode_params p{};
  p.kv.cache = reinterpret_cast<ds_cuda_ptr>(cache); p.kv.positions = bpos.d(); p.kv.token_seq = bseq.d();
  p.kv.block_table = btab.d(); p.kv.num_blocks = copies * batch * maxb; p.kv.block_size = bs;
  p.kv.rank = R; p.kv.rope_dim = Dr; p.kv.max_blocks_per_seq = maxb; p.kv.dtype = DS_CUDA_BF16;
  p.q_nope = reinterpret_cast<ds_cuda_ptr>(qn); p.q_rope = reinterpret_cast<ds_cuda_ptr>(qr);
  p.kv_b = reinterpret_cast<ds_cuda_ptr>(kvb); p.out = reinterpret_cast<ds_cuda_ptr>(out);
  p.num_tokens = batch; p.heads = H; p.nope_dim = Dn; p.v_dim = Dv;
  p.act_dtype = DS_CUDA_BF16; p.weight_dtype = DS_CUDA_BF16;
  p.scale = 1.0f / std::sqrt(float(Dn + Dr)); p.max_context = ctx;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_mla_decode(&p, &g_dev, &plan), "mla_decode timing");
  p.workspace = scratch(plan.workspace_bytes);
  std::vector<ds_cuda_mla_decode_params> steps(copies, p);
  for (int c = 0; c < copies; ++c) {
    steps[c].kv.block_table = btab.d() + uint64_t(c) * batch * maxb * 4;
    steps[c].kv_b = p.kv_b + uint64_t(c) * kvbElts * 2;
  }
  std::vector<cudaKernel_t> ks(plan.num_launches);
  for (int i = 0; i < plan.num_launches; ++i) {
    cudaKernel_t& k = g_kernels[plan.launches[i].symbol];
    if (!k) CK(cudaLibraryGetKernel(&k, g_lib, plan.launches[i].symbol));
    ks[i] = k;
  }
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (auto& sp : steps)
    for (int i = 0; i < plan.num_launches; ++i) {
      const ds_cuda_launch& l = plan.launches[i];
      void* args[] = {&sp};
      CK(cudaLaunchKernel(reinterpret_cast<const void*>(ks[i]), dim3(l.grid[0], l.grid[1], l.grid[2]),
                          dim3(l.block[0], l.block[1], l.block[2]), args, l.shared_bytes, st));
    }
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CK(cudaStreamEndCapture(st, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  auto run = [&](int reps) {  // seconds per step over reps replays
    CK(cudaEventRecord(e0, st));
    for (int r = 0; r < reps; ++r) CK(cudaGraphLaunch(exec, st));
    CK(cudaEventRecord(e1, st));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return ms * 1e-3 / (double(reps) * copies);
  };
  run(2);  // warm-up
  const double t0 = run(1);
  const int reps = int(std::clamp(std::ceil(20e-3 / (t0 * copies)), 3.0, 10000.0));
  const double t = run(reps), roof = bytes / bw;
  std::printf("time mla_decode bf16 h%d r%d B%-2d ctx%d splits%-2d x %-4d %8.2f us  %7.1f GB/s  roofline %7.2f us  "
              "%5.1f%% of roofline  %.1f MB read  (%d steps)\n",
              H, R, batch, ctx, p.splits, p.split_len, t * 1e6, bytes / t * 1e-9, roof * 1e6, 100.0 * roof / t,
              bytes * 1e-6, reps * copies);
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  CK(cudaStreamDestroy(st));
  for (void* b : {cache, kvb, qn, qr, out, btab.p, bpos.p, bseq.p, reinterpret_cast<void*>(p.workspace)})
    (void)cudaFree(b);
}

// One sequence's prefill of n tokens (positions 0..n-1, the cache already written) at
// DeepSeek-V2-Lite's attention shape, bf16: the prefill plan (absorb, ds_mla_prefill, out) against
// the decode plan over the same tokens (absorb, ds_mla_attend [+ combine], out), eager launches.
void timeMlaPrefill(int n) {
  const int R = 512, Dr = 64, Dn = 128, Dv = 128, H = 16, L = R + Dr, bs = 64, maxb = (n + bs - 1) / bs;
  void* cache = randomBf16(size_t(maxb) * bs * L);
  void* kvb = randomBf16(size_t(H) * (Dn + Dv) * R);
  void* qn = randomBf16(size_t(n) * H * Dn);
  void* qr = randomBf16(size_t(n) * H * Dr);
  void* out = randomBf16(size_t(n) * H * Dv);
  std::vector<int32_t> table(maxb), pos(n), seq(n, 0), qstart = {0, n};
  for (int i = 0; i < maxb; ++i) table[i] = i;
  for (int t = 0; t < n; ++t) pos[t] = t;
  IBuf btab(table), bpos(pos), bseq(seq), bq(qstart);
  ds_cuda_mla_decode_params p{};
  p.kv.cache = reinterpret_cast<ds_cuda_ptr>(cache); p.kv.positions = bpos.d(); p.kv.token_seq = bseq.d();
  p.kv.block_table = btab.d(); p.kv.num_blocks = maxb; p.kv.block_size = bs; p.kv.rank = R; p.kv.rope_dim = Dr;
  p.kv.max_blocks_per_seq = maxb; p.kv.dtype = DS_CUDA_BF16;
  p.q_nope = reinterpret_cast<ds_cuda_ptr>(qn); p.q_rope = reinterpret_cast<ds_cuda_ptr>(qr);
  p.kv_b = reinterpret_cast<ds_cuda_ptr>(kvb); p.out = reinterpret_cast<ds_cuda_ptr>(out);
  p.num_tokens = n; p.heads = H; p.nope_dim = Dn; p.v_dim = Dv; p.act_dtype = p.weight_dtype = DS_CUDA_BF16;
  p.scale = 1.0f / std::sqrt(float(Dn + Dr)); p.max_context = n;
  p.seq_q_start = bq.d(); p.num_seqs = 1; p.max_q_len = n;
  double us[2];
  for (int v = 0; v < 2; ++v) {
    ds_cuda_mla_decode_params q = p;
    ds_cuda_plan plan;
    planOk(v == 0 ? ds_cuda_plan_mla_prefill(&q, &plan) : ds_cuda_plan_mla_decode(&q, &g_dev, &plan), "mla timing");
    q.workspace = scratch(plan.workspace_bytes);
    launch(plan, q);  // warm-up
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    const int reps = 5;
    CK(cudaEventRecord(e0));
    for (int r = 0; r < reps; ++r) launch(plan, q);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    us[v] = ms * 1e3 / reps;
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    (void)cudaFree(reinterpret_cast<void*>(q.workspace));
  }
  std::printf("time mla_prefill bf16 h%d r%d n%-5d prefill kernel %9.1f us  decode kernels %9.1f us  (%.2fx)\n", H, R,
              n, us[0], us[1], us[1] / us[0]);
  for (void* b : {cache, kvb, qn, qr, out, btab.p, bpos.p, bseq.p, bq.p}) (void)cudaFree(b);
}

}  // namespace

// Every MLA decode and int4 GEMV case, one report line each.
void mlaStage() {
  const MlaShape deepseek{"r512 rope64 nope128 v128 h16", 512, 64, 128, 128, 16, 0.5f, 2.0f};
  const MlaShape tiny{"r32 rope16 nope16 v24 h4", 32, 16, 16, 24, 4, 3.0f, 4.0f};
  checkMla(deepseek, DS_CUDA_BF16, DS_CUDA_BF16);
  checkMla(deepseek, DS_CUDA_F32, DS_CUDA_BF16);
  checkMla(deepseek, DS_CUDA_F32, DS_CUDA_F32);
  checkMla(tiny, DS_CUDA_F32, DS_CUDA_F32);
  checkMla(tiny, DS_CUDA_BF16, DS_CUDA_BF16);
  // FP8 kv_b: DeepSeek-V3's 128 x 128 blocks (rows 4096, rank 512: 32 x 4 scales), and blocks
  // that split the tiny shape's heads and rank unevenly (rows 160, rank 32: 7 x 3 scales).
  checkMla(deepseek, DS_CUDA_BF16, DS_CUDA_FP8_E4M3, 128, 128);
  checkMla(deepseek, DS_CUDA_F32, DS_CUDA_FP8_E4M3, 128, 128);
  checkMla(tiny, DS_CUDA_BF16, DS_CUDA_FP8_E4M3, 24, 12);
  // The int8 latent cache: DeepSeek's shape with bf16 activations, the tiny one with f32.
  checkMla(deepseek, DS_CUDA_BF16, DS_CUDA_BF16, 0, 0, DS_CUDA_KV_INT8);
  checkMla(tiny, DS_CUDA_F32, DS_CUDA_F32, 0, 0, DS_CUDA_KV_INT8);
  // The fp8 latent cache: the same pair of shapes and dtypes, and DeepSeek's with f32 activations.
  checkMla(deepseek, DS_CUDA_BF16, DS_CUDA_BF16, 0, 0, DS_CUDA_FP8_E4M3);
  checkMla(deepseek, DS_CUDA_F32, DS_CUDA_F32, 0, 0, DS_CUDA_FP8_E4M3);
  checkMla(tiny, DS_CUDA_F32, DS_CUDA_F32, 0, 0, DS_CUDA_FP8_E4M3);
  for (int adt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (bool sym : {true, false})
      for (int K : {512, 4096})
        for (int group : {64, 128})
          for (int M : {1, 3, 5}) checkGemvI4(adt, sym, M, 96, K, group);
  CK(cudaDeviceSynchronize());
}

// The MLA decode timing lines (informational, not counted in g_pass / g_fail), after main has
// measured the copy bandwidth bw (bytes/s, cudaMemcpy D2D read + write): the roofline.
void mlaTiming(double bw) {
  for (int batch : {1, 8, 32}) timeMlaDecode(bw, batch);
  for (int n : {512, 2048}) timeMlaPrefill(n);
}

}  // namespace dscheck

// GPU check stage: GQA attention over int8 / FP8 (E4M3) KV caches (include/ds_cuda_kernels.h
// "Paged KV cache"; the host's --kv-cache int8 / fp8).
//  - ds_kv_write_{i8,fp8}_a<act>: every written (slot, kv head) vector's codes and scale bit for
//    bit against ds_kvq::quantizeVec on the host (include/ds_cuda_kv_quant.h, which
//    test/unit/kernels_cuda/cuda_kv_quant_test.cpp ties to kernels/cpu kvWrite bit for bit), every
//    other byte of the cache untouched;
//  - decode (split and unsplit, sliding window, partial head chunks) and prefill, head_dim 64 /
//    128 / 256 and small heads (8, 32), over caches quantized on the host: a double-precision
//    reference over the dequantized values (decode(code) * scale in f32, exact inputs), with the
//    float caches' tolerances.
#include "check_common.cuh"
#include "ds_cuda_kv_quant.h"

namespace dscheck {
void kvQuantStage();
}

namespace dscheck {
namespace {

// One layer's quantized cache on the host: per region (K, V) scales [vectors] and codes
// [vectors, D]; deq = decode(code) * scale, what the kernels read.
struct QCache {
  int num_blocks, bs, kvh, D, maxb;
  bool fp8;
  std::vector<float> scale[2], deq[2];
  std::vector<uint8_t> codes[2];
  std::vector<int32_t> table;
  int64_t vectors() const { return int64_t(num_blocks) * bs * kvh; }
  int64_t slotOf(int s, int pos) const { return int64_t(table[s * maxb + pos / bs]) * bs + pos % bs; }
  // Quantizes x[D] into vector r of region g with the host definition.
  void put(int g, int64_t r, const float* x) {
    scale[g][r] = ds_kvq::quantizeVec(fp8, x, D, &codes[g][r * D]);
    for (int i = 0; i < D; ++i) deq[g][r * D + i] = value(codes[g][r * D + i]) * scale[g][r];
  }
  float value(uint8_t c) const { return fp8 ? ds_kvq::decodeFp8(c) : float(int8_t(c)); }
  // The device region: scales then codes.
  std::vector<uint8_t> bytes(int g) const {
    std::vector<uint8_t> b(size_t(vectors()) * (4 + D));
    std::memcpy(b.data(), scale[g].data(), size_t(vectors()) * 4);
    std::memcpy(b.data() + vectors() * 4, codes[g].data(), codes[g].size());
    return b;
  }
};

QCache makeQCache(int S, int maxb, int bs, int kvh, int D, bool fp8, bool bf16) {
  QCache c{S * maxb + 3, bs, kvh, D, maxb, fp8, {}, {}, {}, {}};
  for (int g = 0; g < 2; ++g) {
    c.scale[g].resize(c.vectors());
    c.codes[g].resize(size_t(c.vectors()) * D);
    c.deq[g].resize(c.codes[g].size());
    for (int64_t r = 0; r < c.vectors(); ++r) {
      // Vector ranges differ (keys 0.1..2, values 1e-3..1) so the scales do; some hold an outlier.
      const float mag = std::pow(10.0f, g ? std::uniform_real_distribution<float>(-3.0f, 0.0f)(rng)
                                          : std::uniform_real_distribution<float>(-1.0f, 0.3f)(rng));
      std::vector<float> x = randomVec(D, -mag, mag, bf16);
      if (r % 7 == 0) x[r % D] = bf16 ? roundBf16(mag * 3.0f) : mag * 3.0f;
      c.put(g, r, x.data());
    }
  }
  std::vector<int32_t> ids(c.num_blocks);
  for (int i = 0; i < c.num_blocks; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  c.table.assign(ids.begin(), ids.begin() + S * maxb);
  return c;
}

struct Region {
  void* p = nullptr;
  size_t n = 0;
  explicit Region(const std::vector<uint8_t>& b) : n(b.size()) {
    CK(cudaMalloc(&p, n));
    CK(cudaMemcpy(p, b.data(), n, cudaMemcpyHostToDevice));
  }
  std::vector<uint8_t> get() const {
    std::vector<uint8_t> b(n);
    CK(cudaMemcpy(b.data(), p, n, cudaMemcpyDeviceToHost));
    return b;
  }
  ds_cuda_ptr d() const { return reinterpret_cast<ds_cuda_ptr>(p); }
};

int qType(const QCache& c) { return c.fp8 ? int{DS_CUDA_FP8_E4M3} : int{DS_CUDA_KV_INT8}; }

ds_cuda_paged_kv bindQ(const QCache& c, const Region& k, const Region& v, const IBuf& pos, const IBuf& seq,
                       const IBuf& table) {
  ds_cuda_paged_kv kv{};
  kv.k_cache = k.d(); kv.v_cache = v.d(); kv.positions = pos.d(); kv.token_seq = seq.d();
  kv.block_table = table.d(); kv.num_blocks = c.num_blocks; kv.block_size = c.bs; kv.kv_heads = c.kvh;
  kv.head_dim = c.D; kv.max_blocks_per_seq = c.maxb; kv.dtype = qType(c);
  return kv;
}

// out [Hq, D] for one query at pos of sequence s, in double over the dequantized cache.
void refAttention(const QCache& c, const float* q, int Hq, int s, int pos, int window, float scale, double* out) {
  const int group = Hq / c.kvh, lo = window > 0 ? std::max(0, pos - window + 1) : 0;
  for (int h = 0; h < Hq; ++h) {
    const int kh = h / group;
    std::vector<double> sc;
    double mx = -1e300;
    for (int j = lo; j <= pos; ++j) {
      const int64_t r = c.slotOf(s, j) * c.kvh + kh;
      double d = 0;
      for (int i = 0; i < c.D; ++i) d += double(q[h * c.D + i]) * c.deq[0][r * c.D + i];
      sc.push_back(d * scale);
      mx = std::max(mx, d * scale);
    }
    double sum = 0;
    for (auto& x : sc) sum += (x = std::exp(x - mx));
    for (int i = 0; i < c.D; ++i) {
      double o = 0;
      for (int j = lo; j <= pos; ++j) o += sc[j - lo] * c.deq[1][(c.slotOf(s, j) * c.kvh + kh) * c.D + i];
      out[h * c.D + i] = o / sum;
    }
  }
}

const char* qn(bool fp8) { return fp8 ? "fp8" : "int8"; }

// Decode: one token per sequence at the end of its context, its k, v quantized by ds_kv_write.
// The write is checked first: the step's vectors bit for bit, every other byte unchanged.
void checkDecodeQ(bool fp8, int adt, int D, int Hq, int kvh, int window, int sm_override, bool longctx) {
  const bool bf = adt == DS_CUDA_BF16;
  const std::vector<int> lens = longctx ? std::vector<int>{1, 37, 300, 1500} : std::vector<int>{1, 5, 37};
  const int S = int(lens.size()), bs = 16, maxb = (lens.back() + bs - 1) / bs;
  QCache c = makeQCache(S, maxb, bs, kvh, D, fp8, bf);
  std::vector<int32_t> pos(S), seq(S);
  for (int s = 0; s < S; ++s) pos[s] = lens[s] - 1, seq[s] = s;
  auto q = randomVec(size_t(S) * Hq * D, -1, 1, bf);
  auto knew = randomVec(size_t(S) * kvh * D, -2, 2, bf), vnew = randomVec(knew.size(), -0.05f, 0.05f, bf);
  // The device cache starts with the step's vectors scrambled (the write must replace them).
  std::vector<uint8_t> before[2] = {c.bytes(0), c.bytes(1)};
  for (int g = 0; g < 2; ++g)
    for (int s = 0; s < S; ++s)
      for (int h = 0; h < kvh; ++h) {
        const int64_t r = c.slotOf(s, pos[s]) * kvh + h;
        std::memset(&before[g][r * 4], 0xff, 4);
        std::memset(&before[g][c.vectors() * 4 + r * D], 0x7f, D);
      }
  Region bk(before[0]), bv(before[1]);
  for (int s = 0; s < S; ++s)  // the host's write of the same values
    for (int h = 0; h < kvh; ++h) {
      const int64_t r = c.slotOf(s, pos[s]) * kvh + h;
      c.put(0, r, &knew[(size_t(s) * kvh + h) * D]);
      c.put(1, r, &vnew[(size_t(s) * kvh + h) * D]);
    }
  IBuf bpos(pos), bseq(seq), btab(c.table);
  Buf bq(q, adt), bkn(knew, adt), bvn(vnew, adt), bo(std::vector<float>(q.size()), adt);
  ds_cuda_kv_write_params wp{};
  wp.kv = bindQ(c, bk, bv, bpos, bseq, btab);
  wp.k = bkn.d(); wp.v = bvn.d(); wp.num_tokens = S; wp.act_dtype = adt;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_kv_write(&wp, &plan), "kv_write quantized");
  launch(plan, wp);
  CK(cudaDeviceSynchronize());
  char name[112];
  {
    size_t bad = 0, n = 0;
    for (int g = 0; g < 2; ++g) {
      const std::vector<uint8_t> got = (g ? bv : bk).get(), want = c.bytes(g);
      for (size_t i = 0; i < got.size(); ++i) bad += got[i] != want[i];
      n += got.size();
    }
    (bad ? g_fail : g_pass)++;
    std::snprintf(name, sizeof name, "kv_write %s a%s d%d kv%d: cache bytes", qn(fp8), dn(adt), D, kvh);
    std::printf("%-4s %-44s n=%-8zu %s\n", bad ? "FAIL" : "ok", name, n,
                bad ? (std::to_string(bad) + " bytes differ from the host's quantization").c_str() : "bit for bit");
  }
  ds_cuda_attn_decode_params p{};
  p.kv = wp.kv; p.q = bq.d(); p.out = bo.d(); p.num_tokens = S; p.q_heads = Hq; p.act_dtype = adt;
  p.sliding_window = window; p.scale = 1.0f / std::sqrt(float(D)); p.max_context = lens.back();
  ds_cuda_device_limits dev = g_dev;
  if (sm_override) dev.sm_count = sm_override;
  if (D <= 32) {  // small heads: the prefill plan with one row per sequence
    std::vector<int32_t> start(S + 1);
    for (int s = 0; s <= S; ++s) start[s] = s;
    IBuf bstart(start);
    ds_cuda_attn_prefill_params pp{};
    pp.kv = p.kv; pp.q = p.q; pp.out = p.out; pp.seq_q_start = bstart.d(); pp.num_seqs = S; pp.max_q_len = 1;
    pp.q_heads = Hq; pp.sliding_window = window; pp.scale = p.scale; pp.act_dtype = adt;
    planOk(ds_cuda_plan_attn_prefill(&pp, &dev, &plan), "attn_small quantized");
    launch(plan, pp);
    CK(cudaDeviceSynchronize());
  } else {
    planOk(ds_cuda_plan_attn_decode(&p, &dev, &plan), "attn_decode quantized");
    p.workspace = scratch(plan.workspace_bytes);
    launch(plan, p);
  }
  std::vector<double> ref(q.size()), tol(q.size());
  for (int s = 0; s < S; ++s)
    refAttention(c, &q[size_t(s) * Hq * D], Hq, s, pos[s], window, p.scale, &ref[size_t(s) * Hq * D]);
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = (bf ? 4e-3 : 2e-5) + outUlp(adt, ref[i]);
  std::snprintf(name, sizeof name, "attn_decode %s a%s d%d q%d/kv%d win%d splits%d", qn(fp8), dn(adt), D, Hq,
                kvh, window, D <= 32 ? 1 : p.splits);
  report(name, bo.get(), ref, tol);
  cudaFree(reinterpret_cast<void*>(p.workspace));
  cudaFree(bk.p), cudaFree(bv.p);
}

// Prefill: sequences with a cached prefix and several new tokens each, over a host-quantized cache.
void checkPrefillQ(bool fp8, int adt, int D, int Hq, int kvh, int window) {
  const bool bf = adt == DS_CUDA_BF16;
  const std::vector<int> prefix = {0, 5, 33}, qlen = {20, 1, 70};
  const int S = 3, bs = 16, maxb = 8;
  QCache c = makeQCache(S, maxb, bs, kvh, D, fp8, bf);
  std::vector<int32_t> pos, seq, start = {0};
  for (int s = 0; s < S; ++s) {
    for (int i = 0; i < qlen[s]; ++i) pos.push_back(prefix[s] + i), seq.push_back(s);
    start.push_back(int32_t(pos.size()));
  }
  const int T = int(pos.size());
  auto q = randomVec(size_t(T) * Hq * D, -1, 1, bf);
  Region bk(c.bytes(0)), bv(c.bytes(1));
  Buf bq(q, adt), bo(std::vector<float>(q.size()), adt);
  IBuf bpos(pos), bseq(seq), btab(c.table), bstart(start);
  ds_cuda_attn_prefill_params p{};
  p.kv = bindQ(c, bk, bv, bpos, bseq, btab);
  p.q = bq.d(); p.out = bo.d(); p.seq_q_start = bstart.d(); p.num_seqs = S; p.max_q_len = 70;
  p.q_heads = Hq; p.sliding_window = window; p.scale = 1.0f / std::sqrt(float(D)); p.act_dtype = adt;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_attn_prefill(&p, &g_dev, &plan), "attn_prefill quantized");
  launch(plan, p);
  std::vector<double> ref(q.size()), tol(q.size());
  for (int t = 0; t < T; ++t)
    refAttention(c, &q[size_t(t) * Hq * D], Hq, seq[t], pos[t], window, p.scale, &ref[size_t(t) * Hq * D]);
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = (bf ? 4e-3 : 2e-5) + outUlp(adt, ref[i]);
  char name[112];
  std::snprintf(name, sizeof name, "attn_prefill %s a%s d%d q%d/kv%d win%d", qn(fp8), dn(adt), D, Hq, kvh, window);
  report(name, bo.get(), ref, tol);
  cudaFree(bk.p), cudaFree(bv.p);
}

}  // namespace

void kvQuantStage() {
  for (bool fp8 : {false, true})
    for (int adt : {DS_CUDA_BF16, DS_CUDA_F32}) {
      for (int D : {64, 128, 256}) {
        checkDecodeQ(fp8, adt, D, 8, 2, 0, 0, true);
        checkDecodeQ(fp8, adt, D, 12, 2, 100, 0, true);  // group 6 (a partial head chunk), window
        checkDecodeQ(fp8, adt, D, 4, 4, 0, 1, false);    // forced one split
        checkPrefillQ(fp8, adt, D, 8, 2, 0);
        checkPrefillQ(fp8, adt, D, 6, 2, 16);
      }
      for (int D : {8, 32}) {  // small heads: ds_attn_small
        checkDecodeQ(fp8, adt, D, 8, 2, 0, 0, false);
        checkPrefillQ(fp8, adt, D, 6, 2, 16);
      }
    }
}

}  // namespace dscheck

// CPU library kernels of the host target: one function per ds op, f32 activations, f32 accumulation.
// This header is the contract between the runtime's plan executor and the kernels. LLVM-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace ds::cpu {

// Storage type of a weight. Activations are always f32 on the host target.
// I8: int8 codes, one byte each. I4: two 4-bit codes per byte (low nibble = even column), each
// row starting on a byte boundary (ceil(cols / 2) bytes per row). I6: 6-bit two's complement
// codes, four per three bytes (column c at bits 6 (c % 4) of the little-endian 24-bit word at byte
// 3 (c / 4)), each row 3 ceil(cols / 4) bytes; docs/quantization.md.
enum class WeightType : uint8_t { F32, F16, BF16, F8E4M3, I8, I4, I6 };

// A row-major weight matrix [rows, cols] (a vector is 1 x cols). FP8 weights may be
// block-scaled as DeepSeek-V3 ships them: value = q * block_scale[r / block_rows][c / block_cols],
// block_scale holding ceil(rows / block_rows) x ceil(cols / block_cols) f32 values.
// Quantized encodings (at most one kind of scale per view):
//  * I8 / F8E4M3 per output channel: value = decode(q) * channel_scale[r] (rows values).
//  * I4 groups of group_size columns along a row (the last group may be partial),
//    G = ceil(cols / group_size): symmetric (group_zero null) codes are two's complement
//    nibbles in [-8, 7], value = q * group_scale[r * G + g]; asymmetric codes are unsigned
//    nibbles in [0, 15], value = (q - group_zero[r * G + g]) * group_scale[r * G + g], the zero
//    point a float in units of q (GPTQ/AWQ style). Both products are computed in f32.
//  * I6 groups likewise, symmetric only: codes in [-32, 31], value = q * group_scale[r * G + g].
struct WeightView {
  const void* data = nullptr;
  WeightType type = WeightType::F32;
  int64_t rows = 0, cols = 0;
  const float* block_scale = nullptr;
  int64_t block_rows = 0, block_cols = 0;
  const float* channel_scale = nullptr;  // [rows]
  const float* group_scale = nullptr;    // I4 / I6: [rows, G]
  const float* group_zero = nullptr;     // I4 asymmetric: [rows, G]; null = symmetric
  int64_t group_size = 0;                // I4 / I6: columns per group
  // Storage order of data. 0: row-major (row r at r * weightRowBytes). kPackRows: rows in
  // groups of kPackRows, each group's rows interleaved in chunks of kPackChunk columns (chunk c
  // of row r at group start + (c * kPackRows + r % kPackRows) * chunk bytes), so the decode
  // tiles read one sequential stream. Scales keep their row-major layout.
  int64_t packed = 0;
  // int8 activations (linear_a8.cpp): the weight is stored in that path's layout and linear
  // quantizes each token's activations per block (32 / 64 columns) for integer dot products.
  bool int8_act = false;
  // bf16 activations (linear_bf16act.cpp): likewise for bf16 weights, with bf16 dot products.
  bool bf16_act = false;
  // int8_act int4 / int6 weights: the group scales copied per 32-row panel ([panel][G][panel rows],
  // panel p at p * 32 * G floats), so the kernel loads 16 rows' scales with one vector load;
  // null: it gathers them from group_scale (same values, same results).
  const float* panel_group_scale = nullptr;
  // The same copy as f16 bits, where every scale is exactly a normal f16 (the quantizers make
  // them so): half the scale bytes per token, the same values. Read before panel_group_scale.
  const uint16_t* panel_group_scale_f16 = nullptr;
};

constexpr int64_t kPackRows = 4, kPackChunk = 8;

// Bytes of one stored row of `cols` elements (I4 / I6 rows are padded to whole bytes / quads).
int64_t weightRowBytes(WeightType type, int64_t cols);

// Whether w (row-major) can be stored packed: not f32, rows a multiple of kPackRows, cols of
// kPackChunk. packWeight writes the packed bytes of w (same size as w's data) to dst, which may
// be w.data itself, and returns the view of them; every kernel reads either layout with bitwise
// identical results.
bool canPackWeight(const WeightView& w);
WeightView packWeight(const WeightView& w, void* dst);

// Whether w (row-major) can be computed with int8 activations: int8 with channel scales (cols a
// multiple of 32) or symmetric int4 / int6 with groups of a multiple of 64 columns (cols a
// multiple of 64), rows a multiple of 16. packInt8Activations writes its layout (dst may be
// w.data) and returns the view with int8_act set; for int4 / int6, scale_dst (int8ActScaleFloats(w) floats, may be
// null) receives the panel copy of the group scales (WeightView::panel_group_scale). This changes
// results (activations are quantized): an artifact asks for it (ds-compile --quant-act int8),
// never the runtime on its own.
bool canUseInt8Activations(const WeightView& w);
int64_t int8ActScaleFloats(const WeightView& w);
WeightView packInt8Activations(const WeightView& w, void* dst, float* scale_dst = nullptr);
// The panel scale copy (n floats) as f16 bits in out, if every value is exactly a normal f16;
// false (out unspecified) if one is not.
bool panelScalesToF16(const float* scales, int64_t n, uint16_t* out);
// The same for bf16 activations (ds-compile --quant-act bf16): bf16 weights without scales,
// rows a multiple of 16, cols of 2.
bool canUseBf16Activations(const WeightView& w);
WeightView packBf16Activations(const WeightView& w, void* dst);

// Dequantizes row `r` of w into out[cols].
void dequantRow(const WeightView& w, int64_t r, float* out);

// Kernels use up to this many threads (default: hardware concurrency).
void setNumThreads(int n);
int numThreads();
// Overrides setNumThreads for the calling thread only (n <= 0 removes the override): each
// tensor-parallel rank runs on a thread of its own and must not fork a full team of its own.
void setThreadLocalNumThreads(int n);
// Runs f(begin, end) over [0, n) on the kernel threads (contiguous chunks, serial below
// min_per_thread items per thread or inside a parallel region): the runtime's row-wise loops
// (generated kernels) share the library's thread team instead of starting their own.
void parallelRows(int64_t n, int64_t min_per_thread, const std::function<void(int64_t, int64_t)>& f);

// Batch invariance (default on): every output row of linear/moe is computed with a reduction
// order that depends only on K, so a sequence's results are bitwise identical whatever else is in
// the batch. Off: linear with T >= 16 goes through cblas_sgemm (faster prefill, M-dependent order).
void setBatchInvariant(bool on);
bool batchInvariant();

// y[T, N] = x[T, K] W^T (+ bias[N]), W = [N, K] (Hugging Face layout). bias may be null.
void linear(const float* x, int64_t T, const WeightView& w, const float* bias, float* y);

// y[t] = w[ids[t]] (dequantized). Out-of-range ids are the caller's error (checked before).
void embed(const int32_t* ids, int64_t T, const WeightView& w, float* y);
// Vocab-parallel embed: w holds table rows [first_row, first_row + w.rows); ids outside that
// range give zero rows (the ranks' tables are summed afterwards).
void embedRange(const int32_t* ids, int64_t T, const WeightView& w, int64_t first_row, float* y);

// y = x / sqrt(mean(x^2) + eps) * w over rows of H; w is 1 x H. In-place allowed (y == x).
void rmsNorm(const float* x, int64_t T, int64_t H, const WeightView& w, float eps, float* y);

// out = a + b (n elements); out may alias a or b.
void add(const float* a, const float* b, int64_t n, float* out);
// out = silu(gate) * up (n elements); out may alias gate or up.
void swiglu(const float* gate, const float* up, int64_t n, float* out);

//===----------------------------------------------------------------------===//
// Rotary embedding (Hugging Face semantics for default, linear, llama3 and yarn)
//===----------------------------------------------------------------------===//

enum class RopeScaling : uint8_t { None, Linear, Llama3, Yarn };

struct RopeParams {
  double theta = 10000.0;
  int64_t dim = 0;             // rotated channels (the first `dim` of each head)
  // Pairs (2i, 2i+1) instead of (i, i + dim/2), rotated in place (DeepSeek-V2's complex form;
  // HF's V3 apply_rotary_pos_emb_interleave writes the same values de-interleaved, which gives
  // the same q.k as long as q and k both go through this kernel).
  bool interleaved = false;
  RopeScaling scaling = RopeScaling::None;
  double factor = 1.0;
  int64_t original_max_position = 0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  double beta_fast = 32.0, beta_slow = 1.0;              // yarn
  // yarn, Hugging Face semantics: 0 means "not given". attention_factor (cos/sin multiplier) is
  // taken as given when > 0, else get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
  // when both mscales are given, else get_mscale(factor) = 0.1 ln(factor) + 1.
  double mscale = 0.0, mscale_all_dim = 0.0, attention_factor = 0.0;
  bool truncate = true;  // yarn: floor/ceil the correction range (HF rope_parameters["truncate"])
};

// Hugging Face's yarn_get_mscale: 1 for scale <= 1, else 0.1 * mscale * ln(scale) + 1.
double yarnGetMscale(double scale, double mscale);
// The softmax scale of DeepSeek MLA: qk_head_dim^-0.5, times yarnGetMscale(factor,
// mscale_all_dim)^2 when scaling is not None and mscale_all_dim != 0 (HF yarn_apply_mscale).
float mlaSoftmaxScale(const RopeParams& p, int64_t qk_head_dim);

// Precomputed inverse frequencies and the yarn attention factor applied to cos/sin.
class RopeTable {
 public:
  explicit RopeTable(const RopeParams& p);
  // Rotates x[T, heads, head_dim] in place at positions[T].
  void apply(float* x, const int32_t* positions, int64_t T, int64_t heads, int64_t head_dim) const;
  const RopeParams& params() const { return p_; }
  float attentionFactor() const { return attention_factor_; }
  const std::vector<float>& invFreq() const { return inv_freq_; }

 private:
  RopeParams p_;
  float attention_factor_ = 1.0f;
  std::vector<float> inv_freq_;  // dim / 2 values, computed in f32 like torch
};

//===----------------------------------------------------------------------===//
// Paged KV cache and the ragged batch of one step
//===----------------------------------------------------------------------===//

// The tokens of one step: T tokens from S sequences, each token with its position and sequence.
// Sequence s owns blocks block_table[s * max_blocks_per_seq + i] for positions
// [i * block_size, (i + 1) * block_size).
struct BatchView {
  int64_t num_tokens = 0;
  const int32_t* positions = nullptr;   // [T]
  const int32_t* token_seq = nullptr;   // [T] sequence index of each token
  int64_t num_seqs = 0;
  const int32_t* block_table = nullptr; // [S, max_blocks_per_seq]
  int64_t max_blocks_per_seq = 0;
};

// Element type of a KV cache. I8 / F8E4M3 caches scale each written vector by its own f32 scale
// (dynamic absmax: I8 scale = absmax / 127, F8E4M3 scale = absmax / 448), value = decode(q) * scale.
enum class KVType : uint8_t { F32, I8, F8E4M3 };

// One layer of a GQA cache, head-major: k [kv_heads, num_blocks * block_size, head_dim],
// v [kv_heads, num_blocks * block_size, v_dim] (slot = block * block_size + offset; kvIndex).
// A kv head's keys of one block are contiguous, and of consecutive blocks one stream: measured on
// this project's Zen 4 VM, reading one head's vectors out of slot-major [slot, kv_heads, dim]
// rows (512 bytes read, 512 skipped) ran at 9-16 GB/s, the same bytes head-major at 24-38 GB/s.
// type F32 uses k / v. I8 / F8E4M3 use kq / vq (same shapes, one byte per element) and one scale
// per (kv head, slot): k_scale / v_scale [kv_heads, num_blocks * block_size]; k / v are unused.
struct PagedKV {
  float* k = nullptr;
  float* v = nullptr;
  int64_t num_blocks = 0, block_size = 0, kv_heads = 0, head_dim = 0, v_dim = 0;
  KVType type = KVType::F32;
  uint8_t* kq = nullptr;
  uint8_t* vq = nullptr;
  float* k_scale = nullptr;
  float* v_scale = nullptr;
};

// Index of (slot, kv head) in the cache: vector i at k + i * head_dim (kq + i * head_dim, scale
// k_scale[i]), v likewise.
inline int64_t kvIndex(const PagedKV& c, int64_t slot, int64_t kv_head) {
  return kv_head * c.num_blocks * c.block_size + slot;
}

// Bytes one block of one layer's GQA cache takes (K and V elements plus their scales).
int64_t kvBlockBytes(KVType type, int64_t block_size, int64_t kv_heads, int64_t head_dim,
                     int64_t v_dim);
// Points the cache's arrays (k, v or kq, vq, k_scale, v_scale by type) into one buffer of
// num_blocks * kvBlockBytes(...) bytes, 4-byte aligned: the f32 arrays first, then the codes.
void kvBindBuffer(PagedKV& cache, void* base);
// Dequantized (or copied, for F32) contents of one cache slot: k [kv_heads, head_dim],
// v [kv_heads, v_dim]; the values attention reads.
void kvReadSlot(const PagedKV& cache, int64_t slot, float* k, float* v);

// Writes the step's k [T, kv_heads, head_dim] and v [T, kv_heads, v_dim] at their positions.
void kvWrite(const PagedKV& cache, const BatchView& batch, const float* k, const float* v);

// Causal GQA over the cache (after kvWrite): token t attends to its sequence's positions
// [max(0, pos_t - window + 1), pos_t] (window 0 = unlimited). q [T, Hq, D] -> out [T, Hq, Dv].
void attention(const PagedKV& cache, const BatchView& batch, const float* q, int64_t q_heads,
               float scale, int64_t sliding_window, float* out);

// One layer of an MLA latent cache: [num_blocks, block_size, rank + rope_dim] (c_kv then k_rope).
// type F32 uses data. I8 / F8E4M3 use qdata (same shape, one byte per element) and two scales per
// slot, scales [num_blocks, block_size, 2]: the c_kv part's, then the k_rope part's.
struct PagedLatentKV {
  float* data = nullptr;
  int64_t num_blocks = 0, block_size = 0, rank = 0, rope_dim = 0;
  KVType type = KVType::F32;
  uint8_t* qdata = nullptr;
  float* scales = nullptr;
};

// Bytes one block of one layer's latent cache takes (elements plus scales).
int64_t mlaBlockBytes(KVType type, int64_t block_size, int64_t rank, int64_t rope_dim);
// Points data, or scales then qdata, into one buffer of num_blocks * mlaBlockBytes(...) bytes.
void mlaBindBuffer(PagedLatentKV& cache, void* base);
// Dequantized contents of one slot: c_kv [rank], k_rope [rope_dim].
void mlaKvReadSlot(const PagedLatentKV& cache, int64_t slot, float* c_kv, float* k_rope);

void mlaKvWrite(const PagedLatentKV& cache, const BatchView& batch, const float* c_kv,
                const float* k_rope);

// DeepSeek MLA: q_nope [T, H, Dn], q_rope [T, H, Dr] -> out [T, H, Dv] with
// kv_b = [H * (Dn + Dv), R] (per head: Dn rows of W_uk then Dv rows of W_uv).
// score = (W_uk^T q_nope) . c_kv + q_rope . k_rope, out = W_uv (sum p c_kv)  (absorbed form).
void mlaAttention(const PagedLatentKV& cache, const BatchView& batch, const float* q_nope,
                  const float* q_rope, const WeightView& kv_b, int64_t heads, int64_t nope_dim,
                  int64_t v_dim, float scale, float* out);

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

enum class MoeScoring : uint8_t { Softmax, Sigmoid };
enum class MoeTopkMethod : uint8_t { Greedy, GroupLimitedGreedy, NoauxTc };

struct MoEGateParams {
  int64_t top_k = 1, n_group = 1, topk_group = 1;
  MoeScoring scoring = MoeScoring::Softmax;
  MoeTopkMethod method = MoeTopkMethod::Greedy;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
};

// Router for x [T, H] with gate w [E, H] and optional correction_bias [E]:
// weights [T, top_k] f32, ids [T, top_k], exactly as Hugging Face's DeepSeek-V2/V3 gates.
void moeGate(const float* x, int64_t T, int64_t H, const WeightView& w,
             const float* correction_bias, const MoEGateParams& p, float* weights, int32_t* ids);

// out[t] = sum_j weights[t, j] * down_e(silu(gate_e x) * up_e x), e = ids[t, j], with per-expert
// views gate[e], up[e] ([I, H]) and down[e] ([H, I]). Tokens are grouped per expert so each
// expert's weights are read once per step. out is overwritten. The views hold experts
// [first_expert, first_expert + num_experts) (expert parallelism: one rank's share); slots naming
// any other expert, or no expert (-1), are skipped.
void moeExperts(const float* x, int64_t T, int64_t H, const float* weights, const int32_t* ids,
                int64_t top_k, const WeightView* gate, const WeightView* up,
                const WeightView* down, int64_t num_experts, float* out,
                int64_t first_expert = 0);

}  // namespace ds::cpu

// ModelRunner: weights as kernel views, buffers sized per step, one kernel call per plan launch;
// tensor-parallel plans run one such executor per rank on threads of their own.
#include "exec/model_runner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "artifact/artifact_reader.h"
#include "comm/communicator.h"
#include "cpu/cpu_kernels.h"
#include "exec/generated_kernels.h"
#include "exec/rank_workers.h"
#include "exec/tensor_parallel.h"
#include "model/dtype.h"

namespace ds {

namespace fbs = ::ds::fb;

namespace {

std::string kernelName(fbs::Kernel k) { return fbs::EnumNameKernel(k); }

// The kernels' cache element type for the plan's KV dtype; false if the host cannot store it.
bool kvTypeOf(fbs::DType dtype, cpu::KVType* out) {
  switch (dtype) {
    case fbs::DType_F32: *out = cpu::KVType::F32; return true;
    case fbs::DType_I8: *out = cpu::KVType::I8; return true;
    case fbs::DType_F8_E4M3: *out = cpu::KVType::F8E4M3; return true;
    default: return false;
  }
}

}  // namespace

// A weight as the kernels see it: one view (or one per expert), plus an f32 copy for small
// vectors the kernels take as float* (biases, router correction bias).
struct WeightEntry {
  std::vector<cpu::WeightView> views;  // 1, or `experts`
  std::vector<float> f32;              // only for 1-D tensors
};

// One tensor-parallel rank (the whole model when tp_size is 1): its weights (its shards), its
// KV cache and its buffers.
struct ModelRunner::Impl {
  const artifact::Artifact* artifact = nullptr;
  const fbs::Plan* plan = nullptr;
  int rank = 0, tp = 1;
  Communicator* comm = nullptr;  // null when tp == 1
  std::vector<WeightEntry> weights;
  std::vector<std::unique_ptr<cpu::RopeTable>> ropes;  // per launch (null if not a rope)
  // KV cache: per layer.
  fbs::KVKind kv_kind = fbs::KVKind_None;
  int64_t num_blocks = 0, block_size = 0;
  // One buffer per layer, uninitialized on purpose: pages of a large budget are only touched
  // when blocks are used. The kernels carve K/V (or the latent) and scales out of it.
  std::vector<std::unique_ptr<uint64_t[]>> kv_layers;
  cpu::PagedKV gqa;           // geometry (pointers set per layer)
  cpu::PagedLatentKV mla;
  // Activation buffers (f32 or i32, 4 bytes each), grown to the largest step seen. Planned
  // buffers live in one arena per row space instead (see Buffer.arena_offset).
  std::vector<std::vector<uint32_t>> storage;
  std::vector<uint8_t*> base;                 // per buffer, set at the start of every step
  std::vector<uint64_t> token_arena, row_arena;  // 8-byte words
  std::vector<int64_t> row_elems;  // elements per row of each buffer
  std::vector<float> scratch_a, scratch_b, scratch_c;
  int64_t vocab = 0;
  std::unique_ptr<GeneratedKernels> generated;  // the artifact's generated kernels (may be empty)

  Status init(const RunnerOptions& options);
  Status initWeights();
  Status checkBatch(const StepBatch& b) const;
  void* buffer(int id) { return base[id]; }
  void layoutBuffers(int64_t T, int64_t R);
  int64_t rowsOf(int id, int64_t T, int64_t R) const;
  // One rank's whole step: buffers, inputs, every launch (the batch is already checked).
  Status runStep(const StepBatch& b, int64_t T, int64_t R);
  Status run(const fbs::Launch& launch, size_t index, const StepBatch& b, int64_t T, int64_t R);
  // Rotates x [T, heads, dim] in place: launch `index`'s generated epilogue `slot` if it has one,
  // else the library rope table.
  void ropeInPlace(size_t index, size_t slot, float* x, const int32_t* pos, int64_t T,
                   int64_t heads, int64_t dim) {
    if (GeneratedKernelFn fn = generated->epilogue(index, slot)) {
      void* bufs[3] = {x, const_cast<int32_t*>(pos), x};  // (x, positions, y)
      fn(bufs, nullptr, T);
    } else {
      ropes[index]->apply(x, pos, T, heads, dim);
    }
  }
};

// Ranks 1..tp-1 (rank 0 is the runner's impl_), the group joining them and their threads.
struct ModelRunner::Parallel {
  std::vector<std::unique_ptr<Impl>> peers;
  std::unique_ptr<InProcessGroup> group;
  std::unique_ptr<RankWorkers> workers;  // last: joined before the ranks it runs are freed
};

Status ModelRunner::Impl::initWeights() {
  const auto* tensors = artifact->meta()->tensors();
  weights.resize(tensors->size());
  for (uint32_t i = 0; i < tensors->size(); ++i) {
    // Launches name a sharded weight by its rank-0 entry: this rank reads its own shard.
    const fbs::Tensor* t = tensors->Get(shardIndex(*artifact, i, rank));
    WeightEntry& e = weights[i];
    const uint8_t* data = artifact->tensorData(*t);
    std::vector<int64_t> shape(t->shape()->begin(), t->shape()->end());
    cpu::WeightView v;
    switch (t->dtype()) {
      case fbs::DType_F32: v.type = cpu::WeightType::F32; break;
      case fbs::DType_F16: v.type = cpu::WeightType::F16; break;
      case fbs::DType_BF16: v.type = cpu::WeightType::BF16; break;
      case fbs::DType_F8_E4M3: v.type = cpu::WeightType::F8E4M3; break;
      case fbs::DType_I8: v.type = cpu::WeightType::I8; break;
      case fbs::DType_I4: v.type = cpu::WeightType::I4; break;
      default:
        return unsupported(artifact->path() + ": tensor '" + t->name()->str() + "' has dtype " +
                           fbs::EnumNameDType(t->dtype()) + ", which the host kernels do not read");
    }
    int64_t experts = t->experts() > 0 ? t->experts() : 1;
    if (t->experts() > 0) shape.erase(shape.begin());
    v.rows = shape.size() == 1 ? 1 : shape[0];
    v.cols = shape.back();
    int64_t bytes_per_expert = v.rows * cpu::weightRowBytes(v.type, v.cols);
    // Compile-time quantization: per-channel or per-group scales (and int4 zero points).
    const float* qscale = nullptr;
    const float* qzero = nullptr;
    int64_t qscale_per_expert = 0;
    if (t->quant() != fbs::QuantKind_None) {
      if (t->qscale() < 0)
        return dataLoss(artifact->path() + ": quantized tensor '" + t->name()->str() + "' has no scales");
      if ((v.type == cpu::WeightType::I8) != (t->quant() == fbs::QuantKind_Int8PerChannel) ||
          (v.type == cpu::WeightType::I4) != (t->quant() == fbs::QuantKind_Int4Group))
        return dataLoss(artifact->path() + ": tensor '" + t->name()->str() + "' has dtype " +
                        fbs::EnumNameDType(t->dtype()) + " but quantization " +
                        fbs::EnumNameQuantKind(t->quant()));
      qscale = reinterpret_cast<const float*>(artifact->tensorData(*tensors->Get(t->qscale())));
      if (t->qzero() >= 0)
        qzero = reinterpret_cast<const float*>(artifact->tensorData(*tensors->Get(t->qzero())));
      int64_t groups = 1;
      if (t->quant() == fbs::QuantKind_Int4Group) {
        if (t->group_size() <= 0)
          return dataLoss(artifact->path() + ": int4 tensor '" + t->name()->str() + "' has no group size");
        v.group_size = t->group_size();
        groups = (v.cols + v.group_size - 1) / v.group_size;
      }
      qscale_per_expert = v.rows * groups;
      uint64_t have = tensors->Get(t->qscale())->nbytes() / sizeof(float);
      if (have != static_cast<uint64_t>(qscale_per_expert * experts))
        return dataLoss(artifact->path() + ": tensor '" + t->name()->str() + "' has " +
                        std::to_string(have) + " scales, expected " +
                        std::to_string(qscale_per_expert * experts));
    } else if (v.type == cpu::WeightType::I8 || v.type == cpu::WeightType::I4) {
      return dataLoss(artifact->path() + ": tensor '" + t->name()->str() + "' is " +
                      fbs::EnumNameDType(t->dtype()) + " without quantization scales");
    }
    const float* scale = nullptr;
    int64_t scale_per_expert = 0;
    if (t->scale() >= 0) {
      const fbs::Tensor* s = tensors->Get(t->scale());
      scale = reinterpret_cast<const float*>(artifact->tensorData(*s));
      v.block_rows = t->block()->Get(0);
      v.block_cols = t->block()->Get(1);
      scale_per_expert = ((v.rows + v.block_rows - 1) / v.block_rows) *
                         ((v.cols + v.block_cols - 1) / v.block_cols);
    }
    for (int64_t x = 0; x < experts; ++x) {
      cpu::WeightView ev = v;
      ev.data = data + x * bytes_per_expert;
      if (scale) ev.block_scale = scale + x * scale_per_expert;
      if (qscale) {
        if (t->quant() == fbs::QuantKind_Int4Group) {
          ev.group_scale = qscale + x * qscale_per_expert;
          if (qzero) ev.group_zero = qzero + x * qscale_per_expert;
        } else {
          ev.channel_scale = qscale + x * qscale_per_expert;
        }
      }
      e.views.push_back(ev);
    }
    if (shape.size() == 1) {
      e.f32.resize(v.cols);
      cpu::dequantRow(e.views[0], 0, e.f32.data());
    }
  }
  return Status::ok();
}

Status ModelRunner::Impl::init(const RunnerOptions& options) {
  plan = artifact->meta()->plan();
  if (!plan || !plan->buffers() || !plan->launches())
    return dataLoss(artifact->path() + ": artifact has no step plan");
  vocab = artifact->meta()->model()->vocab_size();
  if (options.num_threads > 0) {
    cpu::setNumThreads(options.num_threads);
  } else {
    // Fork/join costs microseconds per launch (milliseconds on a busy machine): a model whose
    // weights fit in cache-sized slices runs faster on one thread. Measured on stories260K
    // (1 MB): 4556 tokens/s on 1 thread vs 266 on 2 threads of a loaded 2-core machine.
    uint64_t weight_bytes = 0;
    for (const fbs::Segment* seg : *artifact->meta()->segments()) weight_bytes += seg->size();
    constexpr uint64_t kSingleThreadBelow = 64ull << 20;
    if (weight_bytes < kSingleThreadBelow) cpu::setNumThreads(1);
  }
  DS_RETURN_IF_ERROR(initWeights());
  StatusOr<std::unique_ptr<GeneratedKernels>> gen = GeneratedKernels::load(*artifact);
  if (!gen.isOk()) return gen.status();
  generated = std::move(gen.value());

  const fbs::KVCacheSpec* kv = plan->kv_cache();
  kv_kind = kv->kind();
  block_size = kv->block_size();
  num_blocks = options.num_kv_blocks;
  if (num_blocks <= 0) return invalidArgument("the KV cache needs at least one block");
  cpu::KVType kv_type;
  if (!kvTypeOf(kv->dtype(), &kv_type))
    return unsupported(artifact->path() + ": KV cache dtype " + fbs::EnumNameDType(kv->dtype()) +
                       " is not supported on the host");
  gqa = {nullptr, nullptr, num_blocks, block_size, kv->kv_heads(), kv->head_dim(), kv->v_dim()};
  gqa.type = kv_type;
  mla = {nullptr, num_blocks, block_size, kv->rank(), kv->rope_dim()};
  mla.type = kv_type;
  int64_t layer_bytes = 0;
  if (kv_kind == fbs::KVKind_GQA)
    layer_bytes = num_blocks * cpu::kvBlockBytes(kv_type, block_size, kv->kv_heads(), kv->head_dim(), kv->v_dim());
  else if (kv_kind == fbs::KVKind_MLA)
    layer_bytes = num_blocks * cpu::mlaBlockBytes(kv_type, block_size, kv->rank(), kv->rope_dim());
  for (int64_t l = 0; l < kv->num_layers() && layer_bytes > 0; ++l)
    kv_layers.emplace_back(new uint64_t[(layer_bytes + 7) / 8]);

  storage.resize(plan->buffers()->size());
  base.resize(plan->buffers()->size());
  for (const fbs::Buffer* buf : *plan->buffers()) {
    int64_t n = 1;
    if (buf->cols())
      for (int64_t c : *buf->cols()) n *= c;
    row_elems.push_back(n);
  }
  ropes.resize(plan->launches()->size());
  for (uint32_t i = 0; i < plan->launches()->size(); ++i) {
    const fbs::Launch* l = plan->launches()->Get(i);
    const fbs::RopeParams* r = nullptr;
    if (l->kernel() == fbs::Kernel_Rope || l->kernel() == fbs::Kernel_QKVRope)
      r = l->params_as_RopeParams();
    else if (l->kernel() == fbs::Kernel_MlaProject)
      r = l->params_as_MlaProjectParams() ? l->params_as_MlaProjectParams()->rope() : nullptr;
    else
      continue;
    if (!r) return dataLoss(artifact->path() + ": rope launch " + std::to_string(i) + " has no parameters");
    cpu::RopeParams p;
    p.theta = r->theta();
    p.dim = r->dim();
    p.interleaved = r->interleaved();
    p.scaling = static_cast<cpu::RopeScaling>(r->scaling());
    p.factor = r->factor();
    p.original_max_position = r->original_max_position();
    p.low_freq_factor = r->low_freq_factor();
    p.high_freq_factor = r->high_freq_factor();
    p.beta_fast = r->beta_fast();
    p.beta_slow = r->beta_slow();
    p.mscale = r->mscale();
    p.mscale_all_dim = r->mscale_all_dim();
    p.attention_factor = r->attention_factor();
    ropes[i] = std::make_unique<cpu::RopeTable>(p);
  }
  return Status::ok();
}

Status ModelRunner::Impl::checkBatch(const StepBatch& b) const {
  size_t T = b.token_ids.size();
  if (T == 0) return invalidArgument("a step needs at least one token");
  if (b.positions.size() != T || b.token_seq.size() != T)
    return invalidArgument("token_ids, positions and token_seq must have the same length");
  if (b.block_table.size() != static_cast<size_t>(b.num_seqs * b.max_blocks_per_seq))
    return invalidArgument("block_table must hold num_seqs x max_blocks_per_seq entries");
  for (size_t t = 0; t < T; ++t) {
    if (b.token_ids[t] < 0 || b.token_ids[t] >= vocab)
      return invalidArgument("token id " + std::to_string(b.token_ids[t]) + " outside the vocabulary [0, " + std::to_string(vocab) + ")");
    if (b.token_seq[t] < 0 || b.token_seq[t] >= b.num_seqs)
      return invalidArgument("token " + std::to_string(t) + " names sequence " + std::to_string(b.token_seq[t]));
    int64_t pos = b.positions[t];
    int64_t blk = pos / block_size;
    if (pos < 0 || blk >= b.max_blocks_per_seq)
      return invalidArgument("position " + std::to_string(pos) + " is not covered by the block table");
    int32_t id = b.block_table[b.token_seq[t] * b.max_blocks_per_seq + blk];
    if (id < 0 || id >= num_blocks)
      return invalidArgument("position " + std::to_string(pos) + " maps to KV block " + std::to_string(id) + " of " + std::to_string(num_blocks));
  }
  for (int32_t r : b.logit_rows)
    if (r < 0 || static_cast<size_t>(r) >= T)
      return invalidArgument("logit row " + std::to_string(r) + " outside the step's " + std::to_string(T) + " tokens");
  return Status::ok();
}

Status ModelRunner::Impl::run(const fbs::Launch& l, size_t index, const StepBatch& b, int64_t T,
                              int64_t R) {
  auto in = [&](int i) { return l.inputs()->Get(i); };
  auto out = [&](int i) { return l.outputs()->Get(i); };
  auto f = [&](int id) { return static_cast<float*>(buffer(id)); };
  auto w = [&](int i) -> const WeightEntry& { return weights[l.weights()->Get(i)]; };
  int nweights = l.weights() ? l.weights()->size() : 0;
  if (GeneratedKernelFn fn = generated->entry(index)) {  // docs/codegen.md (ABI checked at load)
    void* bufs[kMaxGeneratedBuffers];
    const float* ws[kMaxGeneratedWeights];
    int nb = 0;
    for (int id : *l.inputs()) bufs[nb++] = buffer(id);
    for (int id : *l.outputs()) bufs[nb++] = buffer(id);
    for (int i = 0; i < nweights; ++i) ws[i] = w(i).f32.data();
    fn(bufs, ws, rowsOf(out(0), T, R));
    return Status::ok();
  }
  cpu::BatchView batch{T, b.positions.data(), b.token_seq.data(), b.num_seqs,
                       b.block_table.data(), b.max_blocks_per_seq};
  switch (l.kernel()) {
    case fbs::Kernel_Embed: {
      const auto* ids = static_cast<const int32_t*>(buffer(in(0)));
      const fbs::EmbedParams* p = l.params_as_EmbedParams();
      if (!p || p->rows_per_rank() <= 0) {
        cpu::embed(ids, T, w(0).views[0], f(out(0)));
        return Status::ok();
      }
      // Vocab-parallel: this rank's rows only; the AllReduce that follows fills in the rest.
      cpu::WeightView table = w(0).views[0];
      table.rows = std::min(table.rows, p->rows_per_rank());
      cpu::embedRange(ids, T, table, rank * p->rows_per_rank(), f(out(0)));
      return Status::ok();
    }
    case fbs::Kernel_RmsNorm: {
      int64_t h = w(0).views[0].cols;
      cpu::rmsNorm(f(in(0)), T * row_elems[in(0)] / h, h, w(0).views[0],
                   l.params_as_NormParams()->eps(), f(out(0)));
      return Status::ok();
    }
    case fbs::Kernel_Linear:
      cpu::linear(f(in(0)), T, w(0).views[0], nweights > 1 ? w(1).f32.data() : nullptr, f(out(0)));
      return Status::ok();
    case fbs::Kernel_Add:
      cpu::add(f(in(0)), f(in(1)), T * row_elems[out(0)], f(out(0)));
      return Status::ok();
    case fbs::Kernel_SwiGLU:
      cpu::swiglu(f(in(0)), f(in(1)), T * row_elems[out(0)], f(out(0)));
      return Status::ok();
    case fbs::Kernel_Slice: {
      const fbs::SliceParams* p = l.params_as_SliceParams();
      const fbs::Buffer* src = plan->buffers()->Get(in(0));
      int64_t last = src->cols()->Get(src->cols()->size() - 1);
      int64_t rows = T * row_elems[in(0)] / last;
      const float* x = f(in(0));
      float* y = f(out(0));
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(y + r * p->size(), x + r * last + p->offset(), p->size() * sizeof(float));
      return Status::ok();
    }
    case fbs::Kernel_Rope: {
      const fbs::Buffer* buf = plan->buffers()->Get(out(0));
      int64_t heads = buf->cols()->Get(0), hd = buf->cols()->Get(1);
      if (f(out(0)) != f(in(0)))
        std::memcpy(f(out(0)), f(in(0)), T * row_elems[out(0)] * sizeof(float));
      ropes[index]->apply(f(out(0)), static_cast<const int32_t*>(buffer(in(1))), T, heads, hd);
      return Status::ok();
    }
    case fbs::Kernel_Attention: {
      const fbs::AttentionParams* p = l.params_as_AttentionParams();
      cpu::PagedKV kv = gqa;
      cpu::kvBindBuffer(kv, kv_layers[p->layer()].get());
      cpu::kvWrite(kv, batch, f(in(1)), f(in(2)));
      int64_t qHeads = plan->buffers()->Get(in(0))->cols()->Get(0);
      cpu::attention(kv, batch, f(in(0)), qHeads, p->scale(), p->sliding_window(), f(out(0)));
      return Status::ok();
    }
    case fbs::Kernel_MlaAttention: {
      const fbs::MlaParams* p = l.params_as_MlaParams();
      cpu::PagedLatentKV kv = mla;
      cpu::mlaBindBuffer(kv, kv_layers[p->layer()].get());
      cpu::mlaKvWrite(kv, batch, f(in(2)), f(in(3)));
      cpu::mlaAttention(kv, batch, f(in(0)), f(in(1)), w(0).views[0], p->heads(), p->nope_dim(),
                        p->v_dim(), p->scale(), f(out(0)));
      return Status::ok();
    }
    case fbs::Kernel_MoEGate: {
      const fbs::MoEGateParams* p = l.params_as_MoEGateParams();
      cpu::MoEGateParams g;
      g.top_k = p->top_k();
      g.n_group = p->n_group();
      g.topk_group = p->topk_group();
      g.scoring = p->scoring() == fbs::MoeScoring_Sigmoid ? cpu::MoeScoring::Sigmoid : cpu::MoeScoring::Softmax;
      g.method = static_cast<cpu::MoeTopkMethod>(p->method());
      g.norm_topk_prob = p->norm_topk_prob();
      g.routed_scaling_factor = p->routed_scaling_factor();
      const WeightEntry& gate = w(0);
      cpu::moeGate(f(in(0)), T, gate.views[0].cols, gate.views[0],
                   nweights > 1 ? w(1).f32.data() : nullptr, g, f(out(0)),
                   static_cast<int32_t*>(buffer(out(1))));
      return Status::ok();
    }
    case fbs::Kernel_MoEExperts: {
      int64_t hidden = row_elems[in(0)];
      int64_t topk = row_elems[in(1)];
      const WeightEntry &g = w(0), &u = w(1), &d = w(2);
      float* y = f(out(0));
      cpu::moeExperts(f(in(0)), T, hidden, f(in(1)), static_cast<const int32_t*>(buffer(in(2))),
                      topk, g.views.data(), u.views.data(), d.views.data(),
                      static_cast<int64_t>(g.views.size()), y);
      if (nweights == 6) {  // shared experts: an unscaled SwiGLU MLP added to the routed sum
        int64_t inter = w(3).views[0].rows;
        scratch_a.resize(T * inter);
        scratch_b.resize(T * inter);
        scratch_c.resize(T * hidden);
        cpu::linear(f(in(0)), T, w(3).views[0], nullptr, scratch_a.data());
        cpu::linear(f(in(0)), T, w(4).views[0], nullptr, scratch_b.data());
        cpu::swiglu(scratch_a.data(), scratch_b.data(), T * inter, scratch_a.data());
        cpu::linear(scratch_a.data(), T, w(5).views[0], nullptr, scratch_c.data());
        cpu::add(y, scratch_c.data(), T * hidden, y);
      }
      return Status::ok();
    }
    case fbs::Kernel_AddRmsNorm: {
      // One pass per row: the new residual stream and its norm.
      int64_t h = w(0).views[0].cols;
      int64_t rows = T * row_elems[in(0)] / h;
      // Tensor parallelism: b is this rank's partial sum, dead after this launch, so it is
      // reduced over the ranks in place first.
      if (comm && l.params_as_NormParams()->all_reduce_rhs())
        DS_RETURN_IF_ERROR(comm->allReduceSum(f(in(1)), T * row_elems[in(1)]));
      const float *a = f(in(0)), *c = f(in(1)), *wt = w(0).f32.data();
      float *sum = f(out(0)), *y = f(out(1));
      float eps = l.params_as_NormParams()->eps();
      for (int64_t r = 0; r < rows; ++r) {
        const float *ar = a + r * h, *cr = c + r * h;
        float* sr = sum + r * h;
        float ss = 0.0f;
        for (int64_t i = 0; i < h; ++i) {
          sr[i] = ar[i] + cr[i];
          ss += sr[i] * sr[i];
        }
        float inv = 1.0f / std::sqrt(ss / static_cast<float>(h) + eps);
        float* yr = y + r * h;
        for (int64_t i = 0; i < h; ++i) yr[i] = wt[i] * (sr[i] * inv);
      }
      return Status::ok();
    }
    case fbs::Kernel_SwiGLULinear: {
      if (l.weights()->Get(0) == l.weights()->Get(1)) {
        // Merged [2N, K] gate/up weight: one GEMM, then silu(gate) * up per row.
        int64_t n = w(0).views[0].rows / 2;
        scratch_a.resize(T * 2 * n);
        cpu::linear(f(in(0)), T, w(0).views[0], nullptr, scratch_a.data());
        float* y = f(out(0));
        GeneratedKernelFn epi = generated->epilogue(index, 0);
        for (int64_t t = 0; t < T; ++t) {
          float* gate = scratch_a.data() + t * 2 * n;
          if (epi) {  // one row at a time: gate and up rows are interleaved in the merged output
            void* bufs[3] = {gate, gate + n, y + t * n};
            epi(bufs, nullptr, 1);
          } else {
            cpu::swiglu(gate, gate + n, n, y + t * n);
          }
        }
        return Status::ok();
      }
      int64_t n = w(0).views[0].rows;
      scratch_a.resize(T * n);
      cpu::linear(f(in(0)), T, w(0).views[0], nullptr, scratch_a.data());
      cpu::linear(f(in(0)), T, w(1).views[0], nullptr, f(out(0)));
      if (GeneratedKernelFn epi = generated->epilogue(index, 0)) {
        void* bufs[3] = {scratch_a.data(), f(out(0)), f(out(0))};
        epi(bufs, nullptr, T);
      } else {
        cpu::swiglu(scratch_a.data(), f(out(0)), T * n, f(out(0)));
      }
      return Status::ok();
    }
    case fbs::Kernel_QKVRope: {
      // Three GEMMs straight into the q/k/v buffers, then q and k rotated in place.
      bool bias = nweights == 6;
      float *q = f(out(0)), *k = f(out(1)), *v = f(out(2));
      if (l.weights()->Get(0) == l.weights()->Get(1) && l.weights()->Get(1) == l.weights()->Get(2)) {
        // Merged [Nq + Nk + Nv, K] weight (and bias): one GEMM, rows split into q, k, v.
        int64_t nq = row_elems[out(0)], nk = row_elems[out(1)], nv = row_elems[out(2)];
        int64_t n = nq + nk + nv;
        scratch_a.resize(T * n);
        cpu::linear(f(in(0)), T, w(0).views[0], bias ? w(3).f32.data() : nullptr, scratch_a.data());
        for (int64_t t = 0; t < T; ++t) {
          const float* row = scratch_a.data() + t * n;
          std::memcpy(q + t * nq, row, nq * sizeof(float));
          std::memcpy(k + t * nk, row + nq, nk * sizeof(float));
          std::memcpy(v + t * nv, row + nq + nk, nv * sizeof(float));
        }
      } else {
        cpu::linear(f(in(0)), T, w(0).views[0], bias ? w(3).f32.data() : nullptr, q);
        cpu::linear(f(in(0)), T, w(1).views[0], bias ? w(4).f32.data() : nullptr, k);
        cpu::linear(f(in(0)), T, w(2).views[0], bias ? w(5).f32.data() : nullptr, v);
      }
      const auto* pos = static_cast<const int32_t*>(buffer(in(1)));
      const fbs::Buffer* qb = plan->buffers()->Get(out(0));
      const fbs::Buffer* kb = plan->buffers()->Get(out(1));
      ropeInPlace(index, 0, q, pos, T, qb->cols()->Get(0), qb->cols()->Get(1));
      ropeInPlace(index, 1, k, pos, T, kb->cols()->Get(0), kb->cols()->Get(1));
      return Status::ok();
    }
    case fbs::Kernel_MlaProject: {
      bool lora = nweights == 5;
      const fbs::MlaProjectParams* p = l.params_as_MlaProjectParams();
      const cpu::WeightView& qB = w(lora ? 2 : 0).views[0];
      const cpu::WeightView& kvA = w(lora ? 3 : 1).views[0];
      const WeightEntry& kvNorm = w(lora ? 4 : 2);
      const float* x = f(in(0));
      const float* src = x;
      if (lora) {
        const cpu::WeightView& qA = w(0).views[0];
        scratch_a.resize(T * qA.rows);
        cpu::linear(x, T, qA, nullptr, scratch_a.data());
        cpu::rmsNorm(scratch_a.data(), T, qA.rows, w(1).views[0], p->eps(), scratch_a.data());
        src = scratch_a.data();
      }
      scratch_b.resize(T * qB.rows);
      cpu::linear(src, T, qB, nullptr, scratch_b.data());
      const fbs::Buffer* nb = plan->buffers()->Get(out(0));
      int64_t heads = nb->cols()->Get(0), nope = nb->cols()->Get(1);
      int64_t rdim = plan->buffers()->Get(out(3))->cols()->Get(0);
      int64_t rank = plan->buffers()->Get(out(2))->cols()->Get(0);
      float *qNope = f(out(0)), *qRope = f(out(1)), *cKv = f(out(2)), *kRope = f(out(3));
      for (int64_t r = 0; r < T * heads; ++r) {
        const float* row = scratch_b.data() + r * (nope + rdim);
        std::memcpy(qNope + r * nope, row, nope * sizeof(float));
        std::memcpy(qRope + r * rdim, row + nope, rdim * sizeof(float));
      }
      scratch_c.resize(T * kvA.rows);
      cpu::linear(x, T, kvA, nullptr, scratch_c.data());
      for (int64_t t = 0; t < T; ++t) {
        std::memcpy(cKv + t * rank, scratch_c.data() + t * (rank + rdim), rank * sizeof(float));
        std::memcpy(kRope + t * rdim, scratch_c.data() + t * (rank + rdim) + rank, rdim * sizeof(float));
      }
      cpu::rmsNorm(cKv, T, rank, kvNorm.views[0], p->eps(), cKv);
      const auto* pos = static_cast<const int32_t*>(buffer(in(1)));
      ropeInPlace(index, 0, qRope, pos, T, heads, rdim);
      ropeInPlace(index, 1, kRope, pos, T, 1, rdim);
      return Status::ok();
    }
    case fbs::Kernel_Logits: {
      int64_t hidden = row_elems[in(0)];
      const int32_t* rows = static_cast<const int32_t*>(buffer(in(1)));
      scratch_a.resize(R * hidden);
      for (int64_t r = 0; r < R; ++r)
        std::memcpy(scratch_a.data() + r * hidden, f(in(0)) + rows[r] * hidden, hidden * sizeof(float));
      cpu::linear(scratch_a.data(), R, w(0).views[0], nullptr, f(out(0)));
      return Status::ok();
    }
    case fbs::Kernel_AllReduce: {
      const int64_t n = rowsOf(in(0), T, R) * row_elems[in(0)];
      if (f(out(0)) != f(in(0))) std::memcpy(f(out(0)), f(in(0)), n * sizeof(float));
      return comm ? comm->allReduceSum(f(out(0)), n) : Status::ok();
    }
    case fbs::Kernel_AllGather: {
      const int64_t rows = rowsOf(in(0), T, R), cols = row_elems[in(0)];
      if (row_elems[out(0)] != cols * tp)
        return dataLoss(artifact->path() + ": plan.launches[" + std::to_string(index) +
                        "] (AllGather) writes rows of " + std::to_string(row_elems[out(0)]) +
                        " elements, expected " + std::to_string(cols) + " x " + std::to_string(tp));
      if (comm) return comm->allGather(f(in(0)), rows, cols, f(out(0)));
      std::memcpy(f(out(0)), f(in(0)), rows * cols * sizeof(float));
      return Status::ok();
    }
  }
  return unsupported("kernel " + kernelName(l.kernel()) + " has no host implementation");
}

int64_t ModelRunner::Impl::rowsOf(int id, int64_t T, int64_t R) const {
  const fbs::Buffer* buf = plan->buffers()->Get(id);
  return buf->rows() == fbs::RowSpace_Tokens ? T
         : buf->rows() == fbs::RowSpace_LogitRows ? R : buf->fixed_rows();
}

Status ModelRunner::Impl::runStep(const StepBatch& b, int64_t T, int64_t R) {
  layoutBuffers(T, R);
  std::memcpy(buffer(plan->token_ids()), b.token_ids.data(), T * 4);
  std::memcpy(buffer(plan->positions()), b.positions.data(), T * 4);
  if (R) std::memcpy(buffer(plan->logit_rows()), b.logit_rows.data(), R * 4);
  for (uint32_t i = 0; i < plan->launches()->size(); ++i)
    DS_RETURN_IF_ERROR(run(*plan->launches()->Get(i), i, b, T, R));
  return Status::ok();
}

void ModelRunner::Impl::layoutBuffers(int64_t T, int64_t R) {
  auto grow = [](std::vector<uint64_t>& arena, uint64_t bytes) {
    if (arena.size() * 8 < bytes) arena.resize((bytes + 7) / 8);
  };
  grow(token_arena, static_cast<uint64_t>(T) * plan->arena_bytes_per_token());
  grow(row_arena, static_cast<uint64_t>(R) * plan->arena_bytes_per_logit_row());
  uint32_t n = plan->buffers()->size();
  for (uint32_t id = 0; id < n; ++id) {
    const fbs::Buffer* buf = plan->buffers()->Get(id);
    if (buf->alias_of() >= 0) continue;
    int64_t rows = buf->rows() == fbs::RowSpace_Tokens ? T
                   : buf->rows() == fbs::RowSpace_LogitRows ? R : buf->fixed_rows();
    if (buf->arena_offset() >= 0) {
      uint8_t* arena = reinterpret_cast<uint8_t*>(
          buf->rows() == fbs::RowSpace_LogitRows ? row_arena.data() : token_arena.data());
      base[id] = arena + rows * buf->arena_offset();
      continue;
    }
    size_t need = static_cast<size_t>(rows * row_elems[id]);
    if (storage[id].size() < need) storage[id].resize(need);
    base[id] = reinterpret_cast<uint8_t*>(storage[id].data());
  }
  for (uint32_t id = 0; id < n; ++id) {
    int alias = plan->buffers()->Get(id)->alias_of();
    if (alias >= 0) base[id] = base[alias];
  }
}

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl, std::unique_ptr<Parallel> tp)
    : impl_(std::move(impl)), tp_(std::move(tp)) {}
ModelRunner::~ModelRunner() = default;

StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::create(const artifact::Artifact& artifact,
                                                           const RunnerOptions& options) {
  DS_RETURN_IF_ERROR(checkTensorParallel(artifact));
  const int tp = artifact.meta()->plan() ? artifact.meta()->plan()->tp_size() : 1;
  auto impl = std::make_unique<Impl>();
  impl->artifact = &artifact;
  impl->tp = tp;
  DS_RETURN_IF_ERROR(impl->init(options));
  if (tp == 1) return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl), nullptr));

  auto par = std::make_unique<Parallel>();
  StatusOr<std::unique_ptr<InProcessGroup>> group = InProcessGroup::create(tp);
  if (!group.isOk()) return group.status();
  par->group = std::move(group).value();
  impl->comm = par->group->rank(0);
  for (int r = 1; r < tp; ++r) {
    auto peer = std::make_unique<Impl>();
    peer->artifact = &artifact;
    peer->rank = r;
    peer->tp = tp;
    peer->comm = par->group->rank(r);
    DS_RETURN_IF_ERROR(peer->init(options));
    par->peers.push_back(std::move(peer));
  }
  // One kernel thread per rank: the ranks are the parallelism.
  StatusOr<std::unique_ptr<RankWorkers>> workers = RankWorkers::create(tp, 1);
  if (!workers.isOk()) return workers.status();
  par->workers = std::move(workers).value();
  return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl), std::move(par)));
}

Status ModelRunner::step(const StepBatch& b, std::vector<float>* logits) {
  Impl& m = *impl_;
  DS_RETURN_IF_ERROR(m.checkBatch(b));
  int64_t T = static_cast<int64_t>(b.token_ids.size());
  int64_t R = static_cast<int64_t>(b.logit_rows.size());
  if (!tp_) {
    DS_RETURN_IF_ERROR(m.runStep(b, T, R));
  } else {
    // The first rank to fail aborts the group so peers waiting in a collective return too;
    // its error (not the peers' "aborted") is the step's.
    const int n = m.tp;
    std::vector<Status> status(n);
    std::atomic<int> first_failure{-1};
    tp_->workers->run([&](int r) {
      status[r] = (r == 0 ? m : *tp_->peers[r - 1]).runStep(b, T, R);
      if (status[r].isOk()) return;
      int none = -1;
      if (first_failure.compare_exchange_strong(none, r)) tp_->group->abort();
    });
    if (const int r = first_failure.load(); r >= 0) {
      tp_->group->reset();
      return Status(status[r].code(), "tensor-parallel rank " + std::to_string(r) + ": " +
                                          status[r].message());
    }
  }
  const float* out = static_cast<const float*>(m.buffer(m.plan->logits()));
  logits->assign(out, out + R * m.vocab);
  return Status::ok();
}

int64_t ModelRunner::vocabSize() const { return impl_->vocab; }
int64_t ModelRunner::blockSize() const { return impl_->block_size; }
int64_t ModelRunner::numBlocks() const { return impl_->num_blocks; }
size_t ModelRunner::numLaunches() const { return impl_->plan->launches()->size(); }
int ModelRunner::tpSize() const { return impl_->tp; }

StatusOr<uint64_t> ModelRunner::kvBytesPerBlock(const artifact::Artifact& artifact) {
  const fbs::Plan* plan = artifact.meta()->plan();
  if (!plan || !plan->kv_cache()) return dataLoss(artifact.path() + ": artifact has no KV cache spec");
  const fbs::KVCacheSpec* kv = plan->kv_cache();
  cpu::KVType type;
  if (!kvTypeOf(kv->dtype(), &type))
    return unsupported(artifact.path() + ": KV cache dtype " + fbs::EnumNameDType(kv->dtype()) +
                       " is not supported on the host");
  int64_t block = 0;
  if (kv->kind() == fbs::KVKind_GQA)
    block = cpu::kvBlockBytes(type, kv->block_size(), kv->kv_heads(), kv->head_dim(), kv->v_dim());
  if (kv->kind() == fbs::KVKind_MLA)
    block = cpu::mlaBlockBytes(type, kv->block_size(), kv->rank(), kv->rope_dim());
  // kv_cache is one rank's cache and every rank lives in this process.
  const int tp = plan->tp_size();
  if (tp < 1 || tp > kMaxTensorParallel)
    return dataLoss(artifact.path() + ": plan.tp_size " + std::to_string(tp) + " is outside [1, " +
                    std::to_string(kMaxTensorParallel) + "]");
  return static_cast<uint64_t>(block) * kv->num_layers() * static_cast<uint64_t>(tp);
}

}  // namespace ds

// The launch builder (cuda_launches.h): each launch ABI kind of a dense plan as calls of the CUDA
// kernel library (kernels/cuda/include/ds_cuda_kernels.h), and generated kernels per
// docs/codegen.md. Pure: shapes and addresses in, calls out.
#include "hal/cuda/cuda_launches.h"

#include <algorithm>
#include <cstring>

#include "hal/cuda/cuda_launch_builder.h"

namespace ds::hal::cuda {
namespace builder {

int64_t vectorLen(const std::vector<int64_t>& shape) { return shape.empty() ? 0 : shape.back(); }

Status Builder::build() {
  const LaunchDesc& l = *v_.launch;
  const LaunchParams& P = l.params;
  const int64_t T = s_.T;
  switch (l.kind) {
    case K::Embed: {
      DS_CUDA_ASSIGN(dt, act(v_.out_desc[0]));
      DS_CUDA_ASSIGN(wdt, weightDType(0));
      if (wdt != dt) return fail("the embedding table's dtype must be the activations'");
      ds_cuda_embed_params p{};
      p.ids = v_.in[0];
      p.weight = v_.weights[0];
      p.y = v_.out[0];
      p.num_tokens = static_cast<int32_t>(T);
      p.hidden = static_cast<int32_t>(v_.out_desc[0]->row_elems);
      const int64_t table = v_.weight_shape[0].empty() ? 0 : v_.weight_shape[0][0];
      p.table_rows = static_cast<int32_t>(P.rows_per_rank > 0 ? std::min(table, P.rows_per_rank) : table);
      p.row_offset = static_cast<int32_t>(P.rows_per_rank > 0 ? s_.rank * P.rows_per_rank : 0);
      p.dtype = dt;
      ds_cuda_plan plan;
      const char* e = ds_cuda_plan_embed(&p, &plan);
      return add(plan, e, bytesOf(p));
    }
    case K::RmsNorm:
    case K::AddRmsNorm: {
      const bool fused = l.kind == K::AddRmsNorm;
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      const int64_t cols = vectorLen(v_.weight_shape[0]);
      if (cols <= 0) return refused("norm weight has no length");
      // Tensor parallelism: the partial sum b, dead after this launch, is reduced in place first.
      if (fused && P.all_reduce_rhs)
        DS_RETURN_IF_ERROR(allReduce(v_.in[1], v_.in[1], v_.in_rows[1] * v_.in_desc[1]->row_elems, dt));
      return rmsNorm(v_.in[0], fused ? v_.in[1] : 0, fused ? v_.out[1] : v_.out[0],
                     fused ? v_.out[0] : 0, v_.in_rows[0] * v_.in_desc[0]->row_elems / cols, cols, 0, dt);
    }
    case K::Linear: {
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      DS_CUDA_ASSIGN(wdt, weightDType(0));
      uint64_t bias = 0;
      if (l.hasWeight(1)) {
        if (v_.weight_dtype[1] != DType::F32) return fail("the bias must be f32");
        bias = v_.weights[1];
      }
      const int64_t K_ = v_.in_desc[0]->row_elems, N = v_.out_desc[0]->row_elems;
      return gemm(v_.in[0], K_, weightRef(0, wdt, 0, K_), bias, v_.out[0], N, dt, v_.in_rows[0], N, K_);
    }
    case K::Add: {
      DS_CUDA_ASSIGN(dt, act(v_.out_desc[0]));
      ds_cuda_add_params p{};
      p.a = v_.in[0];
      p.b = v_.in[1];
      p.y = v_.out[0];
      p.n = v_.out_rows[0] * v_.out_desc[0]->row_elems;
      p.dtype = dt;
      ds_cuda_plan plan;
      const char* e = ds_cuda_plan_add(&p, &plan);
      return add(plan, e, bytesOf(p));
    }
    case K::SwiGLU: {
      DS_CUDA_ASSIGN(dt, act(v_.out_desc[0]));
      const int64_t n = v_.out_desc[0]->row_elems;
      ds_cuda_swiglu_params p{};
      p.gate = v_.in[0];
      p.up = v_.in[1];
      p.y = v_.out[0];
      p.rows = static_cast<int32_t>(v_.out_rows[0]);
      p.cols = p.gate_stride = p.up_stride = p.y_stride = static_cast<int32_t>(n);
      p.dtype = dt;
      ds_cuda_plan plan;
      const char* e = ds_cuda_plan_swiglu(&p, &plan);
      return add(plan, e, bytesOf(p));
    }
    case K::SwiGLULinear: {
      // gate|up = x [gate; up]^T into scratch [T, 2N], then y = silu(gate) * up.
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      DS_CUDA_ASSIGN(wdt, weightDType(0));
      const int64_t K_ = v_.in_desc[0]->row_elems, N = v_.out_desc[0]->row_elems;
      const int64_t ab = elemBytes(dt);
      setScratch(static_cast<uint64_t>(T * 2 * N * ab));
      const uint64_t gu = scratch();
      if (l.weights[0] == l.weights[1]) {
        DS_RETURN_IF_ERROR(gemm(v_.in[0], K_, weightRef(0, wdt, 0, K_), 0, gu, 2 * N, dt, T, 2 * N, K_));
      } else {
        DS_CUDA_ASSIGN(udt, weightDType(1));
        DS_RETURN_IF_ERROR(gemm(v_.in[0], K_, weightRef(0, wdt, 0, K_), 0, gu, 2 * N, dt, T, N, K_));
        DS_RETURN_IF_ERROR(gemm(v_.in[0], K_, weightRef(1, udt, 0, K_), 0, gu + N * ab, 2 * N, dt, T, N, K_));
      }
      ds_cuda_swiglu_params p{};
      p.gate = gu;
      p.up = gu + static_cast<uint64_t>(N * ab);
      p.y = v_.out[0];
      p.rows = static_cast<int32_t>(T);
      p.cols = p.y_stride = static_cast<int32_t>(N);
      p.gate_stride = p.up_stride = static_cast<int32_t>(2 * N);
      p.dtype = dt;
      ds_cuda_plan plan;
      const char* e = ds_cuda_plan_swiglu(&p, &plan);
      return add(plan, e, bytesOf(p));
    }
    case K::QKVRope: {
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      DS_CUDA_ASSIGN(wdt, weightDType(0));
      const std::vector<int64_t>&q = v_.out_desc[0]->cols, &k = v_.out_desc[1]->cols;
      const int64_t K_ = v_.in_desc[0]->row_elems;
      const int64_t nq = q[0] * q[1], nk = k[0] * k[1], nv = v_.out_desc[2]->row_elems;
      const bool merged = l.weights[0] == l.weights[1] && l.weights[1] == l.weights[2];
      const bool bias = l.hasWeight(3);
      if (bias && v_.weight_dtype[3] != DType::F32) return fail("q/k/v biases must be f32");
      WeightRef w[3];
      uint64_t b[3] = {0, 0, 0};
      const int64_t n[3] = {nq, nk, nv};
      if (merged) {  // [nq + nk + nv, K] (and bias): three GEMVs over row ranges of one tensor
        w[0] = weightRef(0, wdt, 0, K_);
        w[1] = weightRef(0, wdt, nq, K_);
        w[2] = weightRef(0, wdt, nq + nk, K_);
        if (bias) {
          b[0] = v_.weights[3];
          b[1] = b[0] + static_cast<uint64_t>(nq * 4);
          b[2] = b[1] + static_cast<uint64_t>(nk * 4);
        }
      } else {
        for (int i = 0; i < 3; ++i) {
          DS_CUDA_ASSIGN(dti, weightDType(static_cast<size_t>(i)));
          w[i] = weightRef(static_cast<size_t>(i), dti, 0, K_);
          if (bias) b[i] = v_.weights[3 + i];
        }
      }
      for (int i = 0; i < 3; ++i)
        DS_RETURN_IF_ERROR(gemm(v_.in[0], K_, w[i], b[i], v_.out[i], n[i], dt, T, n[i], K_));
      DS_RETURN_IF_ERROR(rope(v_.out[0], q[0], q[1], nq, dt));
      return rope(v_.out[1], k[0], k[1], nk, dt);
    }
    case K::Rope: {
      DS_CUDA_ASSIGN(dt, act(v_.out_desc[0]));
      if (v_.in[0] != v_.out[0]) return fail("an out-of-place rope (y not aliasing x) has no CUDA kernel");
      const std::vector<int64_t>& c = v_.out_desc[0]->cols;
      return rope(v_.out[0], c[0], c[1], c[0] * c[1], dt);
    }
    case K::Attention: {
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      if (!s_.kv || s_.kv->kind != KVKind::GQA || !s_.kv_layers) return refused("attention without a GQA cache");
      // int8 / fp8 caches: the host's per-vector scales (--kv-cache int8 / fp8); K then V, each
      // f32 scales then one-byte codes (ds_cuda_kernels.h): artifact::kvBytesPerSlot per slot.
      DS_CUDA_ASSIGN(kv_dt, kvCacheDType(dt, "KV cache"));
      const bool quantized = kv_dt != dt;
      const KVDesc& kvd = *s_.kv;
      if (kvd.v_dim != kvd.head_dim) return fail("v_dim != head_dim has no CUDA kernel");
      ds_cuda_paged_kv kv{};
      const uint64_t base = s_.kv_layers[P.layer];
      const int64_t vectors = s_.num_kv_blocks * kvd.block_size * kvd.kv_heads;
      const int64_t vector_bytes = quantized ? 4 + kvd.head_dim : kvd.head_dim * elemBytes(dt);
      if (kvd.bytes_per_slot != 0 && kvd.bytes_per_slot != static_cast<uint64_t>(2 * kvd.kv_heads * vector_bytes))
        return fail("the KV cache's bytes per slot are not what its CUDA layout takes");
      kv.k_cache = base;
      kv.v_cache = base + static_cast<uint64_t>(vectors * vector_bytes);
      kv.positions = s_.positions;
      kv.token_seq = s_.token_seq;
      kv.block_table = s_.block_table;
      kv.num_blocks = static_cast<int32_t>(s_.num_kv_blocks);
      kv.block_size = static_cast<int32_t>(kvd.block_size);
      kv.kv_heads = static_cast<int32_t>(kvd.kv_heads);
      kv.head_dim = static_cast<int32_t>(kvd.head_dim);
      kv.max_blocks_per_seq = static_cast<int32_t>(s_.max_blocks_per_seq);
      kv.dtype = kv_dt;
      ds_cuda_kv_write_params w{};
      w.kv = kv;
      w.act_dtype = dt;
      w.k = v_.in[1];
      w.v = v_.in[2];
      w.num_tokens = static_cast<int32_t>(T);
      ds_cuda_plan plan;
      const char* e = ds_cuda_plan_kv_write(&w, &plan);
      DS_RETURN_IF_ERROR(add(plan, e, bytesOf(w)));
      const int64_t q_heads = v_.in_desc[0]->cols[0];
      // decode: one query token per sequence, split-KV + combine (small heads: the prefill plan)
      if (s_.max_q_len <= 1 && ds_cuda_attn_has_decode(kv.head_dim)) {
        ds_cuda_attn_decode_params p{};
        p.kv = kv;
        p.q = v_.in[0];
        p.out = v_.out[0];
        p.workspace = kernelWorkspace();
        p.num_tokens = static_cast<int32_t>(T);
        p.q_heads = static_cast<int32_t>(q_heads);
        p.sliding_window = static_cast<int32_t>(P.sliding_window);
        p.scale = P.scale;
        p.max_context = static_cast<int32_t>(std::max<int64_t>(1, s_.max_context));
        p.act_dtype = dt;
        e = ds_cuda_plan_attn_decode(&p, &v_.limits, &plan);
        return add(plan, e, bytesOf(p));
      }
      if (!s_.seq_q_start) return refused("a prefill step needs seq_q_start on the device");
      ds_cuda_attn_prefill_params p{};
      p.kv = kv;
      p.q = v_.in[0];
      p.out = v_.out[0];
      p.seq_q_start = s_.seq_q_start;
      p.num_seqs = static_cast<int32_t>(s_.num_seqs);
      p.max_q_len = static_cast<int32_t>(s_.max_q_len);
      p.q_heads = static_cast<int32_t>(q_heads);
      p.sliding_window = static_cast<int32_t>(P.sliding_window);
      p.scale = P.scale;
      p.act_dtype = dt;
      e = ds_cuda_plan_attn_prefill(&p, &v_.limits, &plan);
      return add(plan, e, bytesOf(p));
    }
    case K::Logits: {
      // gather the logit rows into scratch [R, H], then GEMV against the [V, H] table.
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      DS_CUDA_ASSIGN(wdt, weightDType(0));
      const int64_t H = v_.in_desc[0]->row_elems, V = v_.out_desc[0]->row_elems, R = s_.R;
      setScratch(static_cast<uint64_t>(R * H * elemBytes(dt)));
      ds_cuda_gather_rows_params g{};
      g.x = v_.in[0];
      g.rows = v_.in[1];
      g.y = scratch();
      g.num_rows = static_cast<int32_t>(R);
      g.x_rows = static_cast<int32_t>(v_.in_rows[0]);
      g.hidden = static_cast<int32_t>(H);
      g.dtype = dt;
      ds_cuda_plan plan;
      const char* e = ds_cuda_plan_gather_rows(&g, &plan);
      DS_RETURN_IF_ERROR(add(plan, e, bytesOf(g)));
      // The logits buffer is f32 whatever the activations (the host sampler reads it).
      DS_CUDA_ASSIGN(odt, act(v_.out_desc[0]));
      if (odt != dt && odt != DS_CUDA_F32) return fail("logits must be f32 or the activations' dtype");
      return gemm(scratch(), H, weightRef(0, wdt, 0, H), 0, v_.out[0], V, dt, R, V, H, odt != dt);
    }
    case K::AllReduce: {
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      if (v_.out_desc[0]->dtype != v_.in_desc[0]->dtype) return fail("all_reduce changes the dtype");
      return allReduce(v_.in[0], v_.out[0], v_.in_rows[0] * v_.in_desc[0]->row_elems, dt);
    }
    case K::AllGather: {
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      const int64_t cols = v_.in_desc[0]->row_elems;
      if (v_.out_desc[0]->row_elems != cols * std::max(s_.tp, 1))
        return refused("all_gather: the output row is not tp input rows wide");
      return allGatherCols(v_.in[0], v_.in_rows[0], cols, v_.out[0], dt);
    }
    default:
      return buildDeepSeek();
  }
}

// docs/codegen.md (NVPTX): one block per row, grid = rows x row_scale, block = the kernel's
// .maxntid; parameters = memref descriptors (allocated, aligned, offset, sizes, strides) of the
// ins, outs, then weights. Buffers are viewed as [rows x row_scale, cols]; weights as [n].
Status Builder::buildGenerated() {
  const LaunchDesc& l = *v_.launch;
  if (v_.generated_threads == 0) return refused("generated kernel without a block size");
  // row_scale: norms view x [T, ..., H] as rows of the weight's length; other kernels 1.
  int64_t cols = v_.out_desc[0]->row_elems;
  int64_t rows = v_.out_rows[0];
  if ((l.kind == K::RmsNorm || l.kind == K::AddRmsNorm) && !v_.weight_shape[0].empty()) {
    cols = vectorLen(v_.weight_shape[0]);
    rows = v_.out_rows[0] * v_.out_desc[0]->row_elems / cols;
  }
  CudaCall c;
  c.symbol = l.code_symbol;
  c.generated = c.words = true;
  auto word = [&](uint64_t w) {
    const size_t at = c.params.size();
    c.params.resize(at + 8);
    std::memcpy(c.params.data() + at, &w, 8);
  };
  auto memref2 = [&](uint64_t p, const BufferDesc* d, int64_t r) {
    const int64_t cc = d->row_elems * r == rows * cols ? cols : d->row_elems;
    const int64_t rr = d->row_elems * r / cc;
    word(p), word(p), word(0), word(static_cast<uint64_t>(rr)), word(static_cast<uint64_t>(cc));
    word(static_cast<uint64_t>(cc)), word(1);
  };
  for (size_t i = 0; i < l.inputs.size(); ++i) memref2(v_.in[i], v_.in_desc[i], v_.in_rows[i]);
  for (size_t i = 0; i < l.outputs.size(); ++i) memref2(v_.out[i], v_.out_desc[i], v_.out_rows[i]);
  for (size_t i = 0; i < l.weights.size() && l.weights[i] >= 0; ++i) {
    if (v_.weight_dtype[i] != DType::F32) return fail("generated kernels read f32 weights");
    word(v_.weights[i]), word(v_.weights[i]), word(0);
    word(static_cast<uint64_t>(vectorLen(v_.weight_shape[i]))), word(1);
  }
  c.grid[0] = static_cast<uint32_t>(rows);
  c.block[0] = v_.generated_threads;
  out_.calls.push_back(std::move(c));
  return Status::ok();
}

}  // namespace builder

int cudaDType(DType d) {
  return d == DType::F32 ? DS_CUDA_F32 : d == DType::BF16 ? DS_CUDA_BF16 : -1;
}

StatusOr<CudaLaunchPlan> planCudaLaunch(const CudaLaunchView& view, const CudaStepView& step) {
  builder::Builder b(view, step);
  DS_RETURN_IF_ERROR(view.generated ? b.buildGenerated() : b.build());
  return b.take();
}

}  // namespace ds::hal::cuda

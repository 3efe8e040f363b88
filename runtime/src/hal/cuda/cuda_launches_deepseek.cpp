// The launch builder's DeepSeek kinds (cuda_launch_builder.h): slice, the MLA projections and
// attention over the latent cache, the MoE router and experts, as calls of the kernel library
// (ds_cuda_mla.h, ds_cuda_moe.h). Pure, like the dense kinds: shapes and addresses in, calls out.
#include "hal/cuda/cuda_launch_builder.h"

namespace ds::hal::cuda::builder {

Status Builder::buildDeepSeek() {
  const LaunchDesc& l = *v_.launch;
  const LaunchParams& P = l.params;
  const int64_t T = s_.T;
  ds_cuda_plan plan;
  // y[r] = x[r, cols] columns into a contiguous buffer.
  auto copy = [&](uint64_t x, int64_t xs, uint64_t y, int64_t ys, int64_t rows, int64_t cols, int dt) {
    return copyCols(x, xs, y, ys, rows, cols, dt);
  };
  // In-place RMSNorm of rows of `cols` (weight in slot `slot`).
  auto norm = [&](uint64_t x, int64_t rows, int64_t cols, size_t slot, int dt) {
    return rmsNorm(x, 0, x, 0, rows, cols, slot, dt);
  };
  switch (l.kind) {
    case K::Slice: {
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      const int64_t in = v_.in_desc[0]->row_elems, outc = v_.out_desc[0]->row_elems;
      if (P.size != outc || P.offset < 0 || P.offset + P.size > in) return refused("slice outside its row");
      return copy(v_.in[0] + static_cast<uint64_t>(P.offset * elemBytes(dt)), in, v_.out[0], outc,
                  v_.in_rows[0], outc, dt);
    }
    case K::MlaProject: {
      // [q_a -> q_a_norm ->] q_b -> (q_nope | q_rope) per head; kv_a -> (c_kv | k_rope);
      // kv_a_norm on c_kv; rope on q_rope and k_rope (the host's mlaProject).
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      const std::vector<int64_t>& qn = v_.out_desc[0]->cols;  // [H, Dn]
      const int64_t H = qn[0], Dn = qn[1], Dr = v_.out_desc[1]->cols[1];
      const int64_t R = v_.out_desc[2]->row_elems, Hd = v_.in_desc[0]->row_elems;
      const bool lora = l.hasWeight(0);
      if (qn.size() != 2 || v_.out_desc[1]->cols.size() != 2 || (lora && v_.weight_shape[0].size() != 2))
        return refused("mla_project operands or q_a weight of unexpected rank");
      const int64_t qr = lora ? v_.weight_shape[0][0] : 0, ab = elemBytes(dt);
      const uint64_t qa = scratch();
      const uint64_t q = qa + align256(static_cast<uint64_t>(T * qr * ab));
      const uint64_t kv = q + align256(static_cast<uint64_t>(T * H * (Dn + Dr) * ab));
      setScratch(kv - qa + static_cast<uint64_t>(T * (R + Dr) * ab));
      uint64_t qin = v_.in[0];
      int64_t qk = Hd;
      if (lora) {
        DS_CUDA_ASSIGN(adt, weightDType(0));
        DS_RETURN_IF_ERROR(gemm(v_.in[0], Hd, weightRef(0, adt, 0, Hd), 0, qa, qr, dt, T, qr, Hd));
        DS_RETURN_IF_ERROR(norm(qa, T, qr, 1, dt));
        qin = qa, qk = qr;
      }
      DS_CUDA_ASSIGN(bdt, weightDType(2));
      DS_RETURN_IF_ERROR(gemm(qin, qk, weightRef(2, bdt, 0, qk), 0, q, H * (Dn + Dr), dt, T, H * (Dn + Dr), qk));
      DS_RETURN_IF_ERROR(copy(q, Dn + Dr, v_.out[0], Dn, T * H, Dn, dt));
      DS_RETURN_IF_ERROR(copy(q + static_cast<uint64_t>(Dn * ab), Dn + Dr, v_.out[1], Dr, T * H, Dr, dt));
      DS_CUDA_ASSIGN(kdt, weightDType(3));
      DS_RETURN_IF_ERROR(gemm(v_.in[0], Hd, weightRef(3, kdt, 0, Hd), 0, kv, R + Dr, dt, T, R + Dr, Hd));
      DS_RETURN_IF_ERROR(copy(kv, R + Dr, v_.out[2], R, T, R, dt));
      DS_RETURN_IF_ERROR(copy(kv + static_cast<uint64_t>(R * ab), R + Dr, v_.out[3], Dr, T, Dr, dt));
      DS_RETURN_IF_ERROR(norm(v_.out[2], T, R, 4, dt));
      DS_RETURN_IF_ERROR(rope(v_.out[1], H, Dr, H * Dr, dt));
      return rope(v_.out[3], 1, Dr, Dr, dt);
    }
    case K::MlaAttention: {
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      if (!s_.kv || s_.kv->kind != KVKind::MLA || !s_.kv_layers) return refused("mla_attention without a latent cache");
      // The host's int8 / fp8 latent schemes (per slot a c_kv and a k_rope scale).
      DS_CUDA_ASSIGN(kv_dt, kvCacheDType(dt, "latent cache"));
      const bool quantized = kv_dt != dt;
      DS_CUDA_ASSIGN(wdt, weightDType(0));
      if (wdt == kInt4) return fail("kv_b must be f32, bf16 or FP8 block-scaled");
      const KVDesc& kvd = *s_.kv;
      if (s_.max_context < 1) return refused("mla_attention without the step's context length");
      // One slot: rank + rope elements, quantized: f32 scales [slots, 2] then one-byte codes
      // (artifact::kvBytesPerSlot; the kernels compute the same offsets).
      const uint64_t slot_bytes = quantized ? static_cast<uint64_t>(kvd.rank + kvd.rope_dim) + 8
                                              : static_cast<uint64_t>((kvd.rank + kvd.rope_dim) * elemBytes(dt));
      if (kvd.bytes_per_slot != 0 && kvd.bytes_per_slot != slot_bytes)
        return refused("the latent cache's bytes per slot are not the kernels' layout");
      ds_cuda_paged_latent kv{};
      kv.cache = s_.kv_layers[P.layer];
      kv.positions = s_.positions;
      kv.token_seq = s_.token_seq;
      kv.block_table = s_.block_table;
      kv.num_blocks = static_cast<int32_t>(s_.num_kv_blocks);
      kv.block_size = static_cast<int32_t>(kvd.block_size);
      kv.rank = static_cast<int32_t>(kvd.rank);
      kv.rope_dim = static_cast<int32_t>(kvd.rope_dim);
      kv.max_blocks_per_seq = static_cast<int32_t>(s_.max_blocks_per_seq);
      kv.dtype = kv_dt;
      ds_cuda_mla_kv_write_params w{};
      w.act_dtype = dt;
      w.kv = kv;
      w.c_kv = v_.in[2];
      w.k_rope = v_.in[3];
      w.num_tokens = static_cast<int32_t>(T);
      w.c_stride = kv.rank;
      w.k_stride = kv.rope_dim;
      DS_RETURN_IF_ERROR(add(plan, ds_cuda_plan_mla_kv_write(&w, &plan), bytesOf(w)));
      ds_cuda_mla_decode_params p{};
      p.kv = kv;
      p.q_nope = v_.in[0];
      p.q_rope = v_.in[1];
      p.kv_b = v_.weights[0];
      p.out = v_.out[0];
      p.workspace = kernelWorkspace();
      p.num_tokens = static_cast<int32_t>(T);
      p.heads = static_cast<int32_t>(P.heads);
      p.nope_dim = static_cast<int32_t>(P.nope_dim);
      p.v_dim = static_cast<int32_t>(P.v_dim);
      p.act_dtype = dt;
      p.weight_dtype = wdt == kFp8 ? int32_t{DS_CUDA_FP8_E4M3} : wdt;
      if (wdt == kFp8) {
        p.kv_b_scale = v_.weight_block_scale[0];
        p.block_rows = static_cast<int32_t>(v_.weight_block[0][0]);
        p.block_cols = static_cast<int32_t>(v_.weight_block[0][1]);
      }
      p.scale = P.scale;
      p.max_context = static_cast<int32_t>(s_.max_context);
      // Steps with several tokens of one sequence (prefill, chunked prefill) take the prefill
      // attention: a block stages each latent tile once for 4 tokens x 8 heads. Decode steps
      // (and libraries without it) keep the split-KV decode kernels.
      if (s_.max_q_len > 1 && v_.mla_prefill) {
        if (!s_.seq_q_start) return refused("an MLA prefill step needs seq_q_start on the device");
        p.seq_q_start = s_.seq_q_start;
        p.num_seqs = static_cast<int32_t>(s_.num_seqs);
        p.max_q_len = static_cast<int32_t>(s_.max_q_len);
        const char* e = ds_cuda_plan_mla_prefill(&p, &plan);  // sets splits before the copy
        return add(plan, e, bytesOf(p));
      }
      const char* e = ds_cuda_plan_mla_decode(&p, &v_.limits, &plan);
      return add(plan, e, bytesOf(p));
    }
    case K::MoEGate: {
      // f32 router logits [T, E] (a GEMM into scratch), then ds_moe_route.
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      DS_CUDA_ASSIGN(wdt, weightDType(0));
      if (v_.weight_shape[0].size() != 2) return refused("the router weight must be a matrix");
      const int64_t H = v_.in_desc[0]->row_elems, E = v_.weight_shape[0][0];
      setScratch(static_cast<uint64_t>(T * E * 4));
      DS_RETURN_IF_ERROR(gemm(v_.in[0], H, weightRef(0, wdt, 0, H), 0, scratch(), E, dt, T, E, H,
                              dt != DS_CUDA_F32));
      if (l.hasWeight(1) && v_.weight_dtype[1] != DType::F32) return fail("the correction bias must be f32");
      ds_cuda_moe_route_params p{};
      p.logits = scratch();
      p.correction_bias = l.hasWeight(1) ? v_.weights[1] : 0;
      p.weights = v_.out[0];
      p.ids = v_.out[1];
      p.num_tokens = static_cast<int32_t>(T);
      p.num_experts = static_cast<int32_t>(E);
      p.top_k = static_cast<int32_t>(P.top_k);
      p.n_group = static_cast<int32_t>(P.n_group);
      p.topk_group = static_cast<int32_t>(P.topk_group);
      p.scoring = P.scoring;
      p.method = P.topk_method;
      p.norm_topk_prob = P.norm_topk_prob ? 1 : 0;
      p.routed_scaling_factor = P.routed_scaling_factor;
      return add(plan, ds_cuda_plan_moe_route(&p, &plan), bytesOf(p));
    }
    case K::MoEExperts: {
      // permute -> gate/up SwiGLU -> down -> [shared experts] -> weighted combine.
      DS_CUDA_ASSIGN(dt, act(v_.in_desc[0]));
      const int64_t H = v_.in_desc[0]->row_elems, k = v_.in_desc[2]->row_elems;
      const std::vector<int64_t>& gs = v_.weight_shape[0];  // [E_local, I, H]
      if (gs.size() != 3) return refused("expert weights must be stacked [experts, rows, cols]");
      const int64_t L = gs[0], I = gs[1];
      // bf16 experts, or DeepSeek's FP8 with 128 x 128 block scales (the expert GEMV's grid).
      const bool fp8 = v_.weight_dtype[0] == DType::F8E4M3;
      for (size_t s = 0; s < 3; ++s) {
        if (v_.weight_dtype[s] != (fp8 ? DType::F8E4M3 : DType::BF16))
          return fail("expert weights must be bf16, or FP8 E4M3 all three (int8 / int4 / f32 "
                      "experts have no CUDA kernel yet)");
        if (fp8 && (!v_.weight_block_scale[s] || v_.weight_block[s][0] != DS_CUDA_MOE_FP8_BLOCK ||
                    v_.weight_block[s][1] != DS_CUDA_MOE_FP8_BLOCK))
          return fail("FP8 experts need 128 x 128 block scales (per-channel --quant fp8 experts "
                      "have no CUDA kernel yet; a tensor-parallel cut inside a block regrids "
                      "them: use --ep)");
      }
      ds_cuda_moe_workspace ws;
      if (const char* e = ds_cuda_moe_workspace_layout(static_cast<int32_t>(T), 1, static_cast<int32_t>(k),
                                                       static_cast<int32_t>(L), static_cast<int32_t>(I),
                                                       static_cast<int32_t>(H), dt, &ws))
        return refused(e);
      const bool shared = l.hasWeight(3);
      if (shared && v_.weight_shape[3].size() != 2) return refused("shared_gate must be a matrix");
      const int64_t Is = shared ? v_.weight_shape[3][0] : 0, ab = elemBytes(dt);
      const uint64_t base = scratch(), sgu = base + ws.total_bytes;
      const uint64_t sout = sgu + align256(static_cast<uint64_t>(T * 2 * Is * ab));
      setScratch(ws.total_bytes + (shared ? sout - sgu + static_cast<uint64_t>(T * H * ab) : 0));
      ds_cuda_moe_permute_params pm{};
      pm.ids = v_.in[2];
      pm.weights = v_.in[1];
      pm.expert_start = base + ws.expert_start;
      pm.active = base + ws.active;
      pm.row_token = base + ws.row_token;
      pm.row_weight = base + ws.row_weight;
      pm.slot_row = base + ws.slot_row;
      pm.num_tokens = static_cast<int32_t>(T);
      pm.top_k = static_cast<int32_t>(k);
      pm.first_expert = static_cast<int32_t>(s_.rank * P.experts_per_rank);
      pm.num_local = static_cast<int32_t>(L);
      DS_RETURN_IF_ERROR(add(plan, ds_cuda_plan_moe_permute(&pm, &plan), bytesOf(pm)));
      auto expertGemv = [&](uint64_t x, int64_t K_, size_t w, size_t w2, uint64_t y, int64_t N, bool gather) {
        ds_cuda_moe_gemv_params g{};
        g.x = x;
        g.w = v_.weights[w];
        g.w2 = gather ? v_.weights[w2] : 0;
        g.w_scale = fp8 ? v_.weight_block_scale[w] : 0;
        g.w2_scale = fp8 && gather ? v_.weight_block_scale[w2] : 0;
        g.y = y;
        g.expert_start = pm.expert_start;
        g.active = pm.active;
        g.row_token = pm.row_token;
        g.N = static_cast<int32_t>(N);
        g.K = static_cast<int32_t>(K_);
        g.x_stride = static_cast<int32_t>(K_);
        g.y_stride = static_cast<int32_t>(N);
        g.num_local = static_cast<int32_t>(L);
        g.max_rows = static_cast<int32_t>(T * k);
        g.gather = g.swiglu = gather ? 1 : 0;
        g.act_dtype = dt;
        g.weight_dtype = fp8 ? int32_t{DS_CUDA_FP8_E4M3} : int32_t{DS_CUDA_BF16};
        // Prefill (more tokens than a GEMV pass takes): the grouped tensor-core GEMM, one launch
        // for every active expert; decode steps keep the GEMV.
        // --quant-act fp8 on FP8 tensor cores: FP8 x FP8 when K is whole 128-blocks.
        if (v_.fp8_moe && fp8 && T > kGemvMaxRows && !ds_cuda_plan_moe_gemm_fp8mma(&g, &plan))
          return add(plan, nullptr, bytesOf(g));
        if (v_.quant_gemm && dt == DS_CUDA_BF16 && T > kGemvMaxRows && !ds_cuda_plan_moe_gemm(&g, &plan))
          return add(plan, nullptr, bytesOf(g));
        return add(plan, ds_cuda_plan_moe_gemv(&g, &plan), bytesOf(g));
      };
      DS_RETURN_IF_ERROR(expertGemv(v_.in[0], H, 0, 1, base + ws.h, I, true));
      DS_RETURN_IF_ERROR(expertGemv(base + ws.h, I, 2, 2, base + ws.y, H, false));
      if (shared) {
        DS_CUDA_ASSIGN(gdt, weightDType(3));
        DS_CUDA_ASSIGN(udt, weightDType(4));
        DS_CUDA_ASSIGN(ddt, weightDType(5));
        DS_RETURN_IF_ERROR(gemm(v_.in[0], H, weightRef(3, gdt, 0, H), 0, sgu, 2 * Is, dt, T, Is, H));
        DS_RETURN_IF_ERROR(gemm(v_.in[0], H, weightRef(4, udt, 0, H), 0, sgu + static_cast<uint64_t>(Is * ab),
                                2 * Is, dt, T, Is, H));
        ds_cuda_swiglu_params sw{};
        sw.gate = sgu;
        sw.up = sgu + static_cast<uint64_t>(Is * ab);
        sw.y = sgu;
        sw.rows = static_cast<int32_t>(T);
        sw.cols = static_cast<int32_t>(Is);
        sw.gate_stride = sw.up_stride = sw.y_stride = static_cast<int32_t>(2 * Is);
        sw.dtype = dt;
        DS_RETURN_IF_ERROR(add(plan, ds_cuda_plan_swiglu(&sw, &plan), bytesOf(sw)));
        DS_RETURN_IF_ERROR(gemm(sgu, 2 * Is, weightRef(5, ddt, 0, Is), 0, sout, H, dt, T, H, Is));
      }
      ds_cuda_moe_combine_params c{};
      c.y = base + ws.y;
      c.ids = v_.in[2];
      c.weights = v_.in[1];
      c.slot_row = pm.slot_row;
      c.shared = shared ? sout : 0;
      c.out = v_.out[0];
      c.num_tokens = static_cast<int32_t>(T);
      c.top_k = static_cast<int32_t>(k);
      c.hidden = static_cast<int32_t>(H);
      c.dtype = dt;
      return add(plan, ds_cuda_plan_moe_combine(&c, &plan), bytesOf(c));
    }
    default:
      return fail("no CUDA kernel for this kind yet (collectives: tensor parallelism on GPUs)");
  }
}

}  // namespace ds::hal::cuda::builder

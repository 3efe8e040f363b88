// Ops of the `ds` dialect: weights, layers, attention (GQA, MLA), MoE, logits.
#ifndef DS_OPS_TD
#define DS_OPS_TD

include "dialects/ds/DsBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class DS_Op<string mnemonic, list<Trait> traits = []> : Op<DS_Dialect, mnemonic, traits>;

// Activations: ranked float tensors; the token dimension comes first.
def DS_Activation : RankedTensorOf<[F32, F16, BF16]>;
def DS_TokenIds : 1DTensorOf<[I32, I64]>;

// Ops that name weights implement verifySymbolUses so shapes are checked
// against the ds.weight declarations.
class DS_WeightUserOp<string mnemonic, list<Trait> traits = []>
    : DS_Op<mnemonic, !listconcat(traits, [
        DeclareOpInterfaceMethods<SymbolUserOpInterface>])>;

//===----------------------------------------------------------------------===//
// ds.weight
//===----------------------------------------------------------------------===//

def DS_WeightOp : DS_Op<"weight", [Symbol, HasParent<"::mlir::ModuleOp">,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "declares a weight tensor stored in the checkpoint";
  let description = [{
    A module-level symbol for one weight. `name` is the tensor's name in the
    checkpoint (safetensors); `file` the shard holding it when known. Stacked
    expert weights have `experts = E`, a leading dimension of E and a name with
    an `{e}` placeholder for the expert index. Block-scaled FP8 weights
    (DeepSeek-V3) name their `scale` weight and the `block` shape.

    ```mlir
    ds.weight @q_proj : tensor<128x64xbf16> {name = "model.layers.0.self_attn.q_proj.weight", file = "model.safetensors"}
    ds.weight @w : tensor<256x128xf8E4M3FN> {name = "w", scale = @w_scale, block = array<i64: 128, 128>}
    ```

    `quant` asks ds-compile to quantize the weight while streaming it into the
    artifact: "int8" (per output channel), "fp8" (E4M3 per output channel),
    "int4_g64", "int4_g128" (symmetric groups along the input dimension) or
    "int4_g64_asym", "int4_g128_asym" (with zero points), or "int6_g64",
    "int6_g128" (symmetric 6-bit groups: the host's output layer / embedding
    table). The IR keeps the checkpoint type; the artifact records the encoding.

    `shard = array<i64: dim, pieces>` (set by `ds-shard-tensor-parallel`)
    makes the type the *rank-local* shape: the checkpoint tensor's dimension
    `dim` is `pieces` times larger and is cut into `pieces` contiguous parts.
    With `ds.tp = N` ranks on the module, rank r holds part `r / (N / pieces)`
    (pieces < N replicates parts, e.g. KV heads fewer than ranks).
    A stacked expert weight cut along dimension 0 (expert parallelism) keeps
    `experts` equal to its rank-local leading dimension; the checkpoint holds
    `experts * pieces` experts.

    `concat = ["a", "b", ...]` (set by `ds-fusion-merge-projection-weights`)
    makes the weight the checkpoint tensors a, b, ... stacked along dimension
    0, e.g. q/k/v projections merged into one GEMM.
  }];
  let arguments = (ins
    SymbolNameAttr:$sym_name,
    TypeAttrOf<AnyStaticShapeTensor>:$type,
    StrAttr:$name,
    OptionalAttr<StrAttr>:$file,
    OptionalAttr<I64Attr>:$experts,
    OptionalAttr<FlatSymbolRefAttr>:$scale,
    OptionalAttr<DenseI64ArrayAttr>:$block,
    OptionalAttr<StrAttr>:$quant,
    OptionalAttr<DenseI64ArrayAttr>:$shard,
    OptionalAttr<StrArrayAttr>:$concat
  );
  let assemblyFormat = "$sym_name `:` $type attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
    // The checkpoint tensor's shape (the type, unless the weight is a tensor-parallel shard).
    ::llvm::SmallVector<int64_t> getFullShape();
  }];
}

//===----------------------------------------------------------------------===//
// Elementwise and normalisation
//===----------------------------------------------------------------------===//

def DS_EmbedOp : DS_WeightUserOp<"embed", [Pure]> {
  let summary = "token embedding lookup";
  let description = [{
    `%h = ds.embed @embed_tokens(%ids) : tensor<?xi32> -> tensor<?x64xf32>`
    gathers rows of a [vocab, hidden] weight. With `rows_per_rank` the
    embedding is vocab-parallel: rank r's weight holds table rows
    [r * rows_per_rank, (r + 1) * rows_per_rank) and ids outside that range
    give zero rows, so the ranks' results sum (`ds.all_reduce`) to the lookup.
  }];
  let arguments = (ins FlatSymbolRefAttr:$weight, DS_TokenIds:$ids,
                       OptionalAttr<I64Attr>:$rows_per_rank);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$weight `(` $ids `)` attr-dict `:` type($ids) `->` type($result)";
  let hasVerifier = 1;
}

def DS_RMSNormOp : DS_WeightUserOp<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "RMSNorm over the last dimension, scaled by a weight vector";
  let description = [{
    `y = x / sqrt(mean(x^2) + eps) * weight`, computed in f32.
  }];
  let arguments = (ins FlatSymbolRefAttr:$weight, DS_Activation:$input, F32Attr:$eps);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$weight `(` $input `)` attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def DS_LinearOp : DS_WeightUserOp<"linear", [Pure]> {
  let summary = "y = x W^T (+ b), W stored [out, in] as in Hugging Face checkpoints";
  let arguments = (ins FlatSymbolRefAttr:$weight, DS_Activation:$input,
                       OptionalAttr<FlatSymbolRefAttr>:$bias);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$weight `(` $input `)` attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def DS_AddOp : DS_Op<"add", [Pure, SameOperandsAndResultType]> {
  let summary = "elementwise add (residual connections)";
  let arguments = (ins DS_Activation:$lhs, DS_Activation:$rhs);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def DS_SwiGLUOp : DS_Op<"swiglu", [Pure, SameOperandsAndResultType]> {
  let summary = "silu(gate) * up";
  let arguments = (ins DS_Activation:$gate, DS_Activation:$up);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def DS_AddRMSNormOp : DS_WeightUserOp<"add_rms_norm", [Pure,
    AllTypesMatch<["lhs", "rhs", "sum", "result"]>]> {
  let summary = "fused residual add + RMSNorm: sum = lhs + rhs, result = rms_norm(sum)";
  let description = [{
    What `ds-fusion-add-rms-norm` makes of `ds.add` feeding `ds.rms_norm`:
    one pass over the rows yields both the new residual stream and its norm.
    With `all_reduce_rhs` (tensor parallelism, `ds-fusion-all-reduce-add-rms-norm`)
    `rhs` is rank-partial and is summed over the ranks first:
    sum = lhs + all_reduce(rhs).
  }];
  let arguments = (ins FlatSymbolRefAttr:$weight, DS_Activation:$lhs, DS_Activation:$rhs,
                       F32Attr:$eps, UnitAttr:$all_reduce_rhs);
  let results = (outs DS_Activation:$sum, DS_Activation:$result);
  let assemblyFormat = "$weight `(` $lhs `,` $rhs `)` attr-dict `:` type($lhs)";
  let hasVerifier = 1;
}

def DS_SwiGLULinearOp : DS_WeightUserOp<"swiglu_linear", [Pure]> {
  let summary = "fused gate/up projections with SwiGLU: silu(x Wg^T) * (x Wu^T)";
  let description = [{
    What `ds-fusion-swiglu-linear` makes of two bias-free `ds.linear` ops on
    the same input feeding `ds.swiglu`. Both weights are [N, K]; or `gate` and
    `up` name the same [2N, K] weight (gate rows first): one GEMM.
  }];
  let arguments = (ins FlatSymbolRefAttr:$gate, FlatSymbolRefAttr:$up, DS_Activation:$input);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$gate `,` $up `(` $input `)` attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def DS_QKVRopeOp : DS_WeightUserOp<"qkv_rope", [Pure]> {
  let summary = "fused q/k/v projections (optional biases) with rotary embedding of q and k";
  let description = [{
    What `ds-fusion-qkv-rope` makes of three projections of one input, their
    views to heads and the rope of q and k: q [T, Hq, D] and k [T, Hkv, D]
    come out rotated, v [T, Hkv, Dv] as projected. Biases are all present or
    all absent. When wq, wk and wv name the same weight it is the merged
    [Nq + Nk + Nv, K] projection (one GEMM), and likewise for the biases.
  }];
  let arguments = (ins FlatSymbolRefAttr:$wq, FlatSymbolRefAttr:$wk, FlatSymbolRefAttr:$wv,
                       DS_Activation:$input, DS_TokenIds:$positions, DS_RopeAttr:$rope,
                       OptionalAttr<FlatSymbolRefAttr>:$bq, OptionalAttr<FlatSymbolRefAttr>:$bk,
                       OptionalAttr<FlatSymbolRefAttr>:$bv);
  let results = (outs DS_Activation:$q, DS_Activation:$k, DS_Activation:$v);
  let assemblyFormat = [{
    $wq `,` $wk `,` $wv `(` $input `,` $positions `)` attr-dict `:` type($input) `,`
    type($positions) `->` type($q) `,` type($k) `,` type($v)
  }];
  let hasVerifier = 1;
}

def DS_MLAProjectOp : DS_WeightUserOp<"mla_project", [Pure]> {
  let summary = "fused MLA input projections: q (with or without LoRA), latent, rope parts";
  let description = [{
    What `ds-fusion-mla-project` makes of DeepSeek's attention prologue:
    q = q_b(rms_norm(q_a(x))) (or q_proj(x) without q LoRA), split per head
    into q_nope and a rotated q_rope; kv_a(x) split into the normed latent
    c_kv and the rotated, head-shared k_rope. `eps` is the LoRA norms' eps.
  }];
  let arguments = (ins OptionalAttr<FlatSymbolRefAttr>:$q_a,
                       OptionalAttr<FlatSymbolRefAttr>:$q_a_norm, FlatSymbolRefAttr:$q_b,
                       FlatSymbolRefAttr:$kv_a, FlatSymbolRefAttr:$kv_a_norm,
                       DS_Activation:$input, DS_TokenIds:$positions, DS_RopeAttr:$rope,
                       F32Attr:$eps);
  let results = (outs DS_Activation:$q_nope, DS_Activation:$q_rope, DS_Activation:$c_kv,
                      DS_Activation:$k_rope);
  let assemblyFormat = [{
    `(` $input `,` $positions `)` attr-dict `:` type($input) `,` type($positions) `->`
    type($q_nope) `,` type($q_rope) `,` type($c_kv) `,` type($k_rope)
  }];
  let hasVerifier = 1;
}

def DS_ViewOp : DS_Op<"view", [Pure]> {
  let summary = "reshape that keeps the token dimension, e.g. [T, H*D] <-> [T, H, D]";
  let arguments = (ins DS_Activation:$input);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def DS_SliceOp : DS_Op<"slice", [Pure]> {
  let summary = "contiguous slice of the last dimension";
  let description = [{
    `ds.slice %x [512, 64]` takes channels [512, 576) of every row: used to
    split MLA's fused projections into the latent and rotary parts.
  }];
  let arguments = (ins DS_Activation:$input, I64Attr:$offset, I64Attr:$size);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$input `[` $offset `,` $size `]` attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Position embedding and attention
//===----------------------------------------------------------------------===//

def DS_RopeOp : DS_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding of [T, heads, head_dim] at given positions";
  let arguments = (ins DS_Activation:$input, DS_TokenIds:$positions, DS_RopeAttr:$rope);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` type($input) `,` type($positions)";
  let hasVerifier = 1;
}

def DS_AttentionOp : DS_Op<"attention", [
    MemoryEffects<[MemRead, MemWrite]>]> {
  let summary = "causal grouped-query attention that appends K/V to the cache";
  let description = [{
    q: [T, Hq, D], k: [T, Hkv, D], v: [T, Hkv, Dv] -> [T, Hq, Dv].
    Hq must be a multiple of Hkv (GQA; MHA when equal, MQA when Hkv = 1).
    The keys and values of the current tokens are written to `layer` of the
    cache first; each token attends to its own sequence's cached positions up
    to its own position (and within `sliding_window` when set).
  }];
  let arguments = (ins DS_Activation:$q, DS_Activation:$k, DS_Activation:$v,
                       DS_TokenIds:$positions, DS_KVCacheType:$cache,
                       I64Attr:$layer, F32Attr:$scale,
                       OptionalAttr<I64Attr>:$sliding_window);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $positions `,` $cache attr-dict `:`
    type($q) `,` type($k) `,` type($v) `,` type($positions) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_MLAAttentionOp : DS_WeightUserOp<"mla_attention", [
    MemoryEffects<[MemRead, MemWrite]>]> {
  let summary = "DeepSeek multi-head latent attention over a latent KV cache";
  let description = [{
    q_nope: [T, H, Dn], q_rope: [T, H, Dr] (rotated), c_kv: [T, R] (normed
    latent), k_rope: [T, Dr] (rotated, shared by all heads) -> [T, H, Dv].
    The cache holds only c_kv and k_rope per token. `kv_b` is the
    [H * (Dn + Dv), R] up-projection; per head, key = [W_uk c_kv, k_rope] and
    value = W_uv c_kv, so kernels may absorb W_uk into the query and W_uv into
    the output instead of expanding the cache.
  }];
  let arguments = (ins FlatSymbolRefAttr:$kv_b, DS_Activation:$q_nope,
                       DS_Activation:$q_rope, DS_Activation:$c_kv,
                       DS_Activation:$k_rope, DS_TokenIds:$positions,
                       DS_KVCacheType:$cache, I64Attr:$layer, F32Attr:$scale);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $kv_b `(` $q_nope `,` $q_rope `,` $c_kv `,` $k_rope `,` $positions `,` $cache `)` attr-dict `:`
    type($q_nope) `,` type($q_rope) `,` type($c_kv) `,` type($k_rope) `,` type($positions) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def DS_MoEGateOp : DS_WeightUserOp<"moe_gate", [Pure]> {
  let summary = "router: scores, group-limited top-k, normalisation and scaling";
  let description = [{
    Scores `x W^T` ([T, E]) with `scoring` (softmax or sigmoid). Selection
    uses scores plus `correction_bias` when present (the bias only selects; the
    returned weights are unbiased scores). With `n_group` > 1 only the best
    `topk_group` groups compete (ranked per `topk_method`). The top_k weights
    are normalised to sum 1 when `norm_topk_prob`, then multiplied by
    `routed_scaling_factor`. Results: weights [T, top_k] f32, ids [T, top_k] i32.
  }];
  let arguments = (ins FlatSymbolRefAttr:$weight, DS_Activation:$input,
                       I64Attr:$top_k, DS_MoeScoringAttr:$scoring,
                       DS_MoeTopkMethodAttr:$topk_method,
                       DefaultValuedAttr<I64Attr, "1">:$n_group,
                       DefaultValuedAttr<I64Attr, "1">:$topk_group,
                       BoolAttr:$norm_topk_prob,
                       DefaultValuedAttr<F32Attr, "1.0">:$routed_scaling_factor,
                       OptionalAttr<FlatSymbolRefAttr>:$correction_bias);
  let results = (outs 2DTensorOf<[F32]>:$weights, 2DTensorOf<[I32]>:$ids);
  let assemblyFormat = "$weight `(` $input `)` attr-dict `:` type($input) `->` type($weights) `,` type($ids)";
  let hasVerifier = 1;
}

def DS_MoEExpertsOp : DS_WeightUserOp<"moe_experts", [Pure]> {
  let summary = "routed SwiGLU experts weighted by the router, plus shared experts";
  let description = [{
    out[t] = sum_j weights[t, j] * E_{ids[t, j]}(x[t]) + S(x[t]) where each
    expert is down(silu(gate x) * up x) over stacked weights gate/up
    [E, I, H] and down [E, H, I], and S is the shared-expert MLP (weights
    [Is, H], [Is, H], [H, Is]) when declared.

    With `experts_per_rank` the routed experts are distributed over the
    ranks (expert parallelism): rank r's stacked weights hold experts
    [r * experts_per_rank, (r + 1) * experts_per_rank), routed slots naming
    other experts are skipped, and the ranks' results sum (`ds.all_reduce`)
    to the whole layer (shared experts are then cut inside, as under tensor
    parallelism, so they too sum).
  }];
  let arguments = (ins DS_Activation:$input, 2DTensorOf<[F32]>:$weights,
                       2DTensorOf<[I32]>:$ids,
                       FlatSymbolRefAttr:$gate, FlatSymbolRefAttr:$up,
                       FlatSymbolRefAttr:$down,
                       OptionalAttr<FlatSymbolRefAttr>:$shared_gate,
                       OptionalAttr<FlatSymbolRefAttr>:$shared_up,
                       OptionalAttr<FlatSymbolRefAttr>:$shared_down,
                       OptionalAttr<I64Attr>:$experts_per_rank);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    `(` $input `,` $weights `,` $ids `)` attr-dict `:`
    type($input) `,` type($weights) `,` type($ids) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Tensor-parallel collectives (the module's `ds.tp` ranks run the function SPMD)
//===----------------------------------------------------------------------===//

def DS_AllReduceOp : DS_Op<"all_reduce", [Pure, SameOperandsAndResultType]> {
  let summary = "sum of a rank-partial value over the tensor-parallel ranks";
  let description = [{
    Every rank gets the same sum (fixed reduction order), so replicated
    activations stay bitwise identical across ranks.
  }];
  let arguments = (ins DS_Activation:$input);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def DS_AllGatherOp : DS_Op<"all_gather", [Pure]> {
  let summary = "concatenates the ranks' slices of the last dimension, rank order";
  let description = [{
    `ds.all_gather %x : tensor<?x128xf32> -> tensor<?x512xf32>` with 4 ranks:
    rank r's row goes to columns [128 r, 128 (r + 1)) of every rank's result.
  }];
  let arguments = (ins 2DTensorOf<[F32, F16, BF16]>:$input);
  let results = (outs 2DTensorOf<[F32, F16, BF16]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Output
//===----------------------------------------------------------------------===//

def DS_LogitsOp : DS_WeightUserOp<"logits", [Pure]> {
  let summary = "vocabulary logits (f32) for the selected rows";
  let description = [{
    Projects rows of the final hidden state onto the vocabulary with a
    [V, H] weight (the embedding when tied). With `rows`, only those token
    rows are projected: a prefill step needs logits for its last token only.
  }];
  let arguments = (ins FlatSymbolRefAttr:$weight, DS_Activation:$input,
                       Optional<DS_TokenIds>:$rows);
  let results = (outs 2DTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $weight `(` $input (`,` `rows` $rows^ `:` type($rows))? `)` attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // DS_OPS_TD

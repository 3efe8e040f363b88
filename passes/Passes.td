// Declarations of every ds pass, grouped by the folder holding its .cpp.
#ifndef DS_PASSES_TD
#define DS_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// graph/: target-independent rewrites of the ds graph
//===----------------------------------------------------------------------===//

def DropUnusedWeightsPass : Pass<"ds-graph-drop-unused-weights", "::mlir::ModuleOp"> {
  let summary = "Erases ds.weight declarations that no op references";
  let description = [{
    Weights are streamed into the artifact from their declarations, so a
    declaration left behind by a rewrite (e.g. q/k/v merged into one GEMM)
    would cost disk and load time. A weight counts as used when any op other
    than a ds.weight refers to it, or a used weight names it as its `scale`.

    Before:
    ```mlir
    ds.weight @used : tensor<4x4xf32> {name = "used"}
    ds.weight @dead : tensor<4x4xf32> {name = "dead"}
    func.func @f(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
      %y = ds.linear @used(%x) : tensor<?x4xf32> -> tensor<?x4xf32>
      return %y : tensor<?x4xf32>
    }
    ```
    After: `@dead` is gone.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [
    Statistic<"numErased", "num-erased", "Number of weight declarations erased">
  ];
}

//===----------------------------------------------------------------------===//
// quant/: weight quantization
//===----------------------------------------------------------------------===//

def QuantizeWeightsPass : Pass<"ds-quant-weights", "::mlir::ModuleOp"> {
  let summary = "Marks the GEMM weights to quantize with a scheme";
  let description = [{
    Sets `quant = "<scheme>"` on every f32/f16/bf16 weight read as a GEMM
    matrix: ds.linear, ds.swiglu_linear, and the routed and shared experts of
    ds.moe_experts. Embeddings, the output projection, norms, the MoE router,
    MLA's kv_b (read inside the attention kernel) and DeepSeek's native FP8
    block-scaled weights keep their storage. The artifact builder then
    quantizes the marked weights while streaming them.

    Before: `ds.weight @w : tensor<16x8xf32> {name = "w"}` used by a ds.linear.
    After (scheme=int8): `ds.weight @w : tensor<16x8xf32> {name = "w", quant = "int8"}`.

    The output projection and the embedding table are opt-in (`lm-head`, `embed`): int8 per
    row, or 6-bit / 4-bit groups of 64 / 128 columns (symmetric: the host's int8-activation
    kernel reads them), as llama.cpp's `--output-tensor-type` offers (its quantized files keep
    the output at Q6_K). Before: `ds.weight @head` read by ds.logits; after
    (lm-head=int6_g64): `{name = "head", quant = "int6_g64"}`.
  }];
  let options = [
    Option<"scheme", "scheme", "std::string", /*default=*/"\"int8\"",
           "int8, fp8, int4_g64, int4_g128, int4_g64_asym, int4_g128_asym; none leaves the GEMMs">,
    Option<"lmHead", "lm-head", "std::string", /*default=*/"\"none\"",
           "Scheme of the output projection (ds.logits weight): none, int8, int6_g64, "
           "int6_g128, int4_g64 or int4_g128 (symmetric)">,
    Option<"embedTable", "embed", "std::string", /*default=*/"\"none\"",
           "Scheme of the embedding table (ds.embed weight): as lm-head. A tied table is one "
           "weight: either option quantizes it for both uses (two different schemes for it are "
           "an error naming it)">
  ];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [Statistic<"numQuantized", "num-quantized", "Number of weights marked">];
}

//===----------------------------------------------------------------------===//
// fusion/: fewer launches, fewer buffers (target independent)
//===----------------------------------------------------------------------===//

def FuseAddRMSNormPass : Pass<"ds-fusion-add-rms-norm", "::mlir::func::FuncOp"> {
  let summary = "Fuses a residual ds.add feeding ds.rms_norm into ds.add_rms_norm";
  let description = [{
    Before:
    ```mlir
    %s = ds.add %h, %o : tensor<?x64xf32>
    %n = ds.rms_norm @w(%s) {eps = 1.0e-5 : f32} : tensor<?x64xf32>
    ```
    After (the sum stays available to the other users of `%s`):
    ```mlir
    %s, %n = ds.add_rms_norm @w(%h, %o) {eps = 1.0e-5 : f32} : tensor<?x64xf32>
    ```
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [Statistic<"numFused", "num-fused", "Number of add + rms_norm pairs fused">];
}

def FuseSwiGLULinearPass : Pass<"ds-fusion-swiglu-linear", "::mlir::func::FuncOp"> {
  let summary = "Fuses gate/up ds.linear pairs feeding ds.swiglu into ds.swiglu_linear";
  let description = [{
    Applies when both projections read the same input, have no bias and no
    other users. Before:
    ```mlir
    %g = ds.linear @wg(%x) : tensor<?x64xf32> -> tensor<?x172xf32>
    %u = ds.linear @wu(%x) : tensor<?x64xf32> -> tensor<?x172xf32>
    %s = ds.swiglu %g, %u : tensor<?x172xf32>
    ```
    After:
    ```mlir
    %s = ds.swiglu_linear @wg, @wu(%x) : tensor<?x64xf32> -> tensor<?x172xf32>
    ```
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [Statistic<"numFused", "num-fused", "Number of gate/up/swiglu triples fused">];
}

def FuseQKVRopePass : Pass<"ds-fusion-qkv-rope", "::mlir::func::FuncOp"> {
  let summary = "Fuses the q/k/v projections of an attention and the rope of q and k";
  let description = [{
    Matches the operands of each ds.attention: q = rope(view(linear(x))),
    k = rope(view(linear(x))), v = view(linear(x)) with one input, one rope,
    single uses, and biases on all three projections or none. Before (5
    launches: 3 GEMMs, 2 ropes):
    ```mlir
    %q = ds.linear @wq(%x) ...   %k = ds.linear @wk(%x) ...   %v = ds.linear @wv(%x) ...
    %q3 = ds.view %q ...  %qr = ds.rope %q3, %pos {rope = #ds.rope<...>} ...
    %k3 = ds.view %k ...  %kr = ds.rope %k3, %pos {rope = #ds.rope<...>} ...
    %v3 = ds.view %v ...
    %a = ds.attention %qr, %kr, %v3, %pos, %cache ...
    ```
    After (1 launch):
    ```mlir
    %q, %k, %v = ds.qkv_rope @wq, @wk, @wv(%x, %pos) {rope = #ds.rope<...>} ...
    %a = ds.attention %q, %k, %v, %pos, %cache ...
    ```
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [Statistic<"numFused", "num-fused", "Number of attention prologues fused">];
}

def FuseMLAProjectPass : Pass<"ds-fusion-mla-project", "::mlir::func::FuncOp"> {
  let summary = "Fuses DeepSeek's MLA prologue (q LoRA, latent, splits, ropes) into ds.mla_project";
  let description = [{
    Matches the operands of each ds.mla_attention as the importer builds them:
    q_nope = slice(view(q)), q_rope = rope(slice(view(q))) with
    q = q_b(rms_norm(q_a(x))) or q_proj(x); c_kv = rms_norm(slice(kv_a(x)));
    k_rope = view(rope(view(slice(kv_a(x))))). Up to 11 launches become one
    `ds.mla_project` feeding the attention.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [Statistic<"numFused", "num-fused", "Number of MLA prologues fused">];
}

def MergeProjectionWeightsPass : Pass<"ds-fusion-merge-projection-weights", "::mlir::ModuleOp"> {
  let summary = "Stacks the q/k/v (and gate/up) weights of fused projections into one GEMM weight";
  let description = [{
    After `ds-fusion-qkv-rope` and `ds-fusion-swiglu-linear` a launch still
    multiplies its input by three (two) weights. This pass declares one
    weight `concat = [q, k, v]` ([Nq + Nk + Nv, K], biases alike; gate/up:
    [2N, K]) and points every slot of the op at it, so the kernel runs one
    GEMM over the stacked rows; the artifact writer streams the checkpoint
    tensors one after another into it. Weights that are sharded, block-scaled
    (FP8), stacked experts, of different element types, or also used
    elsewhere are left alone. Run ds-graph-drop-unused-weights afterwards.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [Statistic<"numMerged", "num-merged", "Number of merged weights declared">];
}

def FuseAllReduceAddRMSNormPass : Pass<"ds-fusion-all-reduce-add-rms-norm", "::mlir::func::FuncOp"> {
  let summary = "Folds a tensor-parallel ds.all_reduce into the ds.add_rms_norm consuming it";
  let description = [{
    After sharding, every row-parallel projection's partial sum is all-reduced
    and added to the residual stream, then normalized. When the all_reduce's
    only user is a `ds.add_rms_norm`, the reduction moves into it
    (`all_reduce_rhs`): one launch instead of two, and on GPUs the classic
    fused all-reduce + residual + RMSNorm kernel. Addition is commutative in
    IEEE arithmetic, so a reduced lhs is swapped to rhs without changing bits.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [Statistic<"numFused", "num-fused", "Number of all_reduces folded">];
}

//===----------------------------------------------------------------------===//
// sharding/: tensor parallelism
//===----------------------------------------------------------------------===//

def ShardTensorParallelPass : Pass<"ds-shard-tensor-parallel", "::mlir::ModuleOp"> {
  let summary = "Splits the graph over `tp` ranks (SPMD): column/row-parallel GEMMs, heads, experts, vocab";
  let description = [{
    Rewrites @forward into the program every rank runs on its own shard
    (Megatron-style), and records each weight's cut (`shard = [dim, pieces]`,
    rank-local type) plus `ds.tp` on the module:

    * a `ds.linear` whose result only flows into head-parallel consumers
      (views, slices, ropes, attention, MLA attention, SwiGLU, a following
      linear) is column-parallel (weight rows cut); a linear reading a
      column-parallel value is row-parallel (weight columns cut) and is
      followed by `ds.all_reduce`;
    * attention keeps `heads / tp` query heads per rank; KV heads are cut
      into `min(tp, kv_heads)` pieces (replicated when fewer than ranks);
      MLA cuts q_b and kv_b by heads and replicates the latent path;
    * MoE experts are cut inside every expert (gate/up rows, down columns;
      shared experts alike), the router is replicated, an all_reduce follows;
    * the embedding is vocab-parallel (`rows_per_rank`, then all_reduce) and
      the logits are vocab-parallel followed by `ds.all_gather`.

    Anything that does not divide evenly stays replicated (computed by every
    rank), which is always correct. Runs before fusion and quantization.

    `ep` > 1 distributes the routed experts instead (expert parallelism, over
    the same max(tp, ep) ranks; ep must be 1 or equal tp): rank r holds
    experts [r E/ep, (r+1) E/ep) whole (stacked weights cut along dimension
    0, `experts_per_rank` on the op), shared experts are cut inside, an
    all_reduce sums the ranks' parts. With tp = 1 nothing else is cut:

    ```mlir
    // before (16 experts)                    // after, ep=2: ds.tp = 2, ds.ep = 2
    %m = ds.moe_experts(%x, %w, %i)           %m = ds.moe_experts(%x, %w, %i)
        {gate = @g, up = @u, down = @d}           {..., experts_per_rank = 8}
                                              %r = ds.all_reduce %m
    ds.weight @g : tensor<16x32x64xf32>       ds.weight @g : tensor<8x32x64xf32>
        {experts = 16}                            {experts = 8, shard = array<i64: 0, 2>}
    ```

    Experts (or shared experts) that do not divide into ep keep the
    tensor-parallel cut when tp > 1, else stay whole.
  }];
  let options = [
    Option<"tp", "tp", "int64_t", /*default=*/"1", "Number of tensor-parallel ranks">,
    Option<"ep", "ep", "int64_t", /*default=*/"1",
           "Expert-parallel ranks for the routed experts (1, or equal to tp when tp > 1)">
  ];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [
    Statistic<"numSharded", "num-sharded-weights", "Number of weights cut across ranks">,
    Statistic<"numCollectives", "num-collectives", "Number of all_reduce/all_gather ops inserted">,
    Statistic<"numExpertParallel", "num-expert-parallel", "Number of MoE layers with distributed experts">
  ];
}

//===----------------------------------------------------------------------===//
// lowering/: ds graph -> dsk kernel plan
//===----------------------------------------------------------------------===//

def ConvertDsToKernelsPass : Pass<"ds-convert-to-kernels", "::mlir::ModuleOp"> {
  let summary = "Lowers func @forward (ds graph) to func @step (dsk buffers and launches)";
  let description = [{
    Every ds op becomes one `dsk.launch` of the library kernel implementing it,
    reading the buffers of its operands and writing freshly allocated ones
    (memory planning reuses them later); `ds.view` becomes `dsk.view` (no copy).
    The weights of a launch follow the launch ABI's slots. The KV cache becomes
    a first-class value: a model with attention gets a fourth step argument of
    type `!dsk.kv_cache<...>` whose geometry comes from its attention ops (all
    of one layout), whose block size and element type are this pass's options,
    and which every attention launch takes as `kv(...)` (addressed by its
    `layer` parameter). The step's other inputs are the token ids, positions and
    logit rows; its result is the logits buffer ([R, vocab]).

    Before:
    ```mlir
    func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x512xf32> {
      %h = ds.embed @embed(%ids) : tensor<?xi32> -> tensor<?x64xf32>
      %l = ds.logits @embed(%h, rows %rows : tensor<?xi32>) : tensor<?x64xf32> -> tensor<?x512xf32>
      return %l : tensor<?x512xf32>
    }
    ```
    After:
    ```mlir
    func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x512xf32> {
      %0 = dsk.alloc tokens : memref<?x64xf32>
      dsk.launch embed ins(%ids : memref<?xi32>) outs(%0 : memref<?x64xf32>) weights [@embed] params {}
      %1 = dsk.alloc logit_rows : memref<?x512xf32>
      dsk.launch logits ins(%0, %rows : memref<?x64xf32>, memref<?xi32>) outs(%1 : memref<?x512xf32>) weights [@embed] params {}
      return %1 : memref<?x512xf32>
    }
    ```
    With attention, `func.func @step(%ids, %pos, %rows, %kv: !dsk.kv_cache<gqa,
    layers = 2, block = 16, kv_heads = 2, head_dim = 8, v_dim = 8, f32>)` and
    `dsk.launch attention kv(%kv : ...) ins(%q, %k, %v, %pos : ...) ...`.
  }];
  let options = [
    Option<"kvBlockSize", "kv-block-size", "int64_t", /*default=*/"16",
           "tokens per paged KV-cache block, in [1, 4096]">,
    Option<"kvCache", "kv-cache", "std::string", /*default=*/"\"f32\"",
           "KV cache storage: f32, bf16, int8 or fp8">,
  ];
  let dependentDialects = ["::mlir::dsk::DSKDialect", "::mlir::func::FuncDialect"];
}

//===----------------------------------------------------------------------===//
// schedule/: decisions on the kernel plan
//===----------------------------------------------------------------------===//

def PlanMemoryPass : Pass<"ds-schedule-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Liveness-based reuse of activation buffers in func @step";
  let description = [{
    Every `dsk.alloc` of a row space (tokens or logit rows) is placed in one
    arena of that space: `offset` is its start in bytes per row, so with T
    tokens the buffer lives at `arena + T * offset`. Buffers whose live ranges
    (from the launch writing them to the last launch reading them or a view of
    them; the returned buffer lives to the end) do not overlap share memory.
    Placement is greedy best-fit in order of size, then definition. The arena
    sizes are recorded on @step as `dsk.arena_bytes_per_token` and
    `dsk.arena_bytes_per_logit_row`, next to what one buffer per value would
    need (`dsk.unplanned_bytes_per_token`, `dsk.unplanned_bytes_per_logit_row`).

    Before: `%0 = dsk.alloc tokens : memref<?x64xf32>` ... After:
    `%0 = dsk.alloc tokens {offset = 0 : i64} : memref<?x64xf32>`.
  }];
  let dependentDialects = ["::mlir::dsk::DSKDialect"];
  let statistics = [
    Statistic<"numBuffers", "num-buffers", "Number of planned buffers">
  ];
}

//===----------------------------------------------------------------------===//
// codegen/: fused regions -> generated kernels. codegen/common: target-independent outlining
// and tiling (linalg); codegen/host: the host backend's lowering to the LLVM dialect and its
// entry points; codegen/nvptx: the CUDA backend's mapping to gpu kernels.
//===----------------------------------------------------------------------===//

def OutlineKernelsPass : Pass<"ds-codegen-outline-kernels", "::mlir::ModuleOp"> {
  let summary = "Builds a linalg kernel on memrefs for each elementwise/normalization launch";
  let description = [{
    Target independent (passes/codegen/common). For every `dsk.launch` in @step of kind add, swiglu,
    rms_norm or add_rms_norm over f32 buffers (or bf16 ones when the #ds.target
    is a GPU: the kernel keeps its f32 body and types and is marked
    `ds.row_type = "bf16"` for the GPU mapping; norms: a 1-D weight as wide as
    the rows), or rope (non-interleaved; the runtime's inv_freq table becomes a
    constant memref.global), emits a `func.func` in the nested module `@ds_kernels`
    (`ds.codegen`) taking the launch's ins, outs, then weights as memrefs whose
    row-space buffers are viewed as [rows, cols], and names it on the launch as
    `code_symbol`. Identical launches share a kernel. Reductions follow the
    library kernels (rms_norm sums squares in f64, add_rms_norm in f32).
    GEMM launches keep the library GEMMs but get generated epilogues
    (`epilogue_symbols`): swiglu_linear the SwiGLU of its gate/up results,
    qkv_rope the in-place rope of q and of k. Other launches stay library
    calls. Before:
    ```mlir
    dsk.launch add_rms_norm ins(%a, %b : ...) outs(%s, %n : ...) weights [@w] params {eps = 1.0e-5 : f32}
    ```
    After:
    ```mlir
    dsk.launch add_rms_norm ins(%a, %b : ...) outs(%s, %n : ...) weights [@w] params {eps = 1.0e-5 : f32} {code_symbol = "ds_add_rms_norm_0"}
    module @ds_kernels attributes {ds.codegen} {
      func.func @ds_add_rms_norm_0(%a: memref<?x64xf32>, %b: memref<?x64xf32>, %s: memref<?x64xf32>,
                                   %n: memref<?x64xf32>, %w: memref<64xf32>) {
        linalg.generic {iterator_types = ["parallel", "parallel"]} ins(%a, %b ...) outs(%s ...)   // sum
        linalg.generic {iterator_types = ["parallel", "reduction"]} ins(%s ...) outs(%acc ...)   // sum of squares
        linalg.generic {iterator_types = ["parallel"]} ins(%acc ...) outs(%inv ...)              // 1/sqrt(mean+eps)
        linalg.generic {iterator_types = ["parallel", "parallel"]} ins(%s, %inv, %w ...) outs(%n ...)
        return
      }
    }
    ```
  }];
  let options = [
    Option<"kernelModuleName", "module-name", "std::string", /*default=*/"\"ds_kernels\"",
           "symbol of the nested module holding the kernels">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::math::MathDialect", "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect"];
  let statistics = [
    Statistic<"numKernels", "num-kernels", "Number of distinct kernels generated">,
    Statistic<"numLaunches", "num-launches", "Number of launches served by generated kernels">,
    Statistic<"numEpilogues", "num-epilogues",
              "Number of library GEMM launches (gate/up, q/k/v) given generated epilogues">
  ];
}

def TileAndVectorizePass : Pass<"ds-codegen-tile-and-vectorize", "::mlir::func::FuncOp"> {
  let summary = "Tiles linalg kernels to one row x vector-width and vectorizes the tiles";
  let description = [{
    Target independent (passes/codegen/common) up to the vector width, which
    the target supplies: unless `vector-width` is given, the f32 lanes of the
    closest enclosing `#ds.target` (`vector_bits / 32`: 8 for x86-64-v3, 4 for
    x86-64), and 8 when no module carries one. Every linalg op on memrefs is tiled to scf.for loops of 1
    along each outer loop and `vector-width` along the innermost, then
    vectorized with masks for the last partial tile; leading unit vector
    dimensions are dropped. Reductions stay ordered within a row. Ops that do
    not vectorize are left for convert-linalg-to-loops. Before:
    ```mlir
    linalg.generic {iterator_types = ["parallel", "parallel"]} ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%y : memref<?x64xf32>)
    ```
    After:
    ```mlir
    scf.for %r = %c0 to %rows step %c1 {
      scf.for %c = %c0 to %c64 step %c8 {
        %x = vector.transfer_read ... : memref<1x8xf32, strided<...>>, vector<8xf32>
        ...
        vector.transfer_write %s, ... : vector<8xf32>, memref<1x8xf32, strided<...>>
      }
    }
    ```
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "elements per vector along the innermost loop (unset: the f32 lanes of the closest "
           "enclosing #ds.target, 8 without one)">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect",
                           "::mlir::affine::AffineDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
  let statistics = [
    Statistic<"numVectorized", "num-vectorized", "Number of tiles vectorized">,
    Statistic<"numScalar", "num-scalar", "Number of linalg ops left scalar">
  ];
}

def ApproximateExpPass : Pass<"ds-codegen-approximate-exp", "::mlir::func::FuncOp"> {
  let summary = "Expands f32 math.exp (scalar or vector) into a polynomial the vector units run";
  let description = [{
    Without it, `math.exp` on a `vector<16xf32>` lowers to sixteen calls of
    libm's scalar `expf`: the one serial hot spot of the generated swiglu (3% of
    a decode step of R1-Distill-Qwen-1.5B on 2 threads, where a single token's
    row runs on one thread). This rewrites f32 `math.exp` with MLIR's Cephes
    approximation (range reduction by n = floor(x log2(e) + 1/2), a degree-6
    polynomial in fma, 2^n from the exponent bits; relative error about
    2^-22.5, results below 2^-126 flushed to 0, inputs clamped to
    [-87.8, 88.8]). Other math ops and f64 are left alone. The library's
    swiglu computes the same expansion (`detail::expPoly`), so generated and
    library kernels keep the same bits (docs/codegen.md). Before:
    ```mlir
    %e = math.exp %x : vector<8xf32>
    ```
    After:
    ```mlir
    %n = math.floor %t : vector<8xf32>        // t = fma(x, log2(e), 0.5)
    %r = math.fma %c1, %n, %x : vector<8xf32> // x - n ln2, two steps
    ...                                       // polynomial, 2^n by bitcast
    %e = arith.mulf %p, %pow2 : vector<8xf32>
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
                           "::mlir::vector::VectorDialect"];
  let statistics = [Statistic<"numExpanded", "num-expanded", "Number of math.exp expanded">];
}

def HostEntryPointsPass : Pass<"ds-codegen-host-entry-points", "::mlir::ModuleOp"> {
  let summary = "Wraps each lowered kernel in the runtime's C entry point";
  let description = [{
    Host backend (passes/codegen/host). Runs on the LLVM dialect after the host
    lowering; a module whose closest `#ds.target` has another backend is an
    error. Each kernel (an
    llvm.func with `ds.kernel`, `ds.arg_shapes`, `ds.num_buffers`,
    `ds.row_scale`) is renamed `<name>_impl` with internal linkage, and a new
    external `<name>` with the ABI of docs/codegen.md builds its memref
    descriptors: `void <name>(void* const* buffers, const float* const*
    weights, int64_t rows)`, buffers = ins then outs of the launch, rows = the
    step's rows of the launch's row space (scaled by `ds.row_scale`). Before:
    ```mlir
    llvm.func @ds_add_0(%a0: !llvm.ptr, %a1: !llvm.ptr, %o: i64, %s0: i64, %s1: i64, %t0: i64, %t1: i64, ...)
        attributes {ds.kernel = "add", ds.arg_shapes = [array<i64: -1, 64>, ...], ds.num_buffers = 3, ds.row_scale = 1}
    ```
    After:
    ```mlir
    llvm.func internal @ds_add_0_impl(...) attributes {...}
    llvm.func @ds_add_0(%buffers: !llvm.ptr, %weights: !llvm.ptr, %rows: i64) {
      ... llvm.load of each pointer, llvm.call @ds_add_0_impl(%p0, %p0, %c0, %rows, %c64, %c64, %c1, ...)
    }
    ```
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
  let statistics = [Statistic<"numEntries", "num-entries", "Number of entry points built">];
}

def MapKernelsToGPUPass : Pass<"ds-codegen-nvptx-map-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Maps the outlined linalg kernels to gpu.func kernels: rows to blocks, columns to threads";
  let description = [{
    NVPTX backend (passes/codegen/nvptx). Runs on the kernel module `@ds_kernels`
    of a plan whose closest `#ds.target` has `backend = nvptx` (another backend is
    an error). Consumes the same linalg kernels as the host path: each
    `func.func` with `ds.kernel` becomes a `gpu.func` kernel in a
    `gpu.module @ds_gpu [#nvvm.target<O = 3, chip = <#ds.target cpu>, features = "+ptxNN">]`
    (the module gets `gpu.container_module`). The mapping: `blockIdx.x` is the
    row (grid = the rows of the launch's row space x `ds.row_scale`); every
    linalg op's inner loops are flattened and strided over the block's threads
    (consecutive threads, consecutive elements: coalesced); a row reduction
    (`["parallel", "reduction"...]`, yield `addf(acc, x)`) sums per thread and
    combines with `gpu.all_reduce add uniform` (warp shuffles + shared memory);
    a per-row value (the inverse rms) is computed by thread 0; the `[rows, ...]`
    temporaries become `[1, ...]` workgroup (shared) memory; `gpu.barrier`
    separates the ops. Threads per block (`known_block_size`, `ds.block_size`):
    the widest op's inner elements rounded up to 32, at most `max-threads`.
    Constant globals (rope's `inv_freq`) move into the gpu.module. With
    `activation-type=bf16` the f32 row buffers (the launch's ins and outs) are
    bf16 memrefs: every load extends to f32, every store truncates (round to
    nearest even), temporaries and sums stay f32 (f64 for rms_norm); the kernel
    records `ds.activation_type`. Before:
    ```mlir
    module @ds_kernels attributes {ds.codegen} {
      func.func @ds_add_0(%a: memref<?x64xf32>, %b: memref<?x64xf32>, %s: memref<?x64xf32>) attributes {ds.kernel = "add", ...} {
        linalg.generic {iterator_types = ["parallel", "parallel"]} ins(%a, %b ...) outs(%s ...)
        return
      }
    }
    ```
    After:
    ```mlir
    module @ds_kernels attributes {ds.codegen, gpu.container_module} {
      gpu.module @ds_gpu [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">] {
        gpu.func @ds_add_0(%a: memref<?x64xf32>, ...) kernel attributes {ds.block_size = 64 : i64, known_block_size = array<i32: 64, 1, 1>, ...} {
          %row = gpu.block_id x
          %tid = gpu.thread_id x
          scf.for %i = %tid to %c64 step %c64 {
            %x = memref.load %a[%row, %i] ...
            memref.store %y, %s[%row, %i]
          }
          gpu.barrier
          gpu.return
        }
      }
    }
    ```
  }];
  let options = [
    Option<"maxThreads", "max-threads", "int64_t", /*default=*/"256",
           "most threads per block (a multiple of 32 in [32, 1024])">,
    Option<"gpuModuleName", "gpu-module-name", "std::string", /*default=*/"\"ds_gpu\"",
           "symbol of the gpu.module holding the kernels">,
    Option<"activationType", "activation-type", "std::string", /*default=*/"\"f32\"",
           "storage type of the row buffers (ins, outs): f32, or bf16 (loads extend to f32, "
           "stores round to nearest even; math and sums stay f32/f64)">
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect", "::mlir::NVVM::NVVMDialect",
                           "::mlir::scf::SCFDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
  let statistics = [Statistic<"numKernels", "num-kernels", "Number of gpu.func kernels built">];
}

#endif // DS_PASSES_TD

// The `dsk` dialect: the kernel-level step plan (buffers, views, library-kernel launches).
#ifndef DSK_OPS_TD
#define DSK_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def DSK_Dialect : Dialect {
  let name = "dsk";
  let cppNamespace = "::mlir::dsk";
  let summary = "Kernel-level plan of one model step: buffers and library-kernel launches";
  let description = [{
    What the runtime executes. A `func.func @step` takes the step's token ids,
    positions and logit rows as memrefs whose first dimension is the step's
    token count T or logit-row count R, allocates activation buffers with
    `dsk.alloc`, reinterprets them with `dsk.view` and runs kernels with
    `dsk.launch`. The paged KV cache is a value of its own: the step's last
    argument, of type `!dsk.kv_cache<...>` (its geometry, block size and element
    type), which attention launches take as `kv(%cache : ...)` and address by
    their `layer` parameter.
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
}

def DSK_Kernel : I32EnumAttr<"Kernel", "library kernel", [
    I32EnumAttrCase<"embed", 0>, I32EnumAttrCase<"rms_norm", 1>,
    I32EnumAttrCase<"linear", 2>, I32EnumAttrCase<"add", 3>,
    I32EnumAttrCase<"swiglu", 4>, I32EnumAttrCase<"slice", 5>,
    I32EnumAttrCase<"rope", 6>, I32EnumAttrCase<"attention", 7>,
    I32EnumAttrCase<"mla_attention", 8>, I32EnumAttrCase<"moe_gate", 9>,
    I32EnumAttrCase<"moe_experts", 10>, I32EnumAttrCase<"logits", 11>,
    I32EnumAttrCase<"add_rms_norm", 12>, I32EnumAttrCase<"swiglu_linear", 13>,
    I32EnumAttrCase<"qkv_rope", 14>, I32EnumAttrCase<"mla_project", 15>,
    I32EnumAttrCase<"all_reduce", 16>, I32EnumAttrCase<"all_gather", 17>]> {
  let cppNamespace = "::mlir::dsk";
  let genSpecializedAttr = 0;
}
def DSK_KernelAttr : EnumAttr<DSK_Dialect, DSK_Kernel, "kernel">;

def DSK_RowSpace : I32EnumAttr<"RowSpace", "what a buffer's first dimension counts", [
    I32EnumAttrCase<"tokens", 0>, I32EnumAttrCase<"logit_rows", 1>]> {
  let cppNamespace = "::mlir::dsk";
  let genSpecializedAttr = 0;
}
def DSK_RowSpaceAttr : EnumAttr<DSK_Dialect, DSK_RowSpace, "rows">;

def DSK_KVKind : I32EnumAttr<"KVKind", "paged KV cache layout", [
    I32EnumAttrCase<"gqa", 1>, I32EnumAttrCase<"mla", 2>]> {
  let cppNamespace = "::mlir::dsk";
  let genSpecializedAttr = 0;
}

def DSK_KVCacheType : TypeDef<DSK_Dialect, "KVCache"> {
  let mnemonic = "kv_cache";
  let summary = "the paged KV cache of a step plan (one tensor-parallel rank)";
  let description = [{
    ```mlir
    !dsk.kv_cache<gqa, layers = 2, block = 16, kv_heads = 2, head_dim = 16, v_dim = 16, f32>
    !dsk.kv_cache<mla, layers = 61, block = 64, rank = 512, rope_dim = 64, f8E4M3FN>
    ```
    `layers` caches of blocks of `block` token slots; GQA slots hold K
    [kv_heads, head_dim] and V [kv_heads, v_dim], MLA slots the latent c_kv
    [rank] and k_rope [rope_dim]. The element type is f32, i8 or f8E4M3FN (int8
    and fp8 keep one f32 scale per written vector). The artifact's KVCacheSpec is
    written from this type, and its size per slot is artifact::kvBytesPerSlot.
  }];
  let parameters = (ins "KVKind":$kind, "int64_t":$layers, "int64_t":$blockSize,
                        "int64_t":$kvHeads, "int64_t":$headDim, "int64_t":$vDim,
                        "int64_t":$rank, "int64_t":$ropeDim, "Type":$elementType);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

class DSK_Op<string mnemonic, list<Trait> traits = []> : Op<DSK_Dialect, mnemonic, traits>;

def DSK_Buffer : MemRefRankOf<[F32, F16, BF16, I32], [1, 2, 3]>;

def DSK_AllocOp : DSK_Op<"alloc", [MemoryEffects<[MemAlloc]>]> {
  let summary = "an activation buffer of the step, first dimension T or R";
  let description = [{
    `offset`, set by memory planning, places the buffer in its row space's
    arena at `arena + rows * offset` bytes; without it the buffer has its own
    memory.
  }];
  let arguments = (ins DSK_RowSpaceAttr:$rows, OptionalAttr<I64Attr>:$offset);
  let results = (outs DSK_Buffer:$buffer);
  let assemblyFormat = "custom<RowSpace>($rows) attr-dict `:` type($buffer)";
  let hasVerifier = 1;
}

def DSK_ViewOp : DSK_Op<"view", [Pure]> {
  let summary = "the same bytes with other trailing dimensions";
  let arguments = (ins DSK_Buffer:$source);
  let results = (outs DSK_Buffer:$result);
  let assemblyFormat = "$source attr-dict `:` type($source) `->` type($result)";
  let hasVerifier = 1;
}

def DSK_LaunchOp : DSK_Op<"launch", [AttrSizedOperandSegments]> {
  let summary = "runs one library kernel: reads `ins` and weights, writes `outs`";
  let description = [{
    ```mlir
    dsk.launch linear ins(%x : memref<?x64xf32>) outs(%y : memref<?x128xf32>)
        weights [@model.layers.0.mlp.up_proj.weight] params {}
    ```
    The kernel's signature comes from the one launch ABI table
    (`runtime/src/abi/launch_abi.cpp`, docs/kernel_abi.md), which the verifier
    checks: operand counts and kinds (i32 indices, float activations) and
    ranks; `weights` in slot order, `unit` for an absent optional slot
    (trailing absent slots may be left out); `params` carries the kernel's
    parameters (eps, rope, layer, scale, ...) taken from the ds op it
    implements: every required one present, none the kernel does not take.
  }];
  let arguments = (ins DSK_KernelAttr:$kernel, Optional<DSK_KVCacheType>:$kv_cache,
                       Variadic<DSK_Buffer>:$ins, Variadic<DSK_Buffer>:$outs,
                       ArrayAttr:$weights, DictionaryAttr:$params);
  let assemblyFormat = [{
    $kernel (`kv` `(` $kv_cache^ `:` type($kv_cache) `)`)?
    `ins` `(` $ins `:` type($ins) `)` `outs` `(` $outs `:` type($outs) `)`
    `weights` $weights `params` $params attr-dict
  }];
  let hasVerifier = 1;
}

#endif // DSK_OPS_TD

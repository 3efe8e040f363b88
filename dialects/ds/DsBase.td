// The `ds` dialect, its enums and attributes: model-level graph IR for LLM inference.
#ifndef DS_BASE_TD
#define DS_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def DS_Dialect : Dialect {
  let name = "ds";
  let cppNamespace = "::mlir::ds";
  let summary = "Model-level graph IR for decoder-only LLM inference";
  let description = [{
    Ops with tensor semantics for the layers of Llama, Qwen2 and DeepSeek-V2/V3
    models. Weights never live in the IR: `ds.weight` declares a module-level
    symbol naming the checkpoint tensor; ops reference weights by symbol.
    The token dimension (T) is dynamic: one step of the model processes a
    ragged batch of tokens from several sequences.
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
  // `ds.target` on a module must be a #ds.target (DSDialect::verifyOperationAttribute).
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    // Name of the module attribute holding the compilation target (#ds.target).
    static constexpr ::llvm::StringLiteral kTargetAttrName = "ds.target";
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def DS_RopeScaling : I32EnumAttr<"RopeScaling", "rotary embedding frequency scaling", [
    I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"linear", 1>,
    I32EnumAttrCase<"llama3", 2>, I32EnumAttrCase<"yarn", 3>]> {
  let cppNamespace = "::mlir::ds";
  let genSpecializedAttr = 0;
}
def DS_RopeScalingAttr : EnumAttr<DS_Dialect, DS_RopeScaling, "rope_scaling">;

def DS_MoeScoring : I32EnumAttr<"MoeScoring", "router score function", [
    I32EnumAttrCase<"softmax", 0>, I32EnumAttrCase<"sigmoid", 1>]> {
  let cppNamespace = "::mlir::ds";
  let genSpecializedAttr = 0;
}
def DS_MoeScoringAttr : EnumAttr<DS_Dialect, DS_MoeScoring, "moe_scoring">;

def DS_MoeTopkMethod : I32EnumAttr<"MoeTopkMethod", "router expert selection", [
    // Plain top-k over all experts (DeepSeek-V2-Lite, Qwen-MoE).
    I32EnumAttrCase<"greedy", 0>,
    // DeepSeek-V2: groups ranked by their best expert score.
    I32EnumAttrCase<"group_limited_greedy", 1>,
    // DeepSeek-V3: groups ranked by the sum of their top-2 biased scores.
    I32EnumAttrCase<"noaux_tc", 2>]> {
  let cppNamespace = "::mlir::ds";
  let genSpecializedAttr = 0;
}
def DS_MoeTopkMethodAttr : EnumAttr<DS_Dialect, DS_MoeTopkMethod, "moe_topk_method">;

def DS_TargetBackend : I32EnumAttr<"TargetBackend", "code generator family of a target", [
    // Native CPU code: an ELF shared object the runtime dlopens.
    I32EnumAttrCase<"host", 0>,
    // NVIDIA GPUs: PTX/cubin (not implemented yet).
    I32EnumAttrCase<"nvptx", 1>]> {
  let cppNamespace = "::mlir::ds";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class DS_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<DS_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

// An f64 attribute parameter printed as a float literal (APFloat: hashable storage).
class DS_F64Param<string default = ""> : APFloatParameter<""> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double v;
    if ($_parser.parseFloat(v)) return ::mlir::failure();
    return ::llvm::APFloat(v);
  }() }];
  let printer = [{ $_printer.printFloat($_self) }];
  let defaultValue = !if(!ne(default, ""), "::llvm::APFloat(" # default # ")", "");
}

def DS_RopeAttr : DS_Attr<"Rope", "rope"> {
  let summary = "rotary position embedding parameters";
  let description = [{
    `dim` leading channels of each head are rotated. `interleaved` selects the
    pairing: false pairs channel i with i + dim/2 (Llama/HF `rotate_half`),
    true pairs 2i with 2i+1 (DeepSeek-V2/V3 checkpoints). Scaling parameters
    follow Hugging Face `rope_scaling`; unused ones keep their defaults.
    Example: `#ds.rope<theta = 10000.0, dim = 64, scaling = yarn, factor = 40.0>`
  }];
  let parameters = (ins
    DS_F64Param<>:$theta,
    "int64_t":$dim,
    DefaultValuedParameter<"bool", "false">:$interleaved,
    DefaultValuedParameter<"::mlir::ds::RopeScaling", "::mlir::ds::RopeScaling::none">:$scaling,
    DS_F64Param<"1.0">:$factor,
    DefaultValuedParameter<"int64_t", "0">:$original_max_position,
    DS_F64Param<"1.0">:$low_freq_factor,
    DS_F64Param<"4.0">:$high_freq_factor,
    DS_F64Param<"32.0">:$beta_fast,
    DS_F64Param<"1.0">:$beta_slow,
    DS_F64Param<"0.0">:$mscale,
    DS_F64Param<"0.0">:$mscale_all_dim,
    DS_F64Param<"0.0">:$attention_factor
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def DS_TargetAttr : DS_Attr<"Target", "target"> {
  let summary = "the compilation target: one row of compiler/target's table";
  let description = [{
    Attached to the top-level module as `ds.target` by the Import phase
    (`ds-compile --target`, `--codegen-cpu`) and read by the later phases
    instead of flags: the Codegen passes take the vector width from it, the
    Artifact phase its triple, CPU and features. `name` is the table row
    (`host`, `sm_80`, `sm_86`, `sm_89`, `sm_90a`, `sm_100a`), `cpu` the
    code-generation level (host: `x86-64-v3` or `x86-64`; GPUs: the SM),
    `features` exactly the instruction-set extensions generated code may use,
    `vector_bits` the width kernels are vectorized for.
    Example:
    `#ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64-v3", features = ["avx2", "fma"], vector_bits = 256>`
  }];
  let parameters = (ins
    "::mlir::StringAttr":$name,
    "::mlir::ds::TargetBackend":$backend,
    "::mlir::StringAttr":$triple,
    "::mlir::StringAttr":$cpu,
    "::mlir::ArrayAttr":$features,
    "int64_t":$vector_bits
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    // Elements of 32 bits per vector (f32 lanes).
    int64_t getF32Lanes() const { return getVectorBits() / 32; }
    // The features as strings, in order.
    ::llvm::SmallVector<::llvm::StringRef> getFeatureNames() const;
  }];
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

def DS_KVCacheType : TypeDef<DS_Dialect, "KVCache"> {
  let mnemonic = "kv_cache";
  let summary = "the model's key/value cache, addressed by layer";
  let description = [{
    Opaque handle to the per-layer KV state of every sequence in the batch.
    Attention ops read it and append the current tokens' keys and values for
    their `layer`. Its layout (paged blocks, dtype, latent MLA entries) is
    chosen when the graph is lowered to the kernel plan.
  }];
}

#endif // DS_BASE_TD

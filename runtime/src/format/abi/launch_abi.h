// The typed launch ABI, declared once: every kernel kind's named operands, weight slots (with the
// optional ones and the groups that come together), parameters and the artifact's params table.
// One table read by ds-convert-to-kernels and the dsk verifier (compile time), the plan builder,
// the artifact's metadata check (load time) and the runtime's devices. Dependency-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ds::abi {

// The entry-point ABI of generated kernels (docs/codegen.md) this runtime calls; ds-compile
// records it in CodeObject.abi_version.
constexpr uint32_t kGeneratedKernelAbiVersion = 1;

// Largest paged-KV block (tokens) and KV layer count a plan may have: ds-compile's flag, the
// dsk.kv_cache verifier and the artifact's load check share these bounds.
constexpr int64_t kMaxKvBlockSize = 4096;
constexpr int64_t kMaxKvLayers = 4096;

// Same numbering as the artifact's fb::Kernel and dsk::Kernel (checked where both are visible).
enum class KernelKind : uint8_t {
  Embed = 0, RmsNorm, Linear, Add, SwiGLU, Slice, Rope, Attention, MlaAttention, MoEGate,
  MoEExperts, Logits, AddRmsNorm, SwiGLULinear, QKVRope, MlaProject, AllReduce, AllGather,
};
constexpr size_t kNumKernelKinds = 18;

// What a buffer operand holds: activations (a float type: f32 today, bf16/f16 on GPUs next) or
// int32 indices (token ids, positions, logit rows, expert ids).
enum class OperandKind : uint8_t { Activation, Index };

struct Operand {
  const char* name;
  OperandKind kind;
  int trailing_rank;  // dimensions after the row dimension; -1: any
};

// What a weight slot holds: a matrix [rows, cols], a vector [n] (norm weights, biases: kernels
// read them as f32 vectors), or stacked experts [experts, rows, cols].
enum class WeightShape : uint8_t { Matrix, Vector, Experts };

struct WeightSlot {
  const char* name;
  bool optional;
  const char* group;  // optional slots of one group are all present or all absent (null: alone)
  WeightShape shape = WeightShape::Matrix;
};

// Parameter types as the dsk dialect spells them (a DictionaryAttr on dsk.launch).
enum class ParamType : uint8_t { I64, F32, Bool, Unit, Rope, MoeScoring, MoeTopkMethod };

struct Param {
  const char* name;
  ParamType type;
  bool required;
};

// Which paged KV cache a kernel reads and writes (same numbering as fb::KVKind).
enum class KVUse : uint8_t { None = 0, GQA, MLA };

// The artifact's params union member a launch of this kind carries (same numbering as fb::Params).
enum class ParamsTable : uint8_t {
  None = 0, Norm, Slice, Rope, Attention, Mla, MoEGate, MlaProject, Embed, MoEExperts,
};

struct KernelSignature {
  KernelKind kind;
  const char* name;           // dsk mnemonic ("rms_norm"); the artifact names it fb::EnumNameKernel
  const Operand* inputs;
  size_t num_inputs;
  const Operand* outputs;
  size_t num_outputs;
  const WeightSlot* weights;
  size_t num_weights;
  const Param* params;
  size_t num_params;
  ParamsTable params_table;   // what the artifact stores
  bool params_table_required; // false: absent means every field takes its default (Embed)
  size_t num_epilogues;       // generated epilogue slots (Launch.epilogue_symbols)
  const char* epilogue_names; // "swiglu", "rope q, rope k", ... (for messages and docs)
  KVUse kv_cache = KVUse::None;  // the paged KV cache the launch reads and writes
};

// The signature of `kind`; null for a kind past the table.
const KernelSignature* signature(KernelKind kind);
const KernelSignature* signature(uint32_t kind);
// The signature whose dsk mnemonic is `name`; null if none.
const KernelSignature* signatureByName(std::string_view name);

// Index of the weight slot / input / output / param called `name`; -1 if none.
int weightSlot(const KernelSignature& sig, std::string_view name);
const Param* param(const KernelSignature& sig, std::string_view name);

// Checks a launch's weight list (slot order; trailing optional slots may be left out; present[i]
// false marks an absent optional slot): no more than the slots, every required slot present,
// groups all-or-none. Returns "" or what is wrong ("weight slot 'bk' is absent but 'bq' of its
// group is present").
std::string checkWeightSlots(const KernelSignature& sig, const bool* present, size_t count);

// Whether slot `slot` is present in a launch's weight list (`ids` in slot order, -1 absent).
template <typename Ids>
bool hasWeight(const Ids& ids, size_t slot) {
  return slot < ids.size() && ids[slot] >= 0;
}

// "rms_norm(in: x; out: y; weights: weight; params: eps)" for messages and docs.
std::string describe(const KernelSignature& sig);

}  // namespace ds::abi

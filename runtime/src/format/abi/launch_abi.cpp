// The launch ABI table (launch_abi.h): one row per kernel kind, in KernelKind order.
#include "abi/launch_abi.h"

#include <cstring>
#include <iterator>

namespace ds::abi {
namespace {

constexpr OperandKind A = OperandKind::Activation;
constexpr OperandKind I = OperandKind::Index;

// Operand lists, named as in docs/kernel_abi.md.
constexpr Operand kX[] = {{"x", A, -1}};
constexpr Operand kY[] = {{"y", A, -1}};
constexpr Operand kRows1[] = {{"x", A, 1}};
constexpr Operand kOut1[] = {{"y", A, 1}};
constexpr Operand kIds[] = {{"ids", I, 0}};
constexpr Operand kAB[] = {{"a", A, -1}, {"b", A, -1}};
constexpr Operand kGateUp[] = {{"gate", A, -1}, {"up", A, -1}};
constexpr Operand kRopeIn[] = {{"x", A, 2}, {"positions", I, 0}};
constexpr Operand kRopeOut[] = {{"y", A, 2}};
constexpr Operand kAttnIn[] = {{"q", A, 2}, {"k", A, 2}, {"v", A, 2}, {"positions", I, 0}};
constexpr Operand kMlaIn[] = {{"q_nope", A, 2}, {"q_rope", A, 2}, {"c_kv", A, 1},
                              {"k_rope", A, 1}, {"positions", I, 0}};
constexpr Operand kHeadsOut[] = {{"y", A, 2}};
constexpr Operand kGateOut[] = {{"weights", A, 1}, {"ids", I, 1}};
constexpr Operand kExpertsIn[] = {{"x", A, 1}, {"weights", A, 1}, {"ids", I, 1}};
constexpr Operand kLogitsIn[] = {{"x", A, 1}, {"rows", I, 0}};
constexpr Operand kSumNorm[] = {{"sum", A, -1}, {"y", A, -1}};
constexpr Operand kXPos[] = {{"x", A, 1}, {"positions", I, 0}};
constexpr Operand kQKV[] = {{"q", A, 2}, {"k", A, 2}, {"v", A, 2}};
constexpr Operand kMlaProjOut[] = {{"q_nope", A, 2}, {"q_rope", A, 2}, {"c_kv", A, 1},
                                   {"k_rope", A, 1}};

constexpr WeightShape V = WeightShape::Vector;
constexpr WeightShape E = WeightShape::Experts;
constexpr WeightSlot kWeight[] = {{"weight", false, nullptr}};
constexpr WeightSlot kNormW[] = {{"weight", false, nullptr, V}};
constexpr WeightSlot kWeightBias[] = {{"weight", false, nullptr}, {"bias", true, nullptr, V}};
constexpr WeightSlot kKvB[] = {{"kv_b", false, nullptr}};
constexpr WeightSlot kGateW[] = {{"weight", false, nullptr},
                                 {"correction_bias", true, nullptr, V}};
constexpr WeightSlot kExpertsW[] = {{"gate", false, nullptr, E},     {"up", false, nullptr, E},
                                    {"down", false, nullptr, E},     {"shared_gate", true, "shared"},
                                    {"shared_up", true, "shared"}, {"shared_down", true, "shared"}};
constexpr WeightSlot kGateUpW[] = {{"gate", false, nullptr}, {"up", false, nullptr}};
constexpr WeightSlot kQKVW[] = {{"wq", false, nullptr},     {"wk", false, nullptr},
                                {"wv", false, nullptr},     {"bq", true, "bias", V},
                                {"bk", true, "bias", V},    {"bv", true, "bias", V}};
constexpr WeightSlot kMlaProjW[] = {{"q_a", true, "lora"}, {"q_a_norm", true, "lora", V},
                                    {"q_b", false, nullptr}, {"kv_a", false, nullptr},
                                    {"kv_a_norm", false, nullptr, V}};

constexpr Param kEmbedP[] = {{"rows_per_rank", ParamType::I64, false}};
constexpr Param kExpertsP[] = {{"experts_per_rank", ParamType::I64, false}};
constexpr Param kNormP[] = {{"eps", ParamType::F32, true}};
constexpr Param kAddNormP[] = {{"eps", ParamType::F32, true},
                               {"all_reduce_rhs", ParamType::Unit, false}};
constexpr Param kSliceP[] = {{"offset", ParamType::I64, true}, {"size", ParamType::I64, true}};
constexpr Param kRopeP[] = {{"rope", ParamType::Rope, true}};
constexpr Param kAttnP[] = {{"layer", ParamType::I64, true},
                            {"scale", ParamType::F32, true},
                            {"sliding_window", ParamType::I64, false}};
constexpr Param kMlaP[] = {{"layer", ParamType::I64, true}, {"scale", ParamType::F32, true}};
constexpr Param kMoEGateP[] = {{"top_k", ParamType::I64, true},
                               {"scoring", ParamType::MoeScoring, true},
                               {"topk_method", ParamType::MoeTopkMethod, true},
                               {"n_group", ParamType::I64, false},
                               {"topk_group", ParamType::I64, false},
                               {"norm_topk_prob", ParamType::Bool, true},
                               {"routed_scaling_factor", ParamType::F32, false}};
constexpr Param kMlaProjP[] = {{"eps", ParamType::F32, true}, {"rope", ParamType::Rope, true}};

#define DS_LIST(a) a, std::size(a)
#define DS_NONE nullptr, 0

const KernelSignature kTable[] = {
    {KernelKind::Embed, "embed", DS_LIST(kIds), DS_LIST(kOut1), DS_LIST(kWeight),
     DS_LIST(kEmbedP), ParamsTable::Embed, false, 0, ""},
    {KernelKind::RmsNorm, "rms_norm", DS_LIST(kX), DS_LIST(kY), DS_LIST(kNormW),
     DS_LIST(kNormP), ParamsTable::Norm, true, 0, ""},
    {KernelKind::Linear, "linear", DS_LIST(kX), DS_LIST(kY), DS_LIST(kWeightBias), DS_NONE,
     ParamsTable::None, false, 0, ""},
    {KernelKind::Add, "add", DS_LIST(kAB), DS_LIST(kY), DS_NONE, DS_NONE, ParamsTable::None,
     false, 0, ""},
    {KernelKind::SwiGLU, "swiglu", DS_LIST(kGateUp), DS_LIST(kY), DS_NONE, DS_NONE,
     ParamsTable::None, false, 0, ""},
    {KernelKind::Slice, "slice", DS_LIST(kX), DS_LIST(kY), DS_NONE, DS_LIST(kSliceP),
     ParamsTable::Slice, true, 0, ""},
    {KernelKind::Rope, "rope", DS_LIST(kRopeIn), DS_LIST(kRopeOut), DS_NONE, DS_LIST(kRopeP),
     ParamsTable::Rope, true, 0, ""},
    {KernelKind::Attention, "attention", DS_LIST(kAttnIn), DS_LIST(kHeadsOut), DS_NONE,
     DS_LIST(kAttnP), ParamsTable::Attention, true, 0, "", KVUse::GQA},
    {KernelKind::MlaAttention, "mla_attention", DS_LIST(kMlaIn), DS_LIST(kHeadsOut),
     DS_LIST(kKvB), DS_LIST(kMlaP), ParamsTable::Mla, true, 0, "", KVUse::MLA},
    {KernelKind::MoEGate, "moe_gate", DS_LIST(kRows1), DS_LIST(kGateOut), DS_LIST(kGateW),
     DS_LIST(kMoEGateP), ParamsTable::MoEGate, true, 0, ""},
    {KernelKind::MoEExperts, "moe_experts", DS_LIST(kExpertsIn), DS_LIST(kOut1),
     DS_LIST(kExpertsW), DS_LIST(kExpertsP), ParamsTable::MoEExperts, false, 0, ""},
    {KernelKind::Logits, "logits", DS_LIST(kLogitsIn), DS_LIST(kOut1), DS_LIST(kWeight), DS_NONE,
     ParamsTable::None, false, 0, ""},
    {KernelKind::AddRmsNorm, "add_rms_norm", DS_LIST(kAB), DS_LIST(kSumNorm), DS_LIST(kNormW),
     DS_LIST(kAddNormP), ParamsTable::Norm, true, 0, ""},
    {KernelKind::SwiGLULinear, "swiglu_linear", DS_LIST(kRows1), DS_LIST(kOut1),
     DS_LIST(kGateUpW), DS_NONE, ParamsTable::None, false, 1, "swiglu(gate, up) -> y"},
    {KernelKind::QKVRope, "qkv_rope", DS_LIST(kXPos), DS_LIST(kQKV), DS_LIST(kQKVW),
     DS_LIST(kRopeP), ParamsTable::Rope, true, 2, "rope of q, rope of k (in place)"},
    {KernelKind::MlaProject, "mla_project", DS_LIST(kXPos), DS_LIST(kMlaProjOut),
     DS_LIST(kMlaProjW), DS_LIST(kMlaProjP), ParamsTable::MlaProject, true, 2,
     "rope of q_rope, rope of k_rope as [T, 1, Dr] (in place)"},
    {KernelKind::AllReduce, "all_reduce", DS_LIST(kX), DS_LIST(kY), DS_NONE, DS_NONE,
     ParamsTable::None, false, 0, ""},
    {KernelKind::AllGather, "all_gather", DS_LIST(kX), DS_LIST(kY), DS_NONE, DS_NONE,
     ParamsTable::None, false, 0, ""},
};
static_assert(std::size(kTable) == kNumKernelKinds, "one signature per kernel kind");

#undef DS_LIST
#undef DS_NONE

}  // namespace

const KernelSignature* signature(KernelKind kind) { return signature(static_cast<uint32_t>(kind)); }

const KernelSignature* signature(uint32_t kind) {
  if (kind >= kNumKernelKinds) return nullptr;
  const KernelSignature* s = &kTable[kind];
  return static_cast<uint32_t>(s->kind) == kind ? s : nullptr;
}

const KernelSignature* signatureByName(std::string_view name) {
  for (const KernelSignature& s : kTable)
    if (name == s.name) return &s;
  return nullptr;
}

int weightSlot(const KernelSignature& sig, std::string_view name) {
  for (size_t i = 0; i < sig.num_weights; ++i)
    if (name == sig.weights[i].name) return static_cast<int>(i);
  return -1;
}

const Param* param(const KernelSignature& sig, std::string_view name) {
  for (size_t i = 0; i < sig.num_params; ++i)
    if (name == sig.params[i].name) return &sig.params[i];
  return nullptr;
}

std::string checkWeightSlots(const KernelSignature& sig, const bool* present, size_t count) {
  if (count > sig.num_weights)
    return std::to_string(count) + " weights, but " + sig.name + " takes " +
           std::to_string(sig.num_weights);
  for (size_t i = 0; i < sig.num_weights; ++i) {
    const WeightSlot& w = sig.weights[i];
    const bool has = i < count && present[i];
    if (!w.optional && !has) return std::string("required weight slot '") + w.name + "' is absent";
    if (!w.group) continue;
    for (size_t j = 0; j < sig.num_weights; ++j) {
      const WeightSlot& o = sig.weights[j];
      if (j == i || !o.group || std::strcmp(o.group, w.group) != 0) continue;
      const bool other = j < count && present[j];
      if (has != other)
        return std::string("weight slot '") + (has ? o.name : w.name) + "' is absent but '" +
               (has ? w.name : o.name) + "' of its group '" + w.group + "' is present";
    }
  }
  return "";
}

std::string describe(const KernelSignature& sig) {
  std::string s = std::string(sig.name) + "(in:";
  for (size_t i = 0; i < sig.num_inputs; ++i) s += std::string(i ? ", " : " ") + sig.inputs[i].name;
  s += "; out:";
  for (size_t i = 0; i < sig.num_outputs; ++i)
    s += std::string(i ? ", " : " ") + sig.outputs[i].name;
  if (sig.num_weights) {
    s += "; weights:";
    for (size_t i = 0; i < sig.num_weights; ++i)
      s += std::string(i ? ", " : " ") + sig.weights[i].name + (sig.weights[i].optional ? "?" : "");
  }
  if (sig.num_params) {
    s += "; params:";
    for (size_t i = 0; i < sig.num_params; ++i)
      s += std::string(i ? ", " : " ") + sig.params[i].name + (sig.params[i].required ? "" : "?");
  }
  return s + ")";
}

}  // namespace ds::abi

// The device-independent form of an artifact's step plan, decoded once at load, and what one
// kernel launch receives (LaunchArgs). Every backend implements the launch ABI's kernels against
// these structs; docs/kernel_abi.md states each kernel's contract.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "abi/launch_abi.h"
#include "base/status.h"

namespace ds {
class Communicator;
namespace artifact {
class Artifact;
}

namespace hal {

class Weights;

// Same numbering as the artifact's fb::DType / fb::RowSpace.
enum class DType : uint8_t { F32 = 0, F16, BF16, F8E4M3, I8, I32, I4, I6 };
enum class RowSpace : uint8_t { Tokens = 0, LogitRows, Fixed };

struct BufferDesc {
  RowSpace rows = RowSpace::Tokens;
  int64_t fixed_rows = 0;
  std::vector<int64_t> cols;  // trailing dimensions
  int64_t row_elems = 1;      // product of cols
  DType dtype = DType::F32;
  uint64_t row_bytes = 0;
  int alias_of = -1;          // a view of that buffer (always the one owning the memory)
  int64_t arena_offset = -1;  // memory planning: arena + rows * arena_offset
};

// Rotary embedding parameters (fb::RopeParams; scaling: 0 none, 1 linear, 2 llama3, 3 yarn).
struct RopeDesc {
  double theta = 10000.0;
  int64_t dim = 0;
  bool interleaved = false;
  uint8_t scaling = 0;
  double factor = 1.0;
  int64_t original_max_position = 0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  double beta_fast = 32.0, beta_slow = 1.0;
  double mscale = 0.0, mscale_all_dim = 0.0, attention_factor = 0.0;
};

// A launch's parameters; which fields a kind reads is its ABI row (launch_abi.cpp).
struct LaunchParams {
  float eps = 0.0f;              // rms_norm, add_rms_norm, mla_project
  bool all_reduce_rhs = false;   // add_rms_norm under tensor parallelism
  int64_t offset = 0, size = 0;  // slice
  RopeDesc rope;                 // rope, qkv_rope, mla_project
  int64_t layer = 0;             // attention, mla_attention: KV layer
  float scale = 0.0f;            // attention softmax scale
  int64_t sliding_window = 0;    // attention (0: unlimited)
  int64_t heads = 0, nope_dim = 0, v_dim = 0;  // mla_attention
  int64_t top_k = 1, n_group = 1, topk_group = 1;  // moe_gate
  uint8_t scoring = 0, topk_method = 0;            // 0 softmax / 1 sigmoid; greedy, group, noaux_tc
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  int64_t rows_per_rank = 0;     // embed: vocab-parallel table rows per rank (0: whole table)
  int64_t experts_per_rank = 0;  // moe_experts: expert-parallel experts per rank (0: all)
};

struct LaunchDesc {
  const abi::KernelSignature* sig = nullptr;
  abi::KernelKind kind = abi::KernelKind::Embed;
  std::vector<int> inputs, outputs;  // buffer ids
  std::vector<int32_t> weights;      // tensor index per ABI slot (rank-0 entry), -1 absent; all slots
  LaunchParams params;
  int code_object = -1;              // generated code serving the whole launch (docs/codegen.md)
  std::string code_symbol;
  std::vector<std::string> epilogue_symbols;
  bool hasWeight(size_t slot) const { return slot < weights.size() && weights[slot] >= 0; }
};

enum class KVKind : uint8_t { None = 0, GQA, MLA };

struct KVDesc {
  KVKind kind = KVKind::None;
  DType dtype = DType::F32;
  int64_t num_layers = 0, block_size = 0;
  int64_t kv_heads = 0, head_dim = 0, v_dim = 0;  // GQA
  int64_t rank = 0, rope_dim = 0;                 // MLA
  uint64_t bytes_per_slot = 0;  // one token of one layer (artifact::kvBytesPerSlot)
};

// An artifact's plan, checked (artifact/launch_check.h) and decoded: what every device binds.
struct StepPlan {
  std::vector<BufferDesc> buffers;
  std::vector<LaunchDesc> launches;
  int token_ids = -1, positions = -1, logit_rows = -1, logits = -1;
  KVDesc kv;
  int64_t arena_bytes_per_token = 0, arena_bytes_per_logit_row = 0;
  int tp_size = 1;
  int64_t vocab = 0;
  uint64_t weight_bytes = 0;  // all segments (the thread-count policy reads it)

  // DATA_LOSS naming the artifact when it has no plan.
  static StatusOr<StepPlan> decode(const artifact::Artifact& artifact);
};

// One step as the kernels see it: sizes, the batch's index arrays in device memory, the paged
// KV cache of this rank, and the tensor-parallel group.
struct StepArgs {
  int64_t T = 0;                         // tokens
  int64_t R = 0;                         // logit rows
  const int32_t* positions = nullptr;    // [T]
  const int32_t* token_seq = nullptr;    // [T] sequence of each token
  const int32_t* block_table = nullptr;  // [num_seqs, max_blocks_per_seq]
  int64_t num_seqs = 0, max_blocks_per_seq = 0;
  const KVDesc* kv = nullptr;
  int64_t num_kv_blocks = 0;
  void* const* kv_layers = nullptr;      // per layer: num_kv_blocks blocks of this rank's cache
  Communicator* comm = nullptr;          // null when tp == 1
  // Host copies of positions and token_seq (devices whose arrays live in GPU memory read the
  // batch's shape from them: the CUDA device picks decode or prefill attention).
  const int32_t* host_positions = nullptr;
  const int32_t* host_token_seq = nullptr;
  int rank = 0, tp = 1;
  // Distinct for every step of a rank (1, 2, ...): a device derives per-step data (e.g. the
  // CUDA device's sequence row ranges) once per step instead of once per launch.
  uint64_t step_id = 0;
  // Attention planning's context (split-KV): at least this many positions, whatever this step's
  // tokens reach (0: derived from the step). A recorded decode step is planned for the widest
  // block table it replays with.
  int64_t plan_context = 0;
};

struct BufferArg {
  void* data = nullptr;
  const BufferDesc* desc = nullptr;
  int64_t rows = 0;  // rows this step (T, R or fixed)
};

constexpr size_t kMaxOperands = 8;

struct LaunchArgs {
  size_t index = 0;                      // in plan order
  const LaunchDesc* launch = nullptr;
  const StepArgs* step = nullptr;
  BufferArg in[kMaxOperands];
  BufferArg out[kMaxOperands];
  const Weights* weights = nullptr;      // the rank's, from its device's loadWeights
};

}  // namespace hal
}  // namespace ds

// The CUDA device's launch builder (docs/cuda.md "Kernel table"): a pure function from one plan
// launch, the device addresses of its operands and weights, and the step's shape to the kernel
// launches that implement it - symbol, params bytes, grid, block, dynamic shared memory. No
// driver, no device memory is touched: CudaExecutable queues what it returns with
// cuLaunchKernel, and hal_cuda_test checks the sequences and parameters without a GPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ds_cuda_kernels.h"
#include "hal/cuda/cuda_blaslt_plan.h"
#include "hal/launch.h"

namespace ds::hal::cuda {

// GEMMs of more rows than this (prefill, large decode batches) go to cuBLASLt when the device
// has it (CudaLaunchView::blaslt); up to it they are GEMV kernels, which take at most this many.
constexpr int64_t kGemvMaxRows = DS_CUDA_GEMV_MAX_M;

enum class CudaCallKind {
  Kernel,      // one cuLaunchKernel (below)
  BlasLtGemm,  // one cublasLtMatmul of `gemm` (cuda_blaslt.h) on the device's stream
  // Exchanges of the rank's communicator (comm/communicator.h, NCCL on GPUs) on the device's
  // stream: tensor parallelism's all-reduce and all-gather are planned as exchanges plus
  // kernels (docs/tensor_parallel.md "Collectives on GPUs").
  AllGather,   // exchange.send (exchange.bytes per rank) -> exchange.recv [tp][bytes]
  AllToAllV,   // exchange.to[p] of send to rank p, rank p's part into exchange.from[p] of recv
};

// A piece of an exchange buffer: byte offset and size (Communicator::Piece).
struct CudaPiece {
  uint64_t offset = 0, bytes = 0;
};
struct CudaExchange {
  uint64_t send = 0, recv = 0;
  uint64_t bytes = 0;                  // AllGather: bytes each rank contributes
  std::vector<CudaPiece> to, from;     // AllToAllV: one per rank
};

// One cuLaunchKernel, or (kind BlasLtGemm) one cuBLASLt GEMM. Library kernels take one
// parameter: the params struct, whose bytes are `params` (args = {params.data()}). Generated
// kernels (words = true) take one 8-byte parameter per word of `params` (the memref descriptors
// of docs/codegen.md, args[i] = &params[8 i]).
struct CudaCall {
  CudaCallKind kind = CudaCallKind::Kernel;
  GemmDesc gemm;       // kind BlasLtGemm: the GEMM (symbol is "cublasLtMatmul", no params)
  CudaExchange exchange;  // kinds AllGather / AllToAllV (symbol "ncclAllGather" / "allToAllV")
  std::string symbol;
  std::vector<uint8_t> params;
  uint32_t grid[3] = {1, 1, 1};
  uint32_t block[3] = {1, 1, 1};
  uint32_t shared_bytes = 0;
  bool generated = false;  // symbol of the artifact's module (else the library's)
  bool words = false;      // params is a list of 8-byte kernel parameters
};

// The step as the GPU kernels see it: device addresses of the index arrays and of each KV layer,
// plus what the host knows of the batch (attention picks decode or prefill from it).
struct CudaStepView {
  int64_t T = 0, R = 0;
  uint64_t positions = 0, token_seq = 0, block_table = 0;
  uint64_t seq_q_start = 0;  // int32 [num_seqs + 1]: each sequence's first token row (prefill)
  int64_t num_seqs = 0, max_blocks_per_seq = 0, num_kv_blocks = 0;
  int64_t max_q_len = 0;     // most tokens of one sequence in the step (1: a decode step)
  int64_t max_context = 0;   // max over tokens of position + 1
  const KVDesc* kv = nullptr;
  const uint64_t* kv_layers = nullptr;  // per layer: base of that layer's K then V cache
  int rank = 0, tp = 1;  // tensor-parallel rank and group size (collectives)
};

// One launch with its operands bound.
struct CudaLaunchView {
  const LaunchDesc* launch = nullptr;
  uint64_t in[kMaxOperands] = {}, out[kMaxOperands] = {};
  const BufferDesc* in_desc[kMaxOperands] = {};
  const BufferDesc* out_desc[kMaxOperands] = {};
  int64_t in_rows[kMaxOperands] = {}, out_rows[kMaxOperands] = {};
  // Per weight slot: device address, the artifact tensor's dtype and shape.
  uint64_t weights[8] = {};
  DType weight_dtype[8] = {};
  std::vector<int64_t> weight_shape[8];
  // int4 group-quantized weights (dtype I4, GPU storage of ds_cuda_layout.h): f32 group scales,
  // zero points (0: symmetric) and the group size.
  uint64_t weight_scale[8] = {}, weight_zero[8] = {};
  int64_t weight_group[8] = {};
  // FP8 E4M3 weights with f32 block scales (DeepSeek-V3): the scales and the block [rows, cols].
  uint64_t weight_block_scale[8] = {};
  int64_t weight_block[8][2] = {};
  // Rope launches (rope, qkv_rope): f32 inv_freq [dim / 2] on the device, and the table's factor.
  uint64_t inv_freq = 0;
  float attention_factor = 1.0f;
  // Workspace given to this launch (scratch activations, then split-K / split-KV partials).
  uint64_t workspace = 0;
  ds_cuda_device_limits limits{132, 48 * 1024};
  // Generated kernel serving the whole launch: its block size (max threads per block, .maxntid).
  bool generated = false;
  uint32_t generated_threads = 0;
  // The device has cuBLASLt: GEMMs of more than kGemvMaxRows rows whose dtypes it takes (f32 x
  // f32, bf16 x bf16) become BlasLtGemm calls instead of GEMV chunks. False: GEMV only.
  bool blaslt = false;
  // The kernel library has the tensor-core prefill GEMMs (ds_cuda_gemm_q.h; libraries embedded
  // by older ds-compile builds do not): prefills with bf16 activations of int4 / 8-bit weights
  // and of the experts take them instead of GEMV passes.
  bool quant_gemm = false;
  // The library has the MLA prefill attention (ds_mla_prefill_*; older embedded ones do not):
  // steps with several tokens of one sequence take it instead of the decode kernels.
  bool mla_prefill = false;
  // The artifact asks for FP8 activations (--quant-act fp8) and this GPU has FP8 tensor cores:
  // prefill GEMMs over FP8 weights run ds_gemm_fp8mma (ds_cuda_gemm_q.h).
  bool fp8_act = false;
  bool fp8_moe = false;  // the same for the experts (ds_moe_gemm_wfp8_afp8_*, newer libraries)
};

struct CudaLaunchPlan {
  std::vector<CudaCall> calls;
  uint64_t workspace_bytes = 0;  // what the calls need at view.workspace (256-byte aligned parts)
};

// The calls for one launch, in stream order. UNSUPPORTED naming the launch for kinds and dtypes
// the library does not cover (bf16 activations with f32 norm
// weights; quantized weights other than int4 groups); INVALID_ARGUMENT with the library's message when a plan function
// refuses the shapes. When workspace_bytes exceeds what the caller gave, it grows the workspace
// and builds again (the params embed the address).
StatusOr<CudaLaunchPlan> planCudaLaunch(const CudaLaunchView& view, const CudaStepView& step);

// The library's element type for a plan dtype (F32, BF16), or -1.
int cudaDType(DType d);

}  // namespace ds::hal::cuda

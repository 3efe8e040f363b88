// The CUDA launch builder's class (cuda_launches.h has its interface): shared by the dense kinds
// (cuda_launches.cpp) and DeepSeek's MLA / MoE kinds (cuda_launches_deepseek.cpp). Internal.
#pragma once

#include <algorithm>
#include <cstring>

#include "hal/cuda/cuda_launches.h"

namespace ds::hal::cuda::builder {

using K = abi::KernelKind;

// `const int var = *expr` or return expr's status.
#define DS_CUDA_ASSIGN(var, expr)               \
  auto var##_or = (expr);                        \
  if (!var##_or.isOk()) return var##_or.status(); \
  const int var = *var##_or

inline uint64_t align256(uint64_t n) { return (n + 255) & ~uint64_t{255}; }

// Weight dtype codes inside the builder (not library dtypes): int4 groups, FP8 block-scaled.
constexpr int kInt4 = 100;
constexpr int kFp8 = 101;  // FP8 E4M3 with block scales, or per channel (blocks of 1 x K)
constexpr int kInt8 = 102;  // int8 per channel (--quant w8)

// A GEMM's weight operand: rows [row0, ...) of a slot's tensor (the q/k/v parts of a merged
// projection), with its int4 group scales when w_dt is kInt4.
struct WeightRef {
  uint64_t w = 0, scale = 0, zero = 0;
  int dt = DS_CUDA_F32;
  int64_t group = 0;
  int64_t block_rows = 0, block_cols = 0;  // kFp8/kInt8: scale holds [ceil(N / br), ceil(K / bc)]
};
inline int64_t elemBytes(int dt) { return dt == DS_CUDA_BF16 ? 2 : 4; }

template <typename P>
std::vector<uint8_t> bytesOf(const P& p) {
  std::vector<uint8_t> b(sizeof(P));
  std::memcpy(b.data(), &p, sizeof(P));
  return b;
}

// Builds the calls of one launch; `scratch` bytes of activations sit at view.workspace, the
// library plans' workspace after them.
class Builder {
 public:
  Builder(const CudaLaunchView& v, const CudaStepView& s) : v_(v), s_(s) {}

  Status fail(const std::string& why) const {
    return unsupported("plan launch " + std::string(v_.launch->sig->name) + ": " + why);
  }
  Status refused(const char* msg) const {
    return invalidArgument("plan launch " + std::string(v_.launch->sig->name) + ": " + msg);
  }
  // Activation dtype of input/output i as the library's, or an error.
  StatusOr<int> act(const BufferDesc* d) const {
    const int dt = cudaDType(d->dtype);
    if (dt < 0) return fail("activations must be f32 or bf16");
    return dt;
  }
  // The step's KV cache element type for the attention kernels: DS_CUDA_KV_INT8 / DS_CUDA_FP8_E4M3
  // for the host's quantized schemes (--kv-cache int8 / fp8), else it must be the activations'.
  StatusOr<int> kvCacheDType(int act_dt, const char* cache) const {
    if (s_.kv->dtype == DType::I8) return int{DS_CUDA_KV_INT8};
    if (s_.kv->dtype == DType::F8E4M3) return int{DS_CUDA_FP8_E4M3};
    if (cudaDType(s_.kv->dtype) != act_dt)
      return fail(std::string("the ") + cache + " must be int8, fp8 or the activations' dtype");
    return act_dt;
  }
  StatusOr<int> weightDType(size_t slot) const {
    if (v_.weight_dtype[slot] == DType::I4 && v_.weight_scale[slot] && v_.weight_group[slot] > 0)
      return kInt4;
    if (v_.weight_dtype[slot] == DType::F8E4M3 && v_.weight_block_scale[slot] &&
        v_.weight_block[slot][0] > 0 && v_.weight_block[slot][1] > 0)
      return kFp8;
    // Per-channel scales (--quant fp8 / w8): the scale of each output row.
    if (v_.weight_dtype[slot] == DType::F8E4M3 && v_.weight_scale[slot] && v_.weight_group[slot] == 0)
      return kFp8;
    if (v_.weight_dtype[slot] == DType::I8 && v_.weight_scale[slot] && v_.weight_group[slot] == 0)
      return kInt8;
    const int dt = cudaDType(v_.weight_dtype[slot]);
    if (dt < 0) return fail("weight slot " + std::to_string(slot) +
                            " is not f32, bf16, int4 groups, int8 / FP8 per channel or FP8 "
                            "block-scaled (its scales are missing)");
    return dt;
  }
  // Slot `slot`'s weight from row `row0` on, K columns per row.
  WeightRef weightRef(size_t slot, int dt, int64_t row0 = 0, int64_t K = 0) const {
    WeightRef r;
    r.dt = dt;
    if (dt == kFp8 || dt == kInt8) {
      r.w = v_.weights[slot] + static_cast<uint64_t>(row0 * K);
      if (!v_.weight_block_scale[slot]) {  // per channel: blocks of one row by K columns
        r.block_rows = 1;
        r.block_cols = K;
        r.scale = v_.weight_scale[slot] + static_cast<uint64_t>(row0 * 4);
        return r;
      }
      // Block-scaled: row ranges must start on a block row (FP8 weights are never merged).
      r.block_rows = v_.weight_block[slot][0];
      r.block_cols = v_.weight_block[slot][1];
      const int64_t kb = K > 0 ? (K + r.block_cols - 1) / r.block_cols : 0;
      r.scale = v_.weight_block_scale[slot] + static_cast<uint64_t>(row0 / r.block_rows * kb * 4);
      return r;
    }
    if (dt != kInt4) {
      r.w = v_.weights[slot] + static_cast<uint64_t>(row0 * K * elemBytes(dt));
      return r;
    }
    r.group = v_.weight_group[slot];
    const int64_t groups = K > 0 ? (K + r.group - 1) / r.group : 0;  // a partial last group counts
    r.w = v_.weights[slot] + static_cast<uint64_t>(row0 * (K / 2));
    r.scale = v_.weight_scale[slot] + static_cast<uint64_t>(row0 * groups * 4);
    r.zero = v_.weight_zero[slot] ? v_.weight_zero[slot] + static_cast<uint64_t>(row0 * groups * 4) : 0;
    return r;
  }
  void setScratch(uint64_t bytes) { scratch_ = align256(bytes); }
  uint64_t scratch() const { return v_.workspace; }
  uint64_t kernelWorkspace() const { return v_.workspace + scratch_; }

  Status add(const ds_cuda_plan& plan, const char* err, std::vector<uint8_t> params) {
    if (err) return refused(err);
    for (int i = 0; i < plan.num_launches; ++i) {
      CudaCall c;
      c.symbol = plan.launches[i].symbol;
      c.params = params;
      std::memcpy(c.grid, plan.launches[i].grid, sizeof(c.grid));
      std::memcpy(c.block, plan.launches[i].block, sizeof(c.block));
      c.shared_bytes = plan.launches[i].shared_bytes;
      out_.calls.push_back(std::move(c));
    }
    kernel_ws_ = std::max<uint64_t>(kernel_ws_, align256(plan.workspace_bytes));
    return Status::ok();
  }

  // y[M, N] = x[M, K] w[N, K]^T (+ bias): one cuBLASLt GEMM when the view allows it, M is
  // above the GEMV limit and cuBLASLt takes the dtypes; else GEMV in chunks of kGemvMaxRows rows.
  // y_f32: y is f32 whatever act_dt (logits).
  Status gemm(uint64_t x, int64_t x_stride, const WeightRef& wr, uint64_t bias, uint64_t y,
              int64_t y_stride, int act_dt, int64_t M, int64_t N, int64_t K, bool y_f32 = false) {
    const uint64_t w = wr.w;
    const int w_dt = wr.dt;
    if (w_dt == kInt4) return gemmInt4(x, x_stride, wr, bias, y, y_stride, act_dt, M, N, K, y_f32);
    if (w_dt == kFp8 || w_dt == kInt8)
      return gemmFp8(x, x_stride, wr, bias, y, y_stride, act_dt, M, N, K, y_f32);
    if (v_.blaslt && M > kGemvMaxRows) {
      CudaCall c;
      c.kind = CudaCallKind::BlasLtGemm;
      c.symbol = "cublasLtMatmul";
      GemmDesc& g = c.gemm;
      g.x = x, g.w = w, g.y = y, g.bias = bias;
      g.M = M, g.N = N, g.K = K;
      g.x_stride = x_stride, g.y_stride = y_stride, g.w_stride = K;
      g.act_dtype = act_dt, g.weight_dtype = w_dt, g.bias_dtype = DS_CUDA_F32;
      g.y_f32 = y_f32;
      BlasLtMatmulPlan plan;
      if (!planBlasLtGemm(g, &plan)) {  // refused (f32 activations x bf16 weights): GEMV below
        out_.calls.push_back(std::move(c));
        return Status::ok();
      }
    }
    const int64_t ab = elemBytes(act_dt), yb = y_f32 ? 4 : ab;
    for (int64_t r0 = 0; r0 < M; r0 += kGemvMaxRows) {
      ds_cuda_gemv_params p{};
      p.x = x + static_cast<uint64_t>(r0 * x_stride * ab);
      p.w = w;
      p.bias = bias;
      p.y = y + static_cast<uint64_t>(r0 * y_stride * yb);
      p.workspace = kernelWorkspace();
      p.M = static_cast<int32_t>(std::min<int64_t>(kGemvMaxRows, M - r0));
      p.N = static_cast<int32_t>(N);
      p.K = static_cast<int32_t>(K);
      p.x_stride = static_cast<int32_t>(x_stride);
      p.y_stride = static_cast<int32_t>(y_stride);
      p.act_dtype = act_dt;
      p.weight_dtype = w_dt;
      p.y_f32 = y_f32 ? 1 : 0;
      ds_cuda_plan plan;
      const char* e = ds_cuda_plan_gemv(&p, &v_.limits, &plan);
      DS_RETURN_IF_ERROR(add(plan, e, bytesOf(p)));
    }
    return Status::ok();
  }

  // A quantized weight's GEMV in passes of kGemvMaxRows rows (prefill too: no quantized
  // tensor-core GEMM yet). Params: ds_cuda_gemv_i4_params or ds_cuda_gemv_fp8_params (the same
  // operand fields); `finish` sets the encoding's own fields and plans.
  template <class Params, class Finish>
  Status quantizedGemv(uint64_t x, int64_t x_stride, const WeightRef& wr, uint64_t bias, uint64_t y,
                       int64_t y_stride, int act_dt, int64_t M, int64_t N, int64_t K, Finish finish) {
    const int64_t ab = elemBytes(act_dt);
    for (int64_t r0 = 0; r0 < M; r0 += kGemvMaxRows) {
      Params p{};
      p.x = x + static_cast<uint64_t>(r0 * x_stride * ab);
      p.w = wr.w;
      p.scale = wr.scale;
      p.bias = bias;
      p.y = y + static_cast<uint64_t>(r0 * y_stride * ab);
      p.M = static_cast<int32_t>(std::min<int64_t>(kGemvMaxRows, M - r0));
      p.N = static_cast<int32_t>(N);
      p.K = static_cast<int32_t>(K);
      p.x_stride = static_cast<int32_t>(x_stride);
      p.y_stride = static_cast<int32_t>(y_stride);
      p.act_dtype = act_dt;
      ds_cuda_plan plan;
      const char* e = finish(p, plan);
      DS_RETURN_IF_ERROR(add(plan, e, bytesOf(p)));
    }
    return Status::ok();
  }

  // Prefill over a quantized weight (more than kGemvMaxRows rows of bf16 activations): one
  // tensor-core GEMM (ds_cuda_gemm_q.h) when the library has it and takes the shape; false:
  // the caller runs GEMV passes.
  StatusOr<bool> quantizedGemm(uint64_t x, int64_t x_stride, const WeightRef& wr, uint64_t bias, uint64_t y,
                               int64_t y_stride, int act_dt, int64_t M, int64_t N, int64_t K) {
    if (!v_.quant_gemm || act_dt != DS_CUDA_BF16 || M <= kGemvMaxRows) return false;
    ds_cuda_gemm_q_params p{};
    p.x = x, p.w = wr.w, p.scale = wr.scale, p.zero = wr.zero, p.bias = bias, p.y = y;
    p.M = static_cast<int32_t>(M);
    p.N = static_cast<int32_t>(N);
    p.K = static_cast<int32_t>(K);
    p.x_stride = static_cast<int32_t>(x_stride);
    p.y_stride = static_cast<int32_t>(y_stride);
    p.wtype = wr.dt == kInt4 ? DS_CUDA_GEMM_Q_I4 : wr.dt == kInt8 ? DS_CUDA_GEMM_Q_I8 : DS_CUDA_GEMM_Q_FP8;
    p.group_size = static_cast<int32_t>(wr.group);
    p.block_rows = static_cast<int32_t>(wr.block_rows);
    p.block_cols = static_cast<int32_t>(wr.block_cols);
    ds_cuda_plan plan;
    // --quant-act fp8 on FP8 tensor cores: FP8 x FP8 when the shape takes it (K % 128).
    if (v_.fp8_act && p.wtype == DS_CUDA_GEMM_Q_FP8 && !ds_cuda_plan_gemm_fp8mma(&p, &plan)) {
      DS_RETURN_IF_ERROR(add(plan, nullptr, bytesOf(p)));
      return true;
    }
    if (ds_cuda_plan_gemm_q(&p, &plan)) return false;  // a shape it does not take: GEMV passes
    DS_RETURN_IF_ERROR(add(plan, nullptr, bytesOf(p)));
    return true;
  }

  // int4 group weights in the GPU storage: ds_gemv_wi4 (prefill: ds_gemm_q_i4).
  Status gemmInt4(uint64_t x, int64_t x_stride, const WeightRef& wr, uint64_t bias, uint64_t y,
                  int64_t y_stride, int act_dt, int64_t M, int64_t N, int64_t K, bool y_f32) {
    if (y_f32) return fail("int4 weights with an f32 output of bf16 activations (logits) are not built");
    StatusOr<bool> gemm = quantizedGemm(x, x_stride, wr, bias, y, y_stride, act_dt, M, N, K);
    if (!gemm.isOk() || *gemm) return gemm.status();
    return quantizedGemv<ds_cuda_gemv_i4_params>(
        x, x_stride, wr, bias, y, y_stride, act_dt, M, N, K,
        [&](ds_cuda_gemv_i4_params& p, ds_cuda_plan& plan) {
          p.zero = wr.zero;
          p.group_size = static_cast<int32_t>(wr.group);
          return ds_cuda_plan_gemv_i4(&p, &plan);
        });
  }

  // 8-bit codes (FP8 E4M3 or int8) with block or per-channel scales, as stored: ds_gemv_w{fp8,i8}
  // (prefill: ds_gemm_q_{fp8,i8}).
  Status gemmFp8(uint64_t x, int64_t x_stride, const WeightRef& wr, uint64_t bias, uint64_t y,
                 int64_t y_stride, int act_dt, int64_t M, int64_t N, int64_t K, bool y_f32) {
    if (y_f32) return fail("8-bit weights with an f32 output of bf16 activations (logits) are not built");
    StatusOr<bool> gemm = quantizedGemm(x, x_stride, wr, bias, y, y_stride, act_dt, M, N, K);
    if (!gemm.isOk() || *gemm) return gemm.status();
    return quantizedGemv<ds_cuda_gemv_fp8_params>(
        x, x_stride, wr, bias, y, y_stride, act_dt, M, N, K,
        [&](ds_cuda_gemv_fp8_params& p, ds_cuda_plan& plan) {
          p.block_rows = static_cast<int32_t>(wr.block_rows);
          p.block_cols = static_cast<int32_t>(wr.block_cols);
          p.int8_codes = wr.dt == kInt8 ? 1 : 0;
          return ds_cuda_plan_gemv_fp8(&p, &plan);
        });
  }

  // RMSNorm of rows of `cols` (weight slot `slot`: f32 or the activations' dtype); with
  // `residual`, add + RMSNorm writing the sum too. x == y is allowed (in place).
  Status rmsNorm(uint64_t x, uint64_t residual, uint64_t y, uint64_t sum, int64_t rows,
                 int64_t cols, size_t slot, int dt) {
    DS_CUDA_ASSIGN(wdt, weightDType(slot));
    if (wdt != dt && wdt != DS_CUDA_F32) return fail("norm weights must be f32 or the activations' dtype");
    ds_cuda_rms_norm_params p{};
    p.x = x;
    p.residual = residual;
    p.weight = v_.weights[slot];
    p.y = y;
    p.sum = sum;
    p.rows = static_cast<int32_t>(rows);
    p.cols = static_cast<int32_t>(cols);
    p.eps = v_.launch->params.eps;
    p.dtype = dt;
    p.add = residual ? 1 : 0;
    p.weight_f32 = wdt != dt ? 1 : 0;
    ds_cuda_plan plan;
    const char* e = ds_cuda_plan_rms_norm(&p, &plan);
    return add(plan, e, bytesOf(p));
  }

  Status rope(uint64_t x, int64_t heads, int64_t head_dim, int64_t token_stride, int dt) {
    ds_cuda_rope_params p{};
    p.x = x;
    p.positions = s_.positions;
    p.inv_freq = v_.inv_freq;
    p.num_tokens = static_cast<int32_t>(s_.T);
    p.heads = static_cast<int32_t>(heads);
    p.head_dim = static_cast<int32_t>(head_dim);
    p.rot_dim = static_cast<int32_t>(v_.launch->params.rope.dim ? v_.launch->params.rope.dim : head_dim);
    p.token_stride = static_cast<int32_t>(token_stride);
    p.interleaved = v_.launch->params.rope.interleaved ? 1 : 0;
    p.attention_factor = v_.attention_factor;
    p.dtype = dt;
    if (!v_.inv_freq) return refused("rope: no inv_freq table on the device");
    ds_cuda_plan plan;
    const char* e = ds_cuda_plan_rope(&p, &plan);
    return add(plan, e, bytesOf(p));
  }

  Status build();
  Status buildDeepSeek();  // MLA and MoE kinds (cuda_launches_deepseek.cpp)
  // Tensor parallelism (cuda_launches_collective.cpp): out[0, n) = the rank-ordered sum over the
  // ranks of in[0, n) (out == in allowed); out[rows, cols * tp] = every rank's in[rows, cols]
  // side by side. Nothing at tp 1 (all-reduce in place) or a copy (all-gather).
  Status allReduce(uint64_t in, uint64_t out, int64_t n, int dt);
  Status allGatherCols(uint64_t in, int64_t rows, int64_t cols, uint64_t out, int dt);
  Status copyCols(uint64_t x, int64_t x_stride, uint64_t y, int64_t y_stride, int64_t rows, int64_t cols, int dt);
  Status buildGenerated();
  CudaLaunchPlan take() {
    out_.workspace_bytes = v_.generated ? 0 : scratch_ + kernel_ws_;
    return std::move(out_);
  }

 private:
  const CudaLaunchView& v_;
  const CudaStepView& s_;
  uint64_t scratch_ = 0, kernel_ws_ = 0;
  CudaLaunchPlan out_;
};

int64_t vectorLen(const std::vector<int64_t>& shape);

}  // namespace ds::hal::cuda::builder

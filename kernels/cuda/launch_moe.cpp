// Launch planning of the mixture-of-experts kernels (include/ds_cuda_moe.h): validation and
// geometry, pure functions of the params (no CUDA, no device memory).
#include <cstring>

#include "ds_cuda_kernels.h"
#include "launch_common.h"

using namespace ds_cuda_plan_util;

namespace {

constexpr int64_t kMaxSlots = int64_t{1} << 30;  // T * top_k rows stay int32 with room

uint64_t alignUp(uint64_t v) { return (v + 255) & ~uint64_t{255}; }

}  // namespace

extern "C" {

const char* ds_cuda_plan_moe_route(const ds_cuda_moe_route_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (p->num_tokens < 1) return "moe_route: num_tokens must be >= 1";
  if (p->num_experts < 1 || p->num_experts > DS_CUDA_MOE_MAX_EXPERTS)
    return "moe_route: num_experts must be in [1, 512]";
  if (p->top_k < 1 || p->top_k > DS_CUDA_MOE_MAX_TOPK || p->top_k > p->num_experts)
    return "moe_route: top_k must be in [1, min(16, num_experts)]";
  if (p->scoring != DS_CUDA_MOE_SOFTMAX && p->scoring != DS_CUDA_MOE_SIGMOID)
    return "moe_route: scoring must be softmax or sigmoid";
  if (p->method < DS_CUDA_MOE_GREEDY || p->method > DS_CUDA_MOE_NOAUX_TC)
    return "moe_route: unknown method";
  if (p->n_group < 1 || p->n_group > DS_CUDA_MOE_MAX_GROUPS || p->num_experts % p->n_group != 0)
    return "moe_route: n_group must be in [1, 32] and divide num_experts";
  if (p->topk_group < 1 || p->topk_group > p->n_group)
    return "moe_route: topk_group must be in [1, n_group]";
  if (!p->logits || !p->weights || !p->ids) return "moe_route: logits, weights and ids are required";
  setLaunch(out->launches[0], "ds_moe_route", ceilDiv(p->num_tokens, 4), 1, 1, 128);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_moe_permute(const ds_cuda_moe_permute_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (p->num_tokens < 1 || p->top_k < 1 || p->top_k > DS_CUDA_MOE_MAX_TOPK)
    return "moe_permute: num_tokens must be >= 1 and top_k in [1, 16]";
  if (int64_t{p->num_tokens} * p->top_k > kMaxSlots) return "moe_permute: T * top_k exceeds 2^30";
  if (p->num_local < 1 || p->num_local > DS_CUDA_MOE_MAX_LOCAL_EXPERTS)
    return "moe_permute: num_local must be in [1, 256] (experts per rank)";
  if (p->first_expert < 0) return "moe_permute: first_expert must be >= 0";
  if (!p->ids || !p->weights || !p->expert_start || !p->active || !p->row_token ||
      !p->row_weight || !p->slot_row)
    return "moe_permute: every pointer is required";
  setLaunch(out->launches[0], "ds_moe_permute", 1, 1, 1, 1024);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_moe_gemv(const ds_cuda_moe_gemv_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->act_dtype)) return "moe_gemv: act_dtype not f32 or bf16";
  if (p->weight_dtype != DS_CUDA_BF16 && p->weight_dtype != DS_CUDA_FP8_E4M3)
    return "moe_gemv: weight_dtype must be bf16 or fp8_e4m3";
  if (p->N < 1 || p->K < 1 || p->K % 16 != 0) return "moe_gemv: N >= 1 and K a multiple of 16";
  if (p->num_local < 1 || p->max_rows < 1) return "moe_gemv: num_local and max_rows must be >= 1";
  if (p->x_stride < p->K || p->y_stride < p->N) return "moe_gemv: strides must cover K and N";
  const int32_t xv = p->act_dtype == DS_CUDA_BF16 ? 8 : 4;
  if (p->x_stride % xv != 0) return "moe_gemv: x_stride must keep rows 16-byte aligned";
  if (!p->x || !p->w || !p->y || !p->expert_start || !p->active || (p->gather && !p->row_token))
    return "moe_gemv: x, w, y, expert_start, active (and row_token with gather) are required";
  if (p->swiglu && !p->w2) return "moe_gemv: swiglu needs w2 (the up projection)";
  const bool fp8 = p->weight_dtype == DS_CUDA_FP8_E4M3;
  if (fp8 && (!p->w_scale || (p->swiglu && !p->w2_scale)))
    return "moe_gemv: FP8 weights need their block scales";
  if (!fp8 && (p->w_scale || p->w2_scale)) return "moe_gemv: block scales given for bf16 weights";
  if (!aligned(p->x, 16) || !aligned(p->w, 16) || (p->swiglu && !aligned(p->w2, 16)))
    return "moe_gemv: x and weights must be 16-byte aligned";
  const char* w = fp8 ? "fp8" : "bf16";
  char prefix[32] = "ds_moe_gemv_w";
  std::strcat(prefix, w);
  std::strcat(prefix, "_a");
  std::strcat(prefix, dtypeName(p->act_dtype));
  const char* kernel = symbol(prefix, p->swiglu ? "_swiglu" : "_plain");
  if (!kernel) return "moe_gemv: no kernel for these dtypes";
  const int64_t experts = p->num_local < p->max_rows ? p->num_local : p->max_rows;
  if (experts > 65535) return "moe_gemv: more than 65535 active experts";
  setLaunch(out->launches[0], kernel, ceilDiv(p->N, 8), experts, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_moe_combine(const ds_cuda_moe_combine_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) return "moe_combine: dtype not f32 or bf16";
  if (p->num_tokens < 1 || p->hidden < 1 || p->top_k < 1 || p->top_k > DS_CUDA_MOE_MAX_TOPK)
    return "moe_combine: num_tokens, hidden >= 1 and top_k in [1, 16]";
  if (!p->y || !p->ids || !p->weights || !p->slot_row || !p->out)
    return "moe_combine: y, ids, weights, slot_row and out are required";
  setLaunch(out->launches[0], p->dtype == DS_CUDA_BF16 ? "ds_moe_combine_bf16" : "ds_moe_combine_f32",
            p->num_tokens, 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_moe_workspace_layout(int32_t num_tokens, int32_t num_experts, int32_t top_k,
                                         int32_t num_local, int32_t inter, int32_t hidden,
                                         int32_t act_dtype, ds_cuda_moe_workspace* out) {
  std::memset(out, 0, sizeof(*out));
  if (num_tokens < 1 || num_experts < 1 || top_k < 1 || num_local < 1 || inter < 1 || hidden < 1)
    return "moe workspace: every size must be >= 1";
  if (!validDtype(act_dtype)) return "moe workspace: act_dtype not f32 or bf16";
  const uint64_t T = static_cast<uint64_t>(num_tokens), slots = T * static_cast<uint64_t>(top_k);
  if (slots > static_cast<uint64_t>(kMaxSlots)) return "moe workspace: T * top_k exceeds 2^30";
  const uint64_t act = act_dtype == DS_CUDA_BF16 ? 2 : 4;
  uint64_t at = 0;
  auto take = [&](uint64_t bytes) {
    const uint64_t here = at;
    at = alignUp(at + bytes);
    return here;
  };
  out->logits = take(T * static_cast<uint64_t>(num_experts) * 4);
  out->weights = take(slots * 4);
  out->ids = take(slots * 4);
  out->expert_start = take((static_cast<uint64_t>(num_local) + 1) * 4);
  out->active = take((static_cast<uint64_t>(num_local) + 1) * 4);
  out->row_token = take(slots * 4);
  out->row_weight = take(slots * 4);
  out->slot_row = take(slots * 4);
  out->h = take(slots * static_cast<uint64_t>(inter) * act);
  out->y = take(slots * static_cast<uint64_t>(hidden) * act);
  out->total_bytes = at;
  return nullptr;
}

}  // extern "C"

// GPU storage of int4 weights (include/ds_cuda_layout.h): a nibble permutation inside each 32-bit
// word, plus the offset of symmetric codes. Host code, no CUDA.
#include <cstring>

#include "ds_cuda_kernels.h"
#include "launch_common.h"

using namespace ds_cuda_plan_util;

namespace {

uint32_t load32(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);  // little-endian: element 0 in bits 0-3, as the host reads bytes
  return w;
}

}  // namespace

extern "C" {

void ds_cuda_i4_to_gpu(uint8_t* bytes, uint64_t n, int symmetric) {
  for (uint64_t at = 0; at + 4 <= n; at += 4) {
    const uint32_t w = load32(bytes + at) ^ (symmetric ? 0x88888888u : 0u);
    uint32_t out = 0;
    for (int i = 0; i < 8; ++i) out |= ((w >> (4 * i)) & 0xfu) << (4 * (i / 2 + 4 * (i % 2)));
    std::memcpy(bytes + at, &out, 4);
  }
}

void ds_cuda_i4_from_gpu(uint8_t* bytes, uint64_t n, int symmetric) {
  for (uint64_t at = 0; at + 4 <= n; at += 4) {
    const uint32_t w = load32(bytes + at);
    uint32_t out = 0;
    for (int i = 0; i < 8; ++i) out |= ((w >> (4 * (i / 2 + 4 * (i % 2)))) & 0xfu) << (4 * i);
    out ^= symmetric ? 0x88888888u : 0u;
    std::memcpy(bytes + at, &out, 4);
  }
}

}  // extern "C"

extern "C" const char* ds_cuda_plan_gemv_i4(ds_cuda_gemv_i4_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (p->act_dtype != DS_CUDA_F32 && p->act_dtype != DS_CUDA_BF16)
    return "gemv_i4: act_dtype not f32 or bf16";
  if (p->M < 1 || p->M > DS_CUDA_GEMV_MAX_M) return "gemv_i4: M must be in [1, 16]";
  if (p->N < 1 || p->K < 8 || p->K % 8 != 0) return "gemv_i4: N >= 1 and K a multiple of 8";
  if (p->group_size < 1) return "gemv_i4: group_size must be >= 1";
  if (p->x_stride < p->K || p->y_stride < p->N) return "gemv_i4: strides must cover K and N";
  if (!p->x || !p->w || !p->scale || !p->y) return "gemv_i4: x, w, scale and y are required";
  if (p->w % 4 != 0) return "gemv_i4: weights must be 4-byte aligned";
  out->num_launches = 1;
  // The fast kernel: 16-byte loads of 32 elements inside one group, 16-byte aligned x rows.
  const bool fast = p->K % 32 == 0 && p->group_size % 32 == 0 && p->K % p->group_size == 0 &&
                    p->x_stride % (p->act_dtype == DS_CUDA_BF16 ? 8 : 4) == 0 && p->x % 16 == 0 &&
                    p->w % 16 == 0;
  if (!fast) {
    p->rows_per_pass = 1;
    setLaunch(out->launches[0], p->act_dtype == DS_CUDA_BF16 ? "ds_gemv_any_wi4_abf16" : "ds_gemv_any_wi4_af32",
              ceilDiv(p->N, 8), p->M, 1, 256);
    return nullptr;
  }
  const int mt = p->M >= 4 ? 4 : p->M >= 2 ? 2 : 1;
  p->rows_per_pass = mt;
  static const char* const kSyms[2][3] = {
      {"ds_gemv_wi4_af32_m1", "ds_gemv_wi4_af32_m2", "ds_gemv_wi4_af32_m4"},
      {"ds_gemv_wi4_abf16_m1", "ds_gemv_wi4_abf16_m2", "ds_gemv_wi4_abf16_m4"}};
  setLaunch(out->launches[0], kSyms[p->act_dtype == DS_CUDA_BF16][mt == 4 ? 2 : mt - 1],
            ceilDiv(p->N, 8), ceilDiv(p->M, mt), 1, 256);
  return nullptr;
}

extern "C" const char* ds_cuda_plan_i4_to_gpu(const ds_cuda_i4_to_gpu_params* p,
                                              const ds_cuda_device_limits* dev, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!dev || dev->sm_count < 1) return "device limits: sm_count must be >= 1";
  if (!p->data || p->data % 4 != 0) return "i4_to_gpu: data must be a 4-byte aligned pointer";
  if (p->words < 1) return "i4_to_gpu: words must be >= 1";
  const uint64_t blocks = (p->words + 255) / 256, cap = 8 * static_cast<uint64_t>(dev->sm_count);
  setLaunch(out->launches[0], "ds_i4_to_gpu", static_cast<int64_t>(std::min(blocks, cap)), 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

extern "C" const char* ds_cuda_plan_gemv_fp8(ds_cuda_gemv_fp8_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (p->act_dtype != DS_CUDA_F32 && p->act_dtype != DS_CUDA_BF16)
    return "gemv_fp8: act_dtype not f32 or bf16";
  if (p->M < 1 || p->M > DS_CUDA_GEMV_MAX_M) return "gemv_fp8: M must be in [1, 16]";
  if (p->N < 1 || p->K < 16 || p->K % 16 != 0) return "gemv_fp8: N >= 1 and K a multiple of 16";
  if (p->block_rows < 1 || p->block_cols < 16 || p->block_cols % 16 != 0)
    return "gemv_fp8: block_rows >= 1 and block_cols a multiple of 16";
  if (p->x_stride < p->K || p->y_stride < p->N) return "gemv_fp8: strides must cover K and N";
  if (!p->x || !p->w || !p->scale || !p->y) return "gemv_fp8: x, w, scale and y are required";
  if (p->x_stride % (p->act_dtype == DS_CUDA_BF16 ? 8 : 4) != 0 || p->x % 16 != 0 || p->w % 16 != 0)
    return "gemv_fp8: x rows and weights must be 16-byte aligned";
  const bool f32 = p->act_dtype == DS_CUDA_F32;
  const int mt = p->M >= 4 && !f32 ? 4 : p->M >= 2 ? 2 : 1;
  p->rows_per_pass = mt;
  static const char* const kSyms[2][2][3] = {
      {{"ds_gemv_wfp8_af32_m1", "ds_gemv_wfp8_af32_m2", nullptr},
       {"ds_gemv_wfp8_abf16_m1", "ds_gemv_wfp8_abf16_m2", "ds_gemv_wfp8_abf16_m4"}},
      {{"ds_gemv_wi8_af32_m1", "ds_gemv_wi8_af32_m2", nullptr},
       {"ds_gemv_wi8_abf16_m1", "ds_gemv_wi8_abf16_m2", "ds_gemv_wi8_abf16_m4"}}};
  setLaunch(out->launches[0], kSyms[p->int8_codes ? 1 : 0][p->act_dtype == DS_CUDA_BF16][mt == 4 ? 2 : mt - 1],
            ceilDiv(p->N, 8), ceilDiv(p->M, mt), 1, 256);
  out->num_launches = 1;
  return nullptr;
}

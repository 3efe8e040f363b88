// Launch plans of the mixture-of-experts kernels (kernels/cuda/include/ds_cuda_moe.h): geometry,
// kernel choice, refusals naming the field, and the shared workspace layout; all on the host.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "ds_cuda_kernels.h"

namespace {

constexpr ds_cuda_ptr kPtr = 0x10000;  // any 256-byte aligned address: plans never dereference

bool isSymbol(const char* s) {
  for (const char* const* t = ds_cuda_kernel_symbols(); *t; ++t)
    if (std::strcmp(*t, s) == 0) return true;
  return false;
}

ds_cuda_moe_route_params route(int T, int E, int K) {
  ds_cuda_moe_route_params p{};
  p.logits = p.weights = p.ids = kPtr;
  p.num_tokens = T;
  p.num_experts = E;
  p.top_k = K;
  p.n_group = p.topk_group = 1;
  p.scoring = DS_CUDA_MOE_SOFTMAX;
  p.routed_scaling_factor = 1.0f;
  return p;
}

TEST(CudaMoeLaunch, RouteIsOneWarpPerToken) {
  ds_cuda_plan plan;
  ds_cuda_moe_route_params p = route(130, 256, 8);  // DeepSeek-V3: 8 of 256, 8 groups
  p.method = DS_CUDA_MOE_NOAUX_TC;
  p.scoring = DS_CUDA_MOE_SIGMOID;
  p.n_group = 8;
  p.topk_group = 4;
  ASSERT_EQ(ds_cuda_plan_moe_route(&p, &plan), nullptr);
  ASSERT_EQ(plan.num_launches, 1);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_moe_route");
  EXPECT_EQ(plan.launches[0].grid[0], 33u);  // 4 tokens per block of 128
  EXPECT_EQ(plan.launches[0].block[0], 128u);
  EXPECT_TRUE(isSymbol(plan.launches[0].symbol));
}

TEST(CudaMoeLaunch, RouteRefusesWhatTheKernelCannotHold) {
  ds_cuda_plan plan;
  struct Bad {
    ds_cuda_moe_route_params p;
    const char* field;
  };
  ds_cuda_moe_route_params groups = route(1, 160, 6);
  groups.n_group = 7;  // 160 experts do not split into 7 groups
  ds_cuda_moe_route_params topkGroup = route(1, 64, 6);
  topkGroup.n_group = 8;
  topkGroup.topk_group = 9;
  ds_cuda_moe_route_params scoring = route(1, 64, 6);
  scoring.scoring = 7;
  ds_cuda_moe_route_params noIds = route(1, 64, 6);
  noIds.ids = 0;
  const Bad cases[] = {{route(0, 64, 6), "num_tokens"},   {route(1, 513, 6), "num_experts"},
                       {route(1, 64, 17), "top_k"},       {route(1, 4, 6), "top_k"},
                       {groups, "n_group"},                {topkGroup, "topk_group"},
                       {scoring, "scoring"},               {noIds, "ids"}};
  for (const Bad& b : cases) {
    ds_cuda_moe_route_params p = b.p;
    const char* e = ds_cuda_plan_moe_route(&p, &plan);
    ASSERT_NE(e, nullptr) << b.field;
    EXPECT_NE(std::string(e).find(b.field), std::string::npos) << e;
    EXPECT_EQ(plan.num_launches, 0);
  }
}

ds_cuda_moe_permute_params permute(int T, int K, int L) {
  ds_cuda_moe_permute_params p{};
  p.ids = p.weights = p.expert_start = p.active = p.row_token = p.row_weight = p.slot_row = kPtr;
  p.num_tokens = T;
  p.top_k = K;
  p.num_local = L;
  return p;
}

TEST(CudaMoeLaunch, PermuteIsOneBlock) {
  ds_cuda_plan plan;
  ds_cuda_moe_permute_params p = permute(4096, 8, 32);
  p.first_expert = 224;  // rank 7 of --ep 8 on 256 experts
  ASSERT_EQ(ds_cuda_plan_moe_permute(&p, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_moe_permute");
  EXPECT_EQ(plan.launches[0].grid[0], 1u);
  EXPECT_EQ(plan.launches[0].block[0], 1024u);
  EXPECT_NE(ds_cuda_plan_moe_permute(&(p = permute(1, 8, 257)), &plan), nullptr);  // > 256 local
  EXPECT_NE(ds_cuda_plan_moe_permute(&(p = permute(1, 17, 8)), &plan), nullptr);
  p = permute(4, 2, 8);
  p.slot_row = 0;
  EXPECT_NE(ds_cuda_plan_moe_permute(&p, &plan), nullptr);
  p = permute(4, 2, 8);
  p.first_expert = -1;
  EXPECT_NE(ds_cuda_plan_moe_permute(&p, &plan), nullptr);
}

ds_cuda_moe_gemv_params gemv(int N, int K, int w, int a, bool swiglu) {
  ds_cuda_moe_gemv_params p{};
  p.x = p.w = p.y = p.expert_start = p.active = p.row_token = kPtr;
  if (swiglu) p.w2 = kPtr;
  if (w == DS_CUDA_FP8_E4M3) p.w_scale = p.w2_scale = kPtr;
  if (w == DS_CUDA_FP8_E4M3 && !swiglu) p.w2_scale = 0;
  p.N = N;
  p.K = K;
  p.x_stride = K;
  p.y_stride = N;
  p.num_local = 256;
  p.max_rows = 8;
  p.gather = swiglu;
  p.swiglu = swiglu;
  p.act_dtype = a;
  p.weight_dtype = w;
  return p;
}

TEST(CudaMoeLaunch, ExpertGemvPicksItsKernelAndBoundsTheGrid) {
  ds_cuda_plan plan;
  // DeepSeek-V3 decode, one token: gate/up 2048 x 7168, down 7168 x 2048, FP8, bf16 activations.
  ds_cuda_moe_gemv_params up = gemv(2048, 7168, DS_CUDA_FP8_E4M3, DS_CUDA_BF16, true);
  ASSERT_EQ(ds_cuda_plan_moe_gemv(&up, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_moe_gemv_wfp8_abf16_swiglu");
  EXPECT_EQ(plan.launches[0].grid[0], 256u);  // 8 columns per block
  EXPECT_EQ(plan.launches[0].grid[1], 8u);    // at most T * top_k experts have rows
  ds_cuda_moe_gemv_params down = gemv(7168, 2048, DS_CUDA_FP8_E4M3, DS_CUDA_BF16, false);
  down.max_rows = 4096 * 8;  // prefill: every local expert may have rows
  ASSERT_EQ(ds_cuda_plan_moe_gemv(&down, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_moe_gemv_wfp8_abf16_plain");
  EXPECT_EQ(plan.launches[0].grid[1], 256u);
  for (int w : {int{DS_CUDA_BF16}, int{DS_CUDA_FP8_E4M3}})
    for (int a : {int{DS_CUDA_BF16}, int{DS_CUDA_F32}})
      for (bool s : {false, true}) {
        ds_cuda_moe_gemv_params p = gemv(64, 128, w, a, s);
        ASSERT_EQ(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);
        EXPECT_TRUE(isSymbol(plan.launches[0].symbol)) << plan.launches[0].symbol;
      }
}

TEST(CudaMoeLaunch, ExpertGemvRefusals) {
  ds_cuda_plan plan;
  ds_cuda_moe_gemv_params p = gemv(64, 120, DS_CUDA_BF16, DS_CUDA_BF16, false);
  EXPECT_NE(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);  // K % 16
  p = gemv(64, 128, DS_CUDA_F32, DS_CUDA_F32, false);
  EXPECT_NE(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);  // f32 expert weights are not built
  p = gemv(64, 128, DS_CUDA_FP8_E4M3, DS_CUDA_BF16, true);
  p.w2_scale = 0;
  EXPECT_NE(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);  // FP8 without its scales
  p = gemv(64, 128, DS_CUDA_BF16, DS_CUDA_BF16, false);
  p.w_scale = kPtr;
  EXPECT_NE(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);  // scales for bf16 weights
  p = gemv(64, 128, DS_CUDA_BF16, DS_CUDA_BF16, true);
  p.w2 = 0;
  EXPECT_NE(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);
  p = gemv(64, 128, DS_CUDA_BF16, DS_CUDA_BF16, false);
  p.w = kPtr + 8;
  EXPECT_NE(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);  // 16-byte alignment
  p = gemv(64, 128, DS_CUDA_BF16, DS_CUDA_BF16, false);
  p.x_stride = 132;
  EXPECT_NE(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);  // rows not 16-byte aligned
  p = gemv(64, 128, DS_CUDA_BF16, DS_CUDA_BF16, true);
  p.row_token = 0;
  EXPECT_NE(ds_cuda_plan_moe_gemv(&p, &plan), nullptr);  // gather needs row_token
}

TEST(CudaMoeLaunch, CombineAndWorkspace) {
  ds_cuda_plan plan;
  ds_cuda_moe_combine_params c{};
  c.y = c.ids = c.weights = c.slot_row = c.out = kPtr;
  c.num_tokens = 9;
  c.top_k = 8;
  c.hidden = 7168;
  c.dtype = DS_CUDA_BF16;
  ASSERT_EQ(ds_cuda_plan_moe_combine(&c, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_moe_combine_bf16");
  EXPECT_EQ(plan.launches[0].grid[0], 9u);
  c.top_k = 17;
  EXPECT_NE(ds_cuda_plan_moe_combine(&c, &plan), nullptr);

  ds_cuda_moe_workspace ws;
  // 9 tokens of DeepSeek-V3 on one rank of --ep 8: 256 experts routed, 32 local, bf16.
  ASSERT_EQ(ds_cuda_moe_workspace_layout(9, 256, 8, 32, 2048, 7168, DS_CUDA_BF16, &ws), nullptr);
  const uint64_t regions[] = {ws.logits, ws.weights, ws.ids, ws.expert_start, ws.active,
                              ws.row_token, ws.row_weight, ws.slot_row, ws.h, ws.y};
  const uint64_t sizes[] = {9 * 256 * 4, 72 * 4, 72 * 4, 33 * 4, 33 * 4,
                            72 * 4, 72 * 4, 72 * 4, 72 * 2048 * 2, 72 * 7168 * 2};
  for (size_t i = 0; i < std::size(regions); ++i) {
    EXPECT_EQ(regions[i] % 256, 0u) << i;
    const uint64_t end = i + 1 < std::size(regions) ? regions[i + 1] : ws.total_bytes;
    EXPECT_GE(end, regions[i] + sizes[i]) << "region " << i << " overlaps the next";
    EXPECT_LT(end, regions[i] + sizes[i] + 256) << "region " << i << " wastes space";
  }
  EXPECT_NE(ds_cuda_moe_workspace_layout(0, 256, 8, 32, 2048, 7168, DS_CUDA_BF16, &ws), nullptr);
  EXPECT_NE(ds_cuda_moe_workspace_layout(1 << 28, 256, 8, 32, 2048, 7168, DS_CUDA_BF16, &ws),
            nullptr);  // T * top_k past 2^30
}

}  // namespace

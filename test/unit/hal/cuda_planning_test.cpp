// Host-side logic of the CUDA device that needs no GPU (docs/cuda.md): code-object selection per
// compute capability, the memory budget split, graph batch buckets and decode padding, and the
// weight upload plan.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "hal/cuda/cuda_budget.h"
#include "hal/cuda/cuda_code_select.h"
#include "hal/cuda/cuda_graphs.h"
#include "hal/cuda/cuda_upload.h"

namespace ds::hal::cuda {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(CudaArch, ParsesSmComputeAndVariants) {
  auto a = parseCudaArch("sm_90a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->major, 9);
  EXPECT_EQ(a->minor, 0);
  EXPECT_EQ(a->variant, 'a');
  EXPECT_FALSE(a->ptx);
  auto b = parseCudaArch("sm_100a");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->major, 10);
  EXPECT_EQ(b->minor, 0);
  auto c = parseCudaArch("compute_86");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->ptx);
  EXPECT_EQ(cudaArchName(*c), "compute_86");
  EXPECT_EQ(cudaArchName(*a), "sm_90a");
  for (const char* bad : {"host", "sm_9", "sm_90b", "sm_", "compute_", "sm_1000", "sm_09", "sm_90a "})
    EXPECT_FALSE(parseCudaArch(bad)) << bad;
  for (const char* t : {"sm_80", "sm_86", "sm_89", "sm_90a", "sm_100a"}) EXPECT_TRUE(isCudaTarget(t)) << t;
  EXPECT_FALSE(isCudaTarget("host"));
  EXPECT_FALSE(isCudaTarget("compute_90"));  // PTX is a code object, not an artifact target
}

TEST(CudaArch, CompatibilityRules) {
  EXPECT_TRUE(runsOn(*parseCudaArch("sm_80"), 8, 6));    // same major, higher minor
  EXPECT_FALSE(runsOn(*parseCudaArch("sm_86"), 8, 0));   // never a lower minor
  EXPECT_FALSE(runsOn(*parseCudaArch("sm_80"), 9, 0));   // never another major
  EXPECT_TRUE(runsOn(*parseCudaArch("sm_90a"), 9, 0));
  EXPECT_FALSE(runsOn(*parseCudaArch("sm_90a"), 10, 0));  // 'a': exactly that arch
  EXPECT_FALSE(runsOn(*parseCudaArch("sm_100a"), 10, 3));
  EXPECT_TRUE(runsOn(*parseCudaArch("sm_100f"), 10, 3));  // 'f': the family
  EXPECT_TRUE(runsOn(*parseCudaArch("compute_80"), 12, 0));  // PTX JITs forward
  EXPECT_FALSE(runsOn(*parseCudaArch("compute_90"), 8, 9));
  EXPECT_FALSE(runsOn(*parseCudaArch("compute_90a"), 10, 0));
}

TEST(CudaCodeSelect, ExactCubinFirst) {
  auto c = selectCode({"sm_80", "sm_86", "compute_80"}, 8, 6, "RTX A6000");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->index, 1);
  EXPECT_EQ(c->match, CodeMatch::ExactCubin);
  // An 'a' cubin beats a plain one of the same arch.
  auto h = selectCode({"sm_90", "sm_90a"}, 9, 0, "H100");
  ASSERT_TRUE(h.isOk());
  EXPECT_EQ(h->index, 1);
}

TEST(CudaCodeSelect, CompatibleLowerCubinWithinTheMajor) {
  auto c = selectCode({"sm_80", "sm_90a"}, 8, 9, "L40S");
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->index, 0);
  EXPECT_EQ(c->match, CodeMatch::CompatibleCubin);
  // The highest compatible minor.
  auto d = selectCode({"sm_80", "sm_86"}, 8, 9, "RTX 4090");
  ASSERT_TRUE(d.isOk());
  EXPECT_EQ(d->index, 1);
}

TEST(CudaCodeSelect, PtxWhenNoCubinRuns) {
  auto c = selectCode({"sm_80", "compute_80", "compute_90", "sm_90a"}, 10, 0, "B200");
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->index, 2);
  EXPECT_EQ(c->match, CodeMatch::PtxJit);
  // A cubin that runs beats PTX, even newer PTX.
  auto d = selectCode({"compute_89", "sm_80"}, 8, 9, "L40S");
  ASSERT_TRUE(d.isOk());
  EXPECT_EQ(d->index, 1);
}

TEST(CudaCodeSelect, NoMatchNamesBothSidesAndWhatToDo) {
  auto c = selectCode({"sm_80", "sm_90a"}, 10, 0, "NVIDIA B200");
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().code(), DS_UNAVAILABLE);
  const std::string& m = c.status().message();
  EXPECT_TRUE(contains(m, "the artifact has sm_80, sm_90a; the device is sm_100 (NVIDIA B200)")) << m;
  EXPECT_TRUE(contains(m, "'sm_90a' runs only on exactly that architecture")) << m;
  EXPECT_TRUE(contains(m, "--target sm_100a")) << m;
  auto old = selectCode({"sm_80"}, 7, 5, "T4");
  ASSERT_FALSE(old.isOk());
  EXPECT_TRUE(contains(old.status().message(), "older than every target")) << old.status().message();
  auto newer = selectCode({"sm_90a"}, 12, 0, "RTX 5090");
  ASSERT_FALSE(newer.isOk());
  EXPECT_TRUE(contains(newer.status().message(), "no target for sm_120")) << newer.status().message();
  EXPECT_EQ(compileTargetFor(8, 7), "sm_86");
  EXPECT_EQ(compileTargetFor(9, 0), "sm_90a");
}

constexpr uint64_t kGiB = 1ull << 30, kMiB = 1ull << 20;

TEST(CudaBudget, RestBecomesKvBlocks) {
  BudgetRequest r;
  r.total_bytes = 80 * kGiB;
  r.free_bytes = 79 * kGiB;
  r.fraction = 0.9;
  r.weight_bytes = 16 * kGiB;
  r.activation_bytes = 1 * kGiB;
  r.reserve_bytes = 512 * kMiB;
  r.kv_block_bytes = 2 * kMiB;
  auto b = splitMemoryBudget(r);
  ASSERT_TRUE(b.isOk()) << b.status().message();
  EXPECT_EQ(b->budget, static_cast<uint64_t>(0.9 * 80 * kGiB));
  const uint64_t left = b->budget - 16 * kGiB - 1 * kGiB - 512 * kMiB;
  EXPECT_EQ(b->kv_blocks, static_cast<int64_t>(left / (2 * kMiB)));
  EXPECT_EQ(b->kv_bytes, b->kv_blocks * 2 * kMiB);
  EXPECT_LE(b->weights + b->activations + b->reserve + b->kv_bytes, b->budget);
}

TEST(CudaBudget, WeightsAboveTheBudgetNameEveryNumber) {
  BudgetRequest r;
  r.total_bytes = 24 * kGiB;
  r.fraction = 0.5;
  r.weight_bytes = 15 * kGiB;
  r.kv_block_bytes = kMiB;
  auto b = splitMemoryBudget(r);
  ASSERT_FALSE(b.isOk());
  EXPECT_EQ(b.status().code(), DS_OUT_OF_MEMORY);
  const std::string& m = b.status().message();
  EXPECT_TRUE(contains(m, "the weights take " + std::to_string(15 * kGiB) + " bytes (15.00 GiB)")) << m;
  EXPECT_TRUE(contains(m, "0.50 x " + std::to_string(24 * kGiB))) << m;
  EXPECT_TRUE(contains(m, "= " + std::to_string(12 * kGiB) + " bytes (12.00 GiB)")) << m;
  EXPECT_TRUE(contains(m, "--gpu-memory-fraction")) << m;
}

TEST(CudaBudget, NoBlockLeftOrTooLittleFreeOrBadFraction) {
  BudgetRequest r;
  r.total_bytes = 10 * kGiB;
  r.fraction = 1.0;
  r.weight_bytes = 9 * kGiB;
  r.activation_bytes = kGiB;
  r.kv_block_bytes = kMiB;
  auto none = splitMemoryBudget(r);
  ASSERT_FALSE(none.isOk());
  EXPECT_TRUE(contains(none.status().message(), "no KV cache block fits")) << none.status().message();
  r.weight_bytes = kGiB;
  r.free_bytes = 5 * kGiB;  // another process holds half the GPU
  auto busy = splitMemoryBudget(r);
  ASSERT_FALSE(busy.isOk());
  EXPECT_TRUE(contains(busy.status().message(), "only " + std::to_string(5 * kGiB))) << busy.status().message();
  r.free_bytes = 0;
  for (double f : {0.0, -0.5, 1.5}) {
    r.fraction = f;
    auto bad = splitMemoryBudget(r);
    ASSERT_FALSE(bad.isOk());
    EXPECT_EQ(bad.status().code(), DS_INVALID_ARGUMENT);
  }
}

TEST(CudaBudget, ActivationBytesCountArenasAndOwnBuffers) {
  StepPlan p;
  p.arena_bytes_per_token = 1000;
  p.arena_bytes_per_logit_row = 400;
  BufferDesc own;
  own.row_bytes = 64;
  BufferDesc fixed;
  fixed.rows = RowSpace::Fixed;
  fixed.fixed_rows = 3;
  fixed.row_bytes = 100;
  BufferDesc in_arena;
  in_arena.arena_offset = 0;
  in_arena.row_bytes = 1 << 20;
  BufferDesc alias;
  alias.alias_of = 0;
  alias.row_bytes = 1 << 20;
  p.buffers = {own, fixed, in_arena, alias};
  auto up = [](uint64_t v) { return (v + 255) / 256 * 256; };
  EXPECT_EQ(activationBytes(p, 10), up(10000) + up(4000) + up(640) + up(300) + 4 * up(40));
  EXPECT_GT(reserveBytes(8), reserveBytes(1));
}

TEST(CudaGraphs, BucketsLikeVllm) {
  EXPECT_EQ(graphBatchBuckets(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(graphBatchBuckets(3), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(graphBatchBuckets(16), (std::vector<int64_t>{1, 2, 4, 8, 16}));
  EXPECT_EQ(graphBatchBuckets(20), (std::vector<int64_t>{1, 2, 4, 8, 16, 20}));
  EXPECT_TRUE(graphBatchBuckets(0).empty());
  const std::vector<int64_t> b = graphBatchBuckets(512);
  EXPECT_EQ(b.front(), 1);
  EXPECT_EQ(b.back(), 512);
  EXPECT_EQ(b.size(), 3u + 32u + 16u);  // 1,2,4; 8..256 by 8; 272..512 by 16
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  EXPECT_EQ(chooseBucket(b, 1), 1);
  EXPECT_EQ(chooseBucket(b, 3), 4);
  EXPECT_EQ(chooseBucket(b, 5), 8);
  EXPECT_EQ(chooseBucket(b, 17), 24);
  EXPECT_EQ(chooseBucket(b, 257), 272);
  EXPECT_EQ(chooseBucket(b, 512), 512);
  EXPECT_EQ(chooseBucket(b, 513), -1);  // eager
  EXPECT_EQ(chooseBucket(b, 0), -1);
}

DecodeInputs decodeOf3() {
  DecodeInputs s;
  s.token_ids = {5, 6, 7};
  s.positions = {10, 3, 40};
  s.token_seq = {1, 0, 2};
  s.logit_rows = {0, 1, 2};
  s.num_seqs = 3;
  s.max_blocks_per_seq = 3;
  s.block_table = {0, -1, -1, 1, 2, -1, 3, 4, 5};
  return s;
}

TEST(CudaGraphs, PadsADecodeStepToItsBucket) {
  DecodeInputs s = decodeOf3();
  ASSERT_TRUE(isPureDecode(s));
  ASSERT_TRUE(padDecodeStep(&s, 4, 5, 99).isOk());
  EXPECT_EQ(s.token_ids, (std::vector<int32_t>{5, 6, 7, 0}));
  EXPECT_EQ(s.positions, (std::vector<int32_t>{10, 3, 40, 0}));
  EXPECT_EQ(s.token_seq, (std::vector<int32_t>{1, 0, 2, 3}));
  EXPECT_EQ(s.logit_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(s.num_seqs, 4);
  EXPECT_EQ(s.max_blocks_per_seq, 5);
  EXPECT_EQ(s.block_table, (std::vector<int32_t>{0, -1, -1, -1, -1, 1, 2, -1, -1, -1,
                                                  3, 4, 5, -1, -1, 99, -1, -1, -1, -1}));
}

TEST(CudaGraphs, RefusesWhatAGraphCannotReplay) {
  DecodeInputs prefill = decodeOf3();
  prefill.token_seq = {0, 0, 1};  // two tokens of sequence 0
  EXPECT_FALSE(isPureDecode(prefill));
  EXPECT_FALSE(padDecodeStep(&prefill, 4, 5, 99).isOk());
  DecodeInputs rows = decodeOf3();
  rows.logit_rows = {2};
  EXPECT_FALSE(isPureDecode(rows));
  DecodeInputs big = decodeOf3();
  EXPECT_FALSE(padDecodeStep(&big, 2, 5, 99).isOk());
  DecodeInputs wide = decodeOf3();
  Status st = padDecodeStep(&wide, 4, 2, 99);
  EXPECT_FALSE(st.isOk());
  EXPECT_TRUE(contains(st.message(), "captured with 2")) << st.message();
}

// Runs a plan the way CudaDevice::uploadWeights does, with host memory for the device.
std::vector<uint8_t> simulate(const UploadPlan& p, const std::vector<std::vector<uint8_t>>& src) {
  std::vector<uint8_t> device(p.total_bytes, 0xEE);
  std::vector<std::vector<uint8_t>> staging(p.num_slots, std::vector<uint8_t>(p.staging_bytes, 0xCC));
  for (const UploadChunk& c : p.chunks) {
    EXPECT_LE(c.bytes, p.staging_bytes);
    uint8_t* dst = staging[c.slot].data();
    uint64_t filled = 0;
    for (const UploadPiece& q : c.pieces) {
      EXPECT_GE(q.staging_offset, filled);
      std::memset(dst + filled, 0, q.staging_offset - filled);
      std::memcpy(dst + q.staging_offset, src[q.tensor].data() + q.src_offset, q.bytes);
      filled = q.staging_offset + q.bytes;
    }
    std::memset(dst + filled, 0, c.bytes - filled);
    std::memcpy(device.data() + c.device_offset, dst, c.bytes);
  }
  return device;
}

void checkPlan(const std::vector<uint64_t>& sizes, uint64_t staging) {
  std::vector<std::vector<uint8_t>> src;
  for (size_t i = 0; i < sizes.size(); ++i) {
    src.emplace_back(sizes[i]);
    for (uint64_t k = 0; k < sizes[i]; ++k) {
      const auto v = static_cast<uint8_t>(i * 31 + k * 7 + 1);
      src[i][k] = v == 0xEE ? 0x11 : v;  // 0xEE marks device bytes never written
    }
  }
  auto p = planWeightUpload(sizes, staging);
  ASSERT_TRUE(p.isOk()) << p.status().message();
  ASSERT_EQ(p->offsets.size(), sizes.size());
  uint64_t expect_chunks = (p->total_bytes + p->staging_bytes - 1) / p->staging_bytes;
  EXPECT_EQ(p->chunks.size(), expect_chunks);
  for (size_t i = 0; i < p->chunks.size(); ++i) EXPECT_EQ(p->chunks[i].slot, static_cast<int>(i % 2));
  const std::vector<uint8_t> device = simulate(*p, src);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(p->offsets[i] % 256, 0u);
    if (i) {
      EXPECT_GE(p->offsets[i], p->offsets[i - 1] + sizes[i - 1]);
    }
    EXPECT_EQ(std::memcmp(device.data() + p->offsets[i], src[i].data(), sizes[i]), 0) << "tensor " << i;
  }
  for (uint8_t b : device) EXPECT_NE(b, 0xEE);  // every byte written (gaps zero-filled)
}

TEST(CudaUpload, LayoutAndChunksCarryEveryByte) {
  checkPlan({100, 1000, 0, 300}, 512);
  checkPlan({4096}, 1024);             // one tensor over four chunks
  checkPlan({1, 2, 3, 4, 5}, 1 << 20);  // all in one chunk
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<uint64_t> sizes(1 + rng() % 12);
    for (uint64_t& s : sizes) s = rng() % 5000;
    checkPlan(sizes, 256 * (1 + rng() % 8) + rng() % 100);  // staging rounded down to 256
  }
  auto p = planWeightUpload({100, 1000, 0, 300}, 512);
  ASSERT_TRUE(p.isOk());
  EXPECT_EQ(p->offsets, (std::vector<uint64_t>{0, 256, 1280, 1280}));
  EXPECT_EQ(p->total_bytes, 1792u);
  EXPECT_TRUE(planWeightUpload({}, 512)->chunks.empty());
  EXPECT_FALSE(planWeightUpload({10}, 100).isOk());
  EXPECT_FALSE(planWeightUpload({10}, 1024, 0).isOk());
}

}  // namespace
}  // namespace ds::hal::cuda

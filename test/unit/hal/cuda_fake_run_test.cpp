// Whole GPU artifacts over the fake driver (docs/cuda.md "Fake driver"): CudaExecutable::load
// resolves the kernel library and the generated entries, ModelRunner runs a prefill and a decode
// step (every launch validated by the fake against the kernel's metadata and recorded, none
// executed), a warmed-up decode step is captured as a CUDA graph and replayed, and nothing leaks.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>

#include "artifact/artifact_reader.h"
#include "ds_cuda_kernels.h"
#include "engine/engine.h"
#include "exec/model_runner.h"
#include "fake_cuda_client.h"
#include "fake_cuda_step_checks.h"
#include "hal/cuda/cuda_device.h"
#include "hal/cuda/cuda_executable.h"
#include "hal/cuda/cuda_library.h"

namespace ds::test {
namespace {

const bool kFakeDriver = pointRuntimeAtFakeDriver();

using hal::cuda::CudaDevice;
using hal::cuda::CudaExecutable;

std::string artifactPath(const std::string& name) {
  return std::string(DS_FAKE_CUDA_ARTIFACTS) + "/" + name + ".dsa";
}
bool haveFile(const std::string& path) { return std::ifstream(path).good(); }
bool startsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::vector<std::string> logNames(size_t from = 0) {
  std::vector<std::string> out;
  for (size_t i = from; i < FakeCuda::get().launch_count(); ++i) out.push_back(FakeCuda::get().launch(i).name);
  return out;
}

std::set<std::string> librarySymbols() {
  std::set<std::string> s;
  for (const char* const* p = ds_cuda_kernel_symbols(); *p; ++p) s.insert(*p);
  return s;
}

// What the library needs: the artifact and the kernel library's fatbin.
bool ready(const std::string& path, std::string* why) {
  if (!haveFile(path)) return *why = path + " was not built", false;
  if (!haveFile(hal::cuda::buildTreeLibraryPath()))
    return *why = "no kernel library fatbin (nvcc): " + hal::cuda::buildTreeLibraryPath(), false;
  return true;
}

TEST(FakeCudaExecutable, ResolvesLibraryAndGeneratedKernels) {
  ASSERT_TRUE(kFakeDriver);
  const std::string path = artifactPath("tiny-llama.sm_90a");
  std::string why;
  if (!ready(path, &why)) GTEST_SKIP() << why;
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  const FakeLive before = FakeLive::now();
  {
    hal::DeviceOptions o;
    auto dev = CudaDevice::create("sm_90a", o);
    ASSERT_TRUE(dev.isOk()) << dev.status().toString();
    FakeCuda::get().reset();
    auto exe = CudaExecutable::load(**dev, **art, *plan);
    ASSERT_TRUE(exe.isOk()) << exe.status().toString();
    EXPECT_EQ((*exe)->codeTarget(), "sm_90a");
    size_t generated = 0;
    for (size_t i = 0; i < plan->launches.size(); ++i) {
      const bool gen = plan->launches[i].code_object >= 0 && !plan->launches[i].code_symbol.empty();
      EXPECT_EQ((*exe)->entry(i) != nullptr, gen) << i;
      generated += gen;
    }
    EXPECT_GT(generated, 0u);
    EXPECT_EQ((*exe)->numGenerated(), generated);
    // One lookup per generated launch and per library symbol; both modules loaded.
    EXPECT_EQ(FakeCuda::get().call_count("cuModuleGetFunction"), generated + librarySymbols().size());
    // The artifact's module and the kernel library it embeds (ds-compile: the sm_90a cubin).
    EXPECT_EQ(FakeCuda::get().call_count("cuModuleLoadFatBinary"), 0u);
    EXPECT_EQ(FakeCuda::get().call_count("cuModuleLoadData"), 2u);
    EXPECT_EQ(FakeCuda::get().live("module"), before.modules + 2);
  }
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

// A GPU-only fat artifact (--target sm_80,sm_90a): an sm_86 device takes the sm_80 code and
// library, an H100 (9.0) the sm_90a ones, a 7.5 device neither (both sides named).
TEST(FakeCudaExecutable, FatGpuArtifactPicksItsCodePerDevice) {
  const std::string path = artifactPath("tiny-llama.sm_80_90a");
  if (!haveFile(path)) GTEST_SKIP() << path << " was not built";
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  struct Case {
    const char* cc;
    const char* code;
  };
  for (Case c : {Case{"8.6", "sm_80"}, Case{"9.0", "sm_90a"}, Case{"7.5", nullptr}}) {
    SCOPED_TRACE(c.cc);
    ::setenv("FAKE_CUDA_CC", c.cc, 1);
    (void)hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);  // the fake re-reads its environment
    auto dev = CudaDevice::create("sm_80", {});
    ASSERT_TRUE(dev.isOk()) << dev.status().toString();
    auto exe = CudaExecutable::load(**dev, **art, *plan);
    if (!c.code) {
      ASSERT_FALSE(exe.isOk());
      EXPECT_NE(exe.status().message().find("sm_80, sm_90a"), std::string::npos) << exe.status().toString();
      continue;
    }
    ASSERT_TRUE(exe.isOk()) << exe.status().toString();
    EXPECT_EQ((*exe)->codeTarget(), c.code);
    // The kernel library the device loaded: the artifact's object for the same build.
    auto lib = (*dev)->kernelLibrary(**art, "test");
    ASSERT_TRUE(lib.isOk()) << lib.status().toString();
    EXPECT_NE((*lib)->source.find(std::string("(") + c.code), std::string::npos) << (*lib)->source;
  }
  ::unsetenv("FAKE_CUDA_CC");
  (void)hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);
}

TEST(FakeCudaExecutable, KernelNamesAreChecked) {
  const std::string lib = hal::cuda::buildTreeLibraryPath();
  if (!haveFile(lib)) GTEST_SKIP() << "no kernel library fatbin: " << lib;
  std::ifstream in(lib, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto dev = CudaDevice::create("sm_90a", {});
  ASSERT_TRUE(dev.isOk());
  const hal::cuda::CudaDriver& d = (*dev)->driver();
  ASSERT_TRUE((*dev)->bind().isOk());
  hal::cuda::CUmodule m = nullptr;
  ASSERT_EQ(d.cuModuleLoadFatBinary(&m, bytes.data()), 0);
  hal::cuda::CUfunction f = nullptr;
  EXPECT_EQ(d.cuModuleGetFunction(&f, m, "ds_embed_bf16"), 0);
  int threads = 0;
  EXPECT_EQ(d.cuFuncGetAttribute(&threads, 0, f), 0);
  EXPECT_GT(threads, 0);
  for (const char* bad : {"ds_embed", "embed_bf16", "ds_embed_bf16x", "ds_nonexistent"})
    EXPECT_EQ(d.cuModuleGetFunction(&f, m, bad), 500) << bad;
  // The library's params struct is what the kernel declares: one parameter of its size.
  EXPECT_EQ(d.cuModuleGetFunction(&f, m, "ds_gemv_wbf16_abf16_m1"), 0);
  ds_cuda_gemv_params g{};
  void* args[] = {&g};
  FakeCuda::get().reset();
  ASSERT_EQ(d.cuLaunchKernel(f, 1, 1, 1, 256, 1, 1, 0, (*dev)->cuStream(), args, nullptr), 0);
  // Over the kernel's .maxntid, or over 48 KiB of shared memory without opt-in: refused.
  EXPECT_EQ(d.cuLaunchKernel(f, 1, 1, 1, 1024, 1, 1, 0, (*dev)->cuStream(), args, nullptr), 1);
  EXPECT_EQ(d.cuLaunchKernel(f, 1, 1, 1, 256, 1, 1, 64 << 10, (*dev)->cuStream(), args, nullptr), 1);
  ASSERT_EQ(FakeCuda::get().launch_count(), 1u);
  const fake_cuda_launch_t l = FakeCuda::get().launch(0);
  EXPECT_EQ(l.num_params, 1);
  EXPECT_EQ(l.param_bytes, sizeof(ds_cuda_gemv_params));
  EXPECT_EQ(d.cuModuleUnload(m), 0);
}

// ---- whole steps ------------------------------------------------------------------------------

StepBatch prefillBatch(int64_t block_size) {
  StepBatch b;
  for (int32_t t = 0; t < 5; ++t) {
    b.token_ids.push_back(t + 1);
    b.positions.push_back(t);
    b.token_seq.push_back(0);
  }
  b.logit_rows = {4};
  b.num_seqs = 1;
  b.max_blocks_per_seq = 16 / block_size + 1;
  for (int64_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_table.push_back(static_cast<int32_t>(i));
  return b;
}

StepBatch decodeBatch(int64_t block_size, int32_t position) {
  StepBatch b = prefillBatch(block_size);
  b.token_ids = {7};
  b.positions = {position};
  b.token_seq = {0};
  b.logit_rows = {0};
  return b;
}

struct RunCase {
  const char* artifact;
  const char* dtype;
};

class FakeCudaRun : public ::testing::TestWithParam<RunCase> {};

TEST_P(FakeCudaRun, PrefillDecodeAndGraphReplay) {
  const std::string path = artifactPath(GetParam().artifact);
  std::string why;
  if (!ready(path, &why)) GTEST_SKIP() << why;
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  const std::string dtype = GetParam().dtype;
  const FakeLive before = FakeLive::now();
  {
    RunnerOptions o;
    o.num_kv_blocks = 8;
    auto runner = ModelRunner::create(**art, o);
    ASSERT_TRUE(runner.isOk()) << runner.status().toString();
    const int64_t bs = (*runner)->blockSize();
    const StepBatch prefill = prefillBatch(bs);
    // The first step of a shape grows the workspace launch by launch (freeing the smaller one
    // earlier launches used: legal, the stream is drained first); the checks below look at the
    // steady state, whose launches all point into live allocations.
    ASSERT_TRUE((*runner)->step(prefill).isOk()) << FakeCuda::get().last_error();
    FakeCuda::get().reset();
    auto view = (*runner)->step(prefill);
    ASSERT_TRUE(view.isOk()) << view.status().toString() << " / fake: " << FakeCuda::get().last_error();
    {
      SCOPED_TRACE("prefill");
      checkStep(*plan, logNames(), 0, dtype.c_str(), "ds_attn_");
      // int4 artifacts: their projections run the int4 GEMVs (the lm_head stays bf16).
      int int4 = 0;
      for (const std::string& n : logNames()) int4 += startsWith(n, "ds_gemv_wi4_") || startsWith(n, "ds_gemv_any_wi4_");
      if (std::string(GetParam().artifact).find(".w4") != std::string::npos)
        EXPECT_GE(int4, 2 * 3) << "int4 GEMV launches in a prefill of a 2-layer model";
      else
        EXPECT_EQ(int4, 0);
      // FP8 artifacts: dense FP8 GEMVs, FP8 experts and FP8 kv_b, all in FP8 (FP8 KV caches: below).
      int fp8 = 0;
      for (const std::string& n : logNames())
        fp8 += n.find("fp8") != std::string::npos && !startsWith(n, "ds_kv_write_") && !startsWith(n, "ds_attn_") &&
               !startsWith(n, "ds_mla_kv_write_") && !startsWith(n, "ds_mla_attend_") && !startsWith(n, "ds_mla_prefill_");
      const std::string art_name = GetParam().artifact;
      // --kv-cache int8 / fp8 GQA artifacts: every layer writes and attends over the quantized cache.
      const bool kvq8 = art_name.find(".kvint8") != std::string::npos, kvf8 = art_name.find(".kvfp8") != std::string::npos;
      if ((kvq8 || kvf8) && plan->kv.kind == hal::KVKind::GQA) {
        const std::string c = kvq8 ? "i8_a" + dtype : "fp8_a" + dtype;
        int writes = 0, attends = 0;
        for (const std::string& n : logNames()) {
          writes += n == "ds_kv_write_" + c;
          attends += startsWith(n, "ds_attn_") && n.find("_" + c) != std::string::npos;
        }
        EXPECT_EQ(writes, plan->kv.num_layers);
        EXPECT_EQ(attends, plan->kv.num_layers);
      }
      // MLA: every layer writes its latent cache (int8 / fp8: the quantizing writer) and, this
      // step having 5 tokens of one sequence, attends with the prefill kernel, not the decode's.
      if (plan->kv.kind == hal::KVKind::MLA) {
        const std::string c = kvq8 ? "i8_a" + dtype : kvf8 ? "fp8_a" + dtype : dtype + "_a" + dtype;
        int writes = 0, prefills = 0, decodes = 0;
        for (const std::string& n : logNames()) {
          writes += n == "ds_mla_kv_write_" + (kvq8 || kvf8 ? c : dtype);
          prefills += n == "ds_mla_prefill_" + c;
          decodes += startsWith(n, "ds_mla_attend_");
        }
        EXPECT_EQ(writes, plan->kv.num_layers);
        EXPECT_EQ(prefills, plan->kv.num_layers);
        EXPECT_EQ(decodes, 0);
      }
      int i8 = 0;
      for (const std::string& n : logNames()) i8 += startsWith(n, "ds_gemv_wi8_");
      EXPECT_EQ(i8 > 0, art_name.find(".w8") != std::string::npos) << i8 << " int8 GEMV launches";
      if (art_name.find(".fp8") != std::string::npos) {  // --quant fp8: per-channel FP8 GEMVs only
        EXPECT_GE(fp8, 2 * 3);
      } else if (art_name.find("-fp8") != std::string::npos) {
        EXPECT_GE(fp8, 4) << "FP8 launches in a prefill";
        std::set<std::string> kinds;
        for (const std::string& n : logNames())
          if (n.find("fp8") != std::string::npos) kinds.insert(n.substr(0, n.find("_w")));
        EXPECT_EQ(kinds, (std::set<std::string>{"ds_gemv", "ds_moe_gemv", "ds_mla_absorb_abf16",
                                                "ds_mla_out_abf16"}));
      } else {
        EXPECT_EQ(fp8, 0);
      }
    }
    // The logits come back through the stream: zeros (no kernel ran; activations start zeroed).
    std::vector<float> staging;
    auto rows = view->host(&staging);
    ASSERT_TRUE(rows.isOk()) << rows.status().toString();
    for (int64_t i = 0; i < view->vocab; ++i) ASSERT_EQ((*rows)[i], 0.0f);
    const size_t prefill_launches = FakeCuda::get().launch_count();

    // Decode steps replay CUDA graphs (docs/cuda.md "CUDA graphs"): the first of a bucket runs
    // eagerly and is recorded (the capture launches nothing), the next one replays the record.
    auto* dev = static_cast<CudaDevice*>(view->device);
    const StepBatch decode = decodeBatch(bs, 5);
    view = (*runner)->step(decode);
    ASSERT_TRUE(view.isOk()) << view.status().toString() << " / fake: " << FakeCuda::get().last_error();
    const std::vector<std::string> eager = logNames(prefill_launches);
    for (size_t i = prefill_launches; i < FakeCuda::get().launch_count(); ++i)
      EXPECT_EQ(FakeCuda::get().launch(i).from_graph, 0);
    EXPECT_TRUE(dev->hasGraph(1));
    EXPECT_EQ(FakeCuda::get().live("graph_exec"), before.execs + 1);
    const size_t at_replay = FakeCuda::get().launch_count();
    view = (*runner)->step(decodeBatch(bs, 6));
    ASSERT_TRUE(view.isOk()) << view.status().toString() << " / fake: " << FakeCuda::get().last_error();
    EXPECT_EQ(logNames(at_replay), eager);
    {
      // The replayed record: recorded after the eager step sized the buffers (the eager step's
      // early launches may name a workspace it then grew), so every range is live.
      SCOPED_TRACE("decode replay");
      checkStep(*plan, logNames(at_replay), at_replay, dtype.c_str(), "ds_attn_small_");
      if (plan->kv.kind == hal::KVKind::MLA) {  // one token: the split-KV decode kernels
        const std::string art_name = GetParam().artifact;
        const std::string kv = art_name.find(".kvint8") != std::string::npos  ? "i8_a" + dtype
                               : art_name.find(".kvfp8") != std::string::npos ? "fp8_a" + dtype
                                                                               : dtype;
        int attends = 0, prefills = 0;
        for (const std::string& n : logNames(at_replay)) {
          attends += n == "ds_mla_attend_" + kv;
          prefills += startsWith(n, "ds_mla_prefill_");
        }
        EXPECT_EQ(attends, plan->kv.num_layers);
        EXPECT_EQ(prefills, 0);
      }
    }
    for (size_t i = at_replay; i < FakeCuda::get().launch_count(); ++i)
      EXPECT_EQ(FakeCuda::get().launch(i).from_graph, 1);
    // A prefill step between replays stays eager.
    const size_t at_prefill = FakeCuda::get().launch_count();
    ASSERT_TRUE((*runner)->step(prefill).isOk());
    for (size_t i = at_prefill; i < FakeCuda::get().launch_count(); ++i)
      EXPECT_EQ(FakeCuda::get().launch(i).from_graph, 0);
  }
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

INSTANTIATE_TEST_SUITE_P(Artifacts, FakeCudaRun,
                         ::testing::Values(RunCase{"tiny-llama.sm_90a", "bf16"},
                                           RunCase{"tiny-llama.sm_90a.f32", "f32"},
                                           RunCase{"tiny-llama.sm_90a.w4g64", "bf16"},
                                           RunCase{"tiny-llama.sm_90a.w4g128a", "bf16"},
                                           RunCase{"tiny-llama.sm_90a.w8", "bf16"},
                                           RunCase{"tiny-llama.sm_90a.fp8", "bf16"},
                                           RunCase{"tiny-deepseek-v2.sm_90a", "bf16"},
                                           RunCase{"tiny-deepseek-v3.sm_90a", "bf16"},
                                           RunCase{"tiny-deepseek-v3-fp8.sm_90a", "bf16"},
                                           RunCase{"tiny-deepseek-v2.sm_90a.kvint8", "bf16"},
                                           RunCase{"tiny-deepseek-v2.sm_90a.kvfp8", "bf16"},
                                           RunCase{"tiny-deepseek-v3.sm_90a.kvfp8", "bf16"},
                                           RunCase{"tiny-llama.sm_90a.kvint8", "bf16"},
                                           RunCase{"tiny-llama.sm_90a.kvfp8", "bf16"},
                                           RunCase{"tiny-qwen2.sm_90a", "bf16"},
                                           RunCase{"stories260K.sm_90a", "bf16"},
                                           RunCase{"stories260K.sm_90a.f32", "f32"}),
                         [](const auto& info) {
                           std::string n = info.param.artifact;
                           for (char& c : n)
                             if (c == '-' || c == '.') c = '_';
                           return n;
                         });

// Three sequences decode as the bucket of 4 (docs/cuda.md "CUDA graphs"): the pad sequence writes
// its K/V into the scratch block after the engine's blocks, block tables are as wide as the
// model's context, the launches see 4 tokens, and the first three logit rows are the batch's.
TEST(FakeCudaGraphs, PaddedBucketAndEnforceEager) {
  const std::string path = artifactPath("tiny-llama.sm_90a");
  std::string why;
  if (!ready(path, &why)) GTEST_SKIP() << why;
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  const FakeLive before = FakeLive::now();
  for (bool eager : {false, true}) {
    SCOPED_TRACE(eager ? "enforce_eager" : "graphs");
    RunnerOptions o;
    o.num_kv_blocks = 8;
    o.enforce_eager = eager;
    o.max_model_len = 64;  // 4 blocks of 16: the graphs' table width
    auto runner = ModelRunner::create(**art, o);
    ASSERT_TRUE(runner.isOk()) << runner.status().toString();
    const int64_t bs = (*runner)->blockSize();
    ASSERT_EQ(bs, 16);
    StepBatch b;
    for (int32_t q = 0; q < 3; ++q) {
      b.token_ids.push_back(q + 3);
      b.positions.push_back(17 + q);  // the second block of each sequence
      b.token_seq.push_back(q);
      b.logit_rows.push_back(q);
      b.block_table.push_back(2 * q);
      b.block_table.push_back(2 * q + 1);
    }
    b.num_seqs = 3;
    b.max_blocks_per_seq = 2;
    for (int round = 0; round < 2; ++round) {
      FakeCuda::get().reset();
      auto view = (*runner)->step(b);
      ASSERT_TRUE(view.isOk()) << view.status().toString() << " / fake: " << FakeCuda::get().last_error();
      EXPECT_EQ(view->rows, 3);
      bool saw_write = false;
      for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i) {
        const fake_cuda_launch_t l = FakeCuda::get().launch(i);
        EXPECT_EQ(l.from_graph, !eager && round == 1 ? 1 : 0) << l.name;
        if (std::string(l.name) != "ds_kv_write_bf16" || saw_write) continue;
        saw_write = true;
        ds_cuda_kv_write_params w;
        ASSERT_EQ(l.param_bytes, sizeof w);
        std::memcpy(&w, l.params, sizeof w);
        if (eager) {
          EXPECT_EQ(w.num_tokens, 3);
          EXPECT_EQ(w.kv.max_blocks_per_seq, 2);
          continue;
        }
        EXPECT_EQ(w.num_tokens, 4);
        EXPECT_EQ(w.kv.max_blocks_per_seq, 4);
        EXPECT_EQ(w.kv.num_blocks, 9);  // 8 for the engine + the scratch block
        // The table on the device (the fake's device memory is host memory).
        ASSERT_TRUE(FakeCuda::get().is_device_range(w.kv.block_table, 16 * 4));
        const auto* table = reinterpret_cast<const int32_t*>(w.kv.block_table);
        EXPECT_EQ(std::vector<int32_t>(table, table + 16),
                  (std::vector<int32_t>{0, 1, -1, -1, 2, 3, -1, -1, 4, 5, -1, -1, 8, -1, -1, -1}));
        const auto* pos = reinterpret_cast<const int32_t*>(w.kv.positions);
        EXPECT_EQ(std::vector<int32_t>(pos, pos + 4), (std::vector<int32_t>{17, 18, 19, 0}));
      }
      EXPECT_TRUE(saw_write);
    }
  }
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

// Greedy requests take their tokens from the device's argmax (R ids copied back, not R x vocab
// logits); a sampled request in the step sends the rows to the host sampler instead, and so
// does a greedy one that wants logprobs or has a penalty (they read the host logits).
TEST(FakeCudaEngine, GreedyRowsUseTheDeviceArgmax) {
  const std::string path = artifactPath("tiny-llama.sm_90a");
  std::string why;
  if (!ready(path, &why)) GTEST_SKIP() << why;
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  for (int variant = 0; variant < 5; ++variant) {
    SCOPED_TRACE(variant);
    const float temperature = variant == 1 ? 0.7f : 0.0f;
    const bool device = variant == 0;
    EngineOptions eo;
    eo.kv_cache_bytes = 1 << 20;
    auto e = Engine::create(**art, eo);
    ASSERT_TRUE(e.isOk()) << e.status().toString();
    GenerationRequest r;
    r.prompt = {1, 403, 407};
    r.max_new_tokens = 3;
    r.sampling.temperature = temperature;
    if (variant == 2) r.sampling.logprobs = 2;
    if (variant == 3) r.sampling.presence_penalty = 0.5f;
    if (variant == 4) r.sampling.frequency_penalty = 0.5f;
    ASSERT_TRUE((*e)->submit(r).isOk());
    ASSERT_TRUE((*e)->submit(r).isOk());
    FakeCuda::get().reset();
    std::vector<TokenEvent> events;
    while ((*e)->hasWork()) ASSERT_TRUE((*e)->step(&events).isOk()) << FakeCuda::get().last_error();
    size_t argmax = 0;
    for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i)
      if (std::string(FakeCuda::get().launch(i).name) == "ds_argmax_f32") {
        ++argmax;
        ds_cuda_argmax_params p;
        ASSERT_EQ(FakeCuda::get().launch(i).param_bytes, sizeof p);
        std::memcpy(&p, FakeCuda::get().launch(i).params, sizeof p);
        EXPECT_EQ(p.rows, 2);  // both requests' rows, every step
        EXPECT_EQ(p.vocab, p.x_stride);
      }
    EXPECT_EQ(argmax, device ? 3u : 0u);
    EXPECT_EQ(events.size(), 6u);
    for (const TokenEvent& ev : events) EXPECT_EQ(ev.logprobs.has_value(), variant == 2);
  }
}

// kv_cache_bytes = 0: the GPU's budget sizes the cache (docs/cuda.md "Memory budget").
TEST(FakeCudaBudget, EngineTakesTheKvBlocksTheBudgetLeaves) {
  const std::string path = artifactPath("tiny-llama.sm_90a");
  std::string why;
  if (!ready(path, &why)) GTEST_SKIP() << why;
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto per_block = ModelRunner::kvBytesPerBlock(**art);
  ASSERT_TRUE(per_block.isOk());
  ::setenv("FAKE_CUDA_TOTAL_BYTES", std::to_string(2ull << 30).c_str(), 1);
  (void)hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);  // the fake re-reads its environment
  for (double fraction : {0.5, 0.9}) {
    EngineOptions eo;
    eo.gpu_memory_fraction = fraction;
    auto e = Engine::create(**art, eo);
    ASSERT_TRUE(e.isOk()) << e.status().toString();
    const int64_t blocks = (*e)->kvCapacityTokens() / 16;
    // What is left of fraction x 2 GiB after the model (a few MiB) and the reserve (~400 MiB).
    const double budget = fraction * double(2ull << 30);
    EXPECT_GT(double(blocks) * double(*per_block), budget - 600.0 * (1 << 20)) << fraction;
    EXPECT_LT(double(blocks) * double(*per_block), budget) << fraction;
  }
  // An explicit size still wins.
  EngineOptions eo;
  eo.kv_cache_bytes = 7 * *per_block;
  auto e = Engine::create(**art, eo);
  ASSERT_TRUE(e.isOk()) << e.status().toString();
  EXPECT_EQ((*e)->kvCapacityTokens(), 7 * 16);
  // A budget too small for the reserve: an error naming the numbers.
  eo.kv_cache_bytes = 0;
  eo.gpu_memory_fraction = 0.05;
  e = Engine::create(**art, eo);
  EXPECT_FALSE(e.isOk());
  ::unsetenv("FAKE_CUDA_TOTAL_BYTES");
  (void)hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);
}

TEST(FakeCudaRunRefusals, ComputeCapabilityMismatchNamesBothSides) {
  const std::string path = artifactPath("tiny-llama.sm_90a");
  if (!haveFile(path)) GTEST_SKIP() << path << " was not built";
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  ::setenv("FAKE_CUDA_CC", "8.0", 1);
  (void)hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);  // the fake re-reads its environment
  const FakeLive before = FakeLive::now();
  auto runner = ModelRunner::create(**art, {});
  ::unsetenv("FAKE_CUDA_CC");
  (void)hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);
  ASSERT_FALSE(runner.isOk());
  EXPECT_EQ(runner.status().code(), DS_UNAVAILABLE);
  const std::string& m = runner.status().message();
  EXPECT_NE(m.find("the artifact has sm_90a; the device is sm_80"), std::string::npos) << m;
  EXPECT_NE(m.find("'sm_90a' runs only on exactly that architecture"), std::string::npos) << m;
  EXPECT_NE(m.find("Compile with --target sm_80"), std::string::npos) << m;
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

// cuBLASLt that loads but cannot start (here: the real libcublasLt finds no real libcuda; on a
// GPU machine: a libcublasLt.so.13 newer than the driver): the device says so once and keeps
// every GEMM on the GEMV kernels (docs/cuda.md "cuBLASLt"); the 20-row step runs.
TEST(FakeCudaRunRefusals, BlasLtThatCannotStartFallsBackToGemv) {
  const std::string path = artifactPath("tiny-llama.sm_90a");
  std::string why;
  if (!ready(path, &why)) GTEST_SKIP() << why;
  void* lt = ::dlopen("libcublasLt.so.13", RTLD_NOW | RTLD_LOCAL);
  if (!lt) lt = ::dlopen("libcublasLt.so.12", RTLD_NOW | RTLD_LOCAL);
  if (!lt) GTEST_SKIP() << "no libcublasLt on this machine";
  ::dlclose(lt);
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  const FakeLive before = FakeLive::now();
  {
    ::unsetenv("DS_CUDA_BLASLT");  // read when the device first looks for cuBLASLt
    RunnerOptions o;
    o.num_kv_blocks = 8;
    auto runner = ModelRunner::create(**art, o);
    ASSERT_TRUE(runner.isOk()) << runner.status().toString();
    const int64_t bs = (*runner)->blockSize();
    StepBatch b = prefillBatch(bs);
    b.token_ids.clear(), b.positions.clear(), b.token_seq.clear();
    for (int32_t t = 0; t < 20; ++t) b.token_ids.push_back(t + 1), b.positions.push_back(t), b.token_seq.push_back(0);
    b.logit_rows = {19};
    b.max_blocks_per_seq = 20 / bs + 1;
    b.block_table.clear();
    for (int64_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_table.push_back(static_cast<int32_t>(i));
    ASSERT_LE(b.max_blocks_per_seq, o.num_kv_blocks);
    FakeCuda::get().reset();
    auto view = (*runner)->step(b);
    ::setenv("DS_CUDA_BLASLT", "0", 1);
    ASSERT_TRUE(view.isOk()) << view.status().toString();
    auto* dev = static_cast<CudaDevice*>(view->device);
    EXPECT_EQ(dev->blasLtLibrary(), nullptr);
    EXPECT_NE(dev->blasLtNote().find("cublasLtCreate"), std::string::npos) << dev->blasLtNote();
    // Every GEMM of the 20 rows ran as GEMV chunks of 16 and 4 rows.
    size_t gemv = 0;
    for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i)
      gemv += startsWith(FakeCuda::get().launch(i).name, "ds_gemv_w");
    EXPECT_GT(gemv, 0u);
    view = (*runner)->step(b);  // and again, without asking cuBLASLt
    EXPECT_TRUE(view.isOk()) << view.status().toString();
  }
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

}  // namespace
}  // namespace ds::test

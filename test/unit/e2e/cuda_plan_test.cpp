// The GPU artifacts ds-compile writes (--target sm_90a: bf16 by default, and --dtype f32) are
// servable by the CUDA device's launch builder: every launch of every test model plans to
// library and generated kernels that exist, for a decode step and a prefill step. No GPU: the
// device addresses are made up (aligned), the plans are checked, nothing is launched.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <set>

#include "artifact/artifact_reader.h"
#include "e2e_util.h"
#include "hal/cuda/cuda_blaslt_plan.h"
#include "hal/cuda/cuda_launches.h"
#include "hal/launch.h"

namespace ds::test {
namespace {

using hal::DType;
using hal::cuda::CudaCall;
using hal::cuda::CudaLaunchPlan;
using hal::cuda::CudaLaunchView;
using hal::cuda::CudaStepView;

constexpr uint64_t kBuffers = 0x10000000, kWeights = 0x80000000, kWorkspace = 0x7000000000;

struct Step {
  std::vector<int32_t> positions, token_seq;
  int64_t num_seqs = 0, R = 0;
};

// Three sequences decoding one token each (contexts 5, 17, 40), or two prompts of 9 and 11.
Step decodeStep() { return {{4, 16, 39}, {0, 1, 2}, 3, 3}; }
Step prefillStep() {
  Step s;
  for (int i = 0; i < 9; ++i) s.positions.push_back(i), s.token_seq.push_back(0);
  for (int i = 0; i < 11; ++i) s.positions.push_back(i), s.token_seq.push_back(1);
  s.num_seqs = 2;
  s.R = 2;
  return s;
}

struct Planned {
  std::vector<std::string> symbols;  // every call's symbol, in plan order
  std::vector<CudaCall> logits;      // the logits launch's calls
  size_t gemms = 0;                  // cuBLASLt GEMMs
};

// Plans every launch of `art` for `step`, failing the test on any refusal.
Planned planAll(const artifact::Artifact& art, const Step& st, bool blaslt) {
  Planned out;
  StatusOr<hal::StepPlan> plan = hal::StepPlan::decode(art);
  EXPECT_TRUE(plan.isOk()) << plan.status().message();
  if (!plan.isOk()) return out;
  const auto* tensors = art.meta()->tensors();
  const int64_t T = static_cast<int64_t>(st.positions.size());
  CudaStepView step;
  step.T = T;
  step.R = st.R;
  step.positions = 0x1000;
  step.token_seq = 0x2000;
  step.block_table = 0x3000;
  step.seq_q_start = 0x4000;
  step.num_seqs = st.num_seqs;
  step.max_blocks_per_seq = 4;
  step.num_kv_blocks = 64;
  for (size_t t = 0; t < st.positions.size(); ++t)
    step.max_context = std::max<int64_t>(step.max_context, st.positions[t] + 1);
  std::vector<int64_t> per_seq(static_cast<size_t>(st.num_seqs), 0);
  for (int32_t s : st.token_seq) step.max_q_len = std::max<int64_t>(step.max_q_len, ++per_seq[s]);
  step.kv = &plan->kv;
  std::vector<uint64_t> layers;
  for (int64_t i = 0; i < plan->kv.num_layers; ++i) layers.push_back(0x40000000 + i * 0x1000000);
  step.kv_layers = layers.data();
  auto rowsOf = [&](const hal::BufferDesc& b) {
    return b.rows == hal::RowSpace::Tokens ? T : b.rows == hal::RowSpace::LogitRows ? st.R : b.fixed_rows;
  };
  for (size_t i = 0; i < plan->launches.size(); ++i) {
    const hal::LaunchDesc& l = plan->launches[i];
    CudaLaunchView v;
    v.launch = &l;
    auto bind = [&](int id, uint64_t* addr, const hal::BufferDesc** desc, int64_t* rows) {
      const hal::BufferDesc& b = plan->buffers[static_cast<size_t>(id)];
      *addr = kBuffers + static_cast<uint64_t>(id) * 0x100000;
      *desc = &b;
      *rows = rowsOf(b);
    };
    for (size_t k = 0; k < l.inputs.size(); ++k) bind(l.inputs[k], &v.in[k], &v.in_desc[k], &v.in_rows[k]);
    for (size_t k = 0; k < l.outputs.size(); ++k) bind(l.outputs[k], &v.out[k], &v.out_desc[k], &v.out_rows[k]);
    for (size_t k = 0; k < l.weights.size() && k < 8; ++k) {
      if (l.weights[k] < 0) continue;
      const fb::Tensor* t = tensors->Get(static_cast<uint32_t>(l.weights[k]));
      v.weights[k] = kWeights + static_cast<uint64_t>(l.weights[k]) * 0x1000000;
      v.weight_dtype[k] = static_cast<DType>(t->dtype());
      v.weight_shape[k].assign(t->shape()->begin(), t->shape()->end());
      if (t->scale() >= 0 && t->block() && t->block()->size() == 2) {  // FP8 block scales
        v.weight_block_scale[k] = kWeights + static_cast<uint64_t>(t->scale()) * 0x1000000;
        v.weight_block[k][0] = t->block()->Get(0);
        v.weight_block[k][1] = t->block()->Get(1);
      }
    }
    if (l.kind == abi::KernelKind::Rope || l.kind == abi::KernelKind::QKVRope ||
        l.kind == abi::KernelKind::MlaProject)
      v.inv_freq = 0x5000;
    v.generated = !l.code_symbol.empty();
    v.generated_threads = v.generated ? 256 : 0;
    v.workspace = kWorkspace;
    v.blaslt = blaslt;
    StatusOr<CudaLaunchPlan> p = hal::cuda::planCudaLaunch(v, step);
    EXPECT_TRUE(p.isOk()) << "plan.launches[" << i << "] (" << l.sig->name << "): " << p.status().message();
    if (!p.isOk()) continue;
    EXPECT_FALSE(p->calls.empty()) << "plan.launches[" << i << "] (" << l.sig->name << ")";
    for (const CudaCall& c : p->calls) {
      if (c.kind == hal::cuda::CudaCallKind::BlasLtGemm) {  // its descriptor must plan
        hal::cuda::BlasLtMatmulPlan lt;
        const char* e = hal::cuda::planBlasLtGemm(c.gemm, &lt);
        EXPECT_EQ(e, nullptr) << "plan.launches[" << i << "]: " << (e ? e : "");
        out.symbols.push_back("cublasLt");
        ++out.gemms;
        continue;
      }
      out.symbols.push_back(c.generated ? "generated:" + c.symbol : c.symbol);
      if (c.generated) {
        EXPECT_EQ(c.symbol, l.code_symbol);
      }
    }
    if (l.kind == abi::KernelKind::Logits) out.logits = p->calls;
  }
  return out;
}

struct GpuCase {
  const char* model;
  const char* variant;  // ".sm_90a" (bf16, the default) or ".sm_90a.f32"
};

class GpuPlan : public ::testing::TestWithParam<GpuCase> {};

TEST_P(GpuPlan, EveryLaunchHasCudaKernels) {
  const std::string name = std::string(GetParam().model) + GetParam().variant;
  if (!std::ifstream(artifactPath(name)).good())
    GTEST_SKIP() << name << ".dsa was not built (see " << name << ".err: no CUDA libdevice?)";
  auto art = openArtifact(name);
  ASSERT_NE(art, nullptr);
  const bool bf16 = std::string(GetParam().variant) == ".sm_90a";
  // Activations as asked, and the logits f32 whatever they are (the host sampler reads them).
  for (const fb::Buffer* b : *art->meta()->plan()->buffers())
    if (b->dtype() != fb::DType_I32 && b->dtype() != fb::DType_F32) {
      EXPECT_EQ(b->dtype(), fb::DType_BF16);
    }
  EXPECT_EQ(art->meta()->plan()->kv_cache()->dtype(), bf16 ? fb::DType_BF16 : fb::DType_F32);
  std::set<std::string> library;
  for (const char* const* s = ds_cuda_kernel_symbols(); *s; ++s) library.insert(*s);
  size_t generated = 0;
  for (bool blaslt : {false, true})
  for (const Step& step : {decodeStep(), prefillStep()}) {
    Planned p = planAll(*art, step, blaslt);
    ASSERT_FALSE(p.symbols.empty());
    // cuBLASLt takes the prefill's 20-row GEMMs when present, never a decode step's 3 rows.
    if (!blaslt || step.positions.size() <= 16) EXPECT_EQ(p.gemms, 0u);
    else EXPECT_GT(p.gemms, 0u);
    for (const std::string& s : p.symbols) {
      if (s == "cublasLt") continue;
      if (s.rfind("generated:", 0) == 0) {
        ++generated;
        continue;
      }
      EXPECT_TRUE(library.count(s)) << s << " is not a kernel of the library";
      static const std::set<std::string> kNoDtype = {"ds_moe_route", "ds_moe_permute", "ds_mla_combine"};
      if (s.rfind("ds_gemv_reduce_", 0) != 0 && !kNoDtype.count(s)) {  // the logits' reduce writes f32 rows
        EXPECT_NE(s.find(bf16 ? "bf16" : "f32"), std::string::npos) << s;
      }
    }
    // The logits GEMV writes f32 rows (y_f32 for a bf16 model); R = 2 or 3 rows: never cuBLASLt.
    ASSERT_FALSE(p.logits.empty());
    const CudaCall& gemv = p.logits.back();
    ASSERT_EQ(gemv.kind, hal::cuda::CudaCallKind::Kernel);
    ds_cuda_gemv_params g;
    ASSERT_EQ(gemv.params.size(), sizeof(g));
    std::memcpy(&g, gemv.params.data(), sizeof(g));
    EXPECT_EQ(g.y_f32, bf16 ? 1 : 0) << gemv.symbol;
  }
  EXPECT_GT(generated, 0u) << "the generated norms/rope/swiglu kernels serve launches";
}

INSTANTIATE_TEST_SUITE_P(Models, GpuPlan,
                         ::testing::Values(GpuCase{"stories260K", ".sm_90a"},
                                           GpuCase{"stories260K", ".sm_90a.f32"},
                                           GpuCase{"tiny-llama", ".sm_90a"},
                                           GpuCase{"tiny-llama", ".sm_90a.f32"},
                                           GpuCase{"tiny-qwen2", ".sm_90a"},
                                           GpuCase{"tiny-qwen2", ".sm_90a.f32"},
                                           // DeepSeek: MLA over the latent cache, MoE router and
                                           // experts (bf16 experts; f32 builds have none yet).
                                           GpuCase{"tiny-deepseek-v2", ".sm_90a"},
                                           GpuCase{"tiny-deepseek-v3", ".sm_90a"},
                                           // FP8 128 x 128 block-scaled weights kept in FP8.
                                           GpuCase{"tiny-deepseek-v3-fp8", ".sm_90a"}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.model) + info.param.variant;
                           for (char& c : n)
                             if (c == '-' || c == '.') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace ds::test

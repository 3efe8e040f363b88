// Generated kernels (--codegen=host, the default) against the library kernels (--codegen=none).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "e2e_util.h"
#include "hal/cpu/generated_kernels.h"
#include "exec/model_runner.h"

namespace ds::test {
namespace {

size_t generatedLaunches(const artifact::Artifact& art) {
  size_t n = 0;
  for (const fb::Launch* l : *art.meta()->plan()->launches()) n += l->code_symbol() != nullptr;
  return n;
}

struct CodegenCase {
  const char* model;
  const char* variant;  // "" or ".unfused" (standalone add, rms_norm, swiglu and rope launches)
  const char* level = "";  // "" (x86-64-v3) or ".v4" (--codegen-cpu x86-64-v4: AVX-512)
};

class Codegen : public ::testing::TestWithParam<CodegenCase> {};

TEST_P(Codegen, GeneratedKernelsMatchLibraryKernels) {
  std::string model = GetParam().model, name = model + GetParam().variant;
  auto gen = openArtifact(name + GetParam().level);
  auto lib = openArtifact(name + ".nocodegen");
  ASSERT_NE(gen, nullptr);
  ASSERT_NE(lib, nullptr);
  if (Status here = ModelRunner::checkRunsHere(*gen); !here.isOk())
    GTEST_SKIP() << here.message();  // x86-64-v4 code on a CPU without AVX-512
  if (*GetParam().level) {
    EXPECT_EQ(gen->meta()->code()->Get(0)->cpu()->str(), "x86-64-v4");
  }
  ASSERT_NE(gen->meta()->code(), nullptr);
  ASSERT_EQ(gen->meta()->code()->size(), 1u);
  EXPECT_GT(generatedLaunches(*gen), 0u);
  EXPECT_EQ(generatedLaunches(*lib), 0u);
  EXPECT_TRUE(!lib->meta()->code() || lib->meta()->code()->size() == 0);

  Golden g = loadGolden(model);
  std::vector<int32_t> tokens = g.prompts[2].prompt;
  tokens.insert(tokens.end(), g.prompts[2].generated.begin(), g.prompts[2].generated.end());
  // One prefill step of every token, and steps of 3 (ragged rows through the vector tails).
  for (int64_t chunk : {static_cast<int64_t>(tokens.size()), int64_t{3}}) {
    std::vector<float> a = teacherForcedLogits(*gen, tokens, chunk);
    std::vector<float> b = teacherForcedLogits(*lib, tokens, chunk);
    ASSERT_EQ(a.size(), b.size());
    double diff = 0, ref = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
      ref = std::max(ref, std::fabs(double(b[i])));
    }
    std::printf("%s, steps of %lld tokens: max |diff| %g, max |logit| %g\n", name.c_str(),
                static_cast<long long>(chunk), diff, ref);
    EXPECT_LE(diff, 1e-5 * ref) << "chunk " << chunk << ": max |diff| " << diff
                                << " vs max |logit| " << ref;
  }
  EXPECT_EQ(generateGreedy(*gen, {g.prompts[0].prompt, g.prompts[1].prompt}, 32),
            generateGreedy(*lib, {g.prompts[0].prompt, g.prompts[1].prompt}, 32));
  // Three kernel threads: a prefill's generated launches are split by rows over them (each call
  // on row-offset buffers); the rows come out bit for bit as one call makes them.
  const std::vector<float> one = teacherForcedLogits(*gen, tokens, static_cast<int64_t>(tokens.size()));
  const std::vector<float> three =
      teacherForcedLogits(*gen, tokens, static_cast<int64_t>(tokens.size()), true, /*num_threads=*/3);
  EXPECT_EQ(one, three);
}

INSTANTIATE_TEST_SUITE_P(Models, Codegen,
                         ::testing::Values(CodegenCase{"stories260K", ""},
                                           CodegenCase{"tiny-llama", ""},
                                           CodegenCase{"tiny-deepseek-v3", ""},
                                           CodegenCase{"tiny-llama", ".unfused"},
                                           CodegenCase{"tiny-deepseek-v3", ".unfused"},
                                           CodegenCase{"stories260K", "", ".v4"},
                                           CodegenCase{"tiny-llama", "", ".v4"},
                                           CodegenCase{"tiny-deepseek-v3", "", ".v4"},
                                           CodegenCase{"tiny-llama", ".unfused", ".v4"},
                                           CodegenCase{"tiny-deepseek-v3", ".unfused", ".v4"}),
                         [](const auto& info) {
                           std::string s = std::string(info.param.model) + info.param.variant +
                                           info.param.level;
                           for (char& c : s)
                             if (c == '-' || c == '.') c = '_';
                           return s;
                         });

// A code object that is not a loadable shared object (checksums skipped, as a 700 GB artifact's
// loader may) is a clear error from the runner, not a crash.
TEST(CodegenLoad, CorruptCodeObjectIsAClearError) {
  auto art = openArtifact("tiny-llama");
  ASSERT_NE(art, nullptr);
  ASSERT_TRUE(art->meta()->code() && art->meta()->code()->size() == 1);
  uint64_t offset = art->meta()->segments()->Get(art->meta()->code()->Get(0)->segment())->offset();
  std::ifstream in(artifactPath("tiny-llama"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.substr(offset, 4), "\x7f" "ELF");
  bytes[offset + 1] = 'X';
  std::string path = ::testing::TempDir() + "/corrupt_code.dsa";
  std::ofstream(path, std::ios::binary) << bytes;
  artifact::Artifact::Options options;
  options.verify_weights = false;
  auto bad = artifact::Artifact::open(path, options);
  ASSERT_TRUE(bad.isOk()) << bad.status().toString();
  RunnerOptions ro;
  ro.num_kv_blocks = 4;
  auto runner = ModelRunner::create(*bad.value(), ro);
  ASSERT_FALSE(runner.isOk());
  EXPECT_NE(runner.status().message().find("cannot load the generated kernels"), std::string::npos)
      << runner.status().toString();
  EXPECT_NE(runner.status().message().find("corrupt_code.dsa"), std::string::npos);
  std::remove(path.c_str());
}

TEST(CodegenLoad, CpuFeaturesAreCheckedByName) {
  EXPECT_FALSE(hostHasCpuFeature("no-such-feature"));
#if defined(__x86_64__)
  EXPECT_TRUE(hostHasCpuFeature("sse2"));  // every x86-64 machine
#endif
}

}  // namespace
// A fat artifact (--target host,sm_90a) runs its host part exactly as the host build: same
// logits bit for bit, same greedy tokens; the GPU code object rides along unused on the CPU.
class FatArtifact : public ::testing::TestWithParam<const char*> {};

TEST_P(FatArtifact, HostPartMatchesTheHostBuild) {
  const std::string model = GetParam();
  if (!std::ifstream(artifactPath(model + ".fat")).good())
    GTEST_SKIP() << model << ".fat.dsa was not built (see " << model << ".fat.err: no CUDA libdevice?)";
  auto fat = openArtifact(model + ".fat");
  auto host = openArtifact(model);
  ASSERT_NE(fat, nullptr);
  ASSERT_NE(host, nullptr);
  // Host and sm_90a generated code, then the CUDA kernel library's sm_90a build when this
  // build tree has one (docs/cuda.md "Kernel library").
  const auto* code = fat->meta()->code();
  ASSERT_GE(code->size(), 2u);
  ASSERT_LE(code->size(), 3u);
  EXPECT_FALSE(code->Get(0)->library());
  EXPECT_FALSE(code->Get(1)->library());
  EXPECT_EQ(code->Get(1)->target()->str(), "sm_90a");
  if (code->size() == 3) {
    EXPECT_TRUE(code->Get(2)->library());
    EXPECT_EQ(code->Get(2)->target()->str(), "sm_90a");
  }
  EXPECT_EQ(fat->meta()->target()->name()->str(), "host,sm_90a");
  Golden g = loadGolden(model);
  std::vector<int32_t> tokens = g.prompts[1].prompt;
  tokens.insert(tokens.end(), g.prompts[1].generated.begin(), g.prompts[1].generated.end());
  for (int64_t chunk : {static_cast<int64_t>(tokens.size()), int64_t{5}})
    EXPECT_EQ(teacherForcedLogits(*fat, tokens, chunk), teacherForcedLogits(*host, tokens, chunk))
        << "steps of " << chunk;
  for (size_t p = 0; p < g.prompts.size(); ++p)
    EXPECT_EQ(generateGreedy(*fat, {g.prompts[p].prompt}, 32)[0], g.prompts[p].generated) << "prompt " << p;
}

INSTANTIATE_TEST_SUITE_P(Models, FatArtifact,
                         ::testing::Values("stories260K", "tiny-llama", "tiny-qwen2", "tiny-deepseek-v3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

}  // namespace ds::test

// The CUDA kernel library's per-target build (what ds-compile embeds) and its source at load
// (what the CUDA device reads): pure rules, no GPU (docs/cuda.md "Kernel library").
#include <gtest/gtest.h>

#include "hal/cuda/cuda_code_select.h"
#include "hal/cuda/cuda_library.h"

namespace ds::hal::cuda {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// What build_fatbin.sh writes by default (DS_CUDA_ARCHS 80;89;90a, PTX 90).
const std::vector<std::string> kBuilds = {"sm_80", "sm_89", "sm_90a", "compute_90"};

std::string chosen(const std::string& target, const std::vector<std::string>& builds = kBuilds) {
  StatusOr<CodeChoice> c = selectLibraryCode(builds, target);
  if (!c.isOk()) return "error: " + c.status().message();
  return builds[static_cast<size_t>(c->index)] + " " + codeMatchName(c->match);
}

TEST(CudaLibrarySelect, EveryCompileTarget) {
  EXPECT_EQ(chosen("sm_80"), "sm_80 exact cubin");
  EXPECT_EQ(chosen("sm_86"), "sm_80 compatible cubin");  // sm_89 does not run on 8.6
  EXPECT_EQ(chosen("sm_89"), "sm_89 exact cubin");
  EXPECT_EQ(chosen("sm_90a"), "sm_90a exact cubin");
  // sm_90a cubins run on exactly 9.0: Blackwell JIT-compiles the compute_90 PTX.
  EXPECT_EQ(chosen("sm_100a"), "compute_90 PTX compiled by the driver at load");
}

TEST(CudaLibrarySelect, ArchSpecificCubinOnlyForItsOwnArchSpecificTarget) {
  // A plain sm_90 target's code runs wherever 9.x code does; the 'a' cubin would not.
  EXPECT_EQ(chosen("sm_90"), "compute_90 PTX compiled by the driver at load");
  EXPECT_EQ(chosen("sm_90a", {"sm_90", "sm_90a"}), "sm_90a exact cubin");
  EXPECT_EQ(chosen("sm_90", {"sm_90", "sm_90a"}), "sm_90 exact cubin");
  // Only cubins built: a target none of them serves is an error naming it.
  const std::string none = chosen("sm_100a", {"sm_80", "sm_90a"});
  EXPECT_TRUE(contains(none, "error: ")) << none;
  EXPECT_TRUE(contains(none, "sm_100")) << none;
  EXPECT_EQ(chosen("sm_80", {"sm_90a", "compute_90"}).rfind("error: ", 0), 0u);
}

TEST(CudaLibrarySelect, RefusesANonGpuTarget) {
  for (const char* t : {"host", "compute_90", "sm_9", ""}) {
    StatusOr<CodeChoice> c = selectLibraryCode(kBuilds, t);
    ASSERT_FALSE(c.isOk()) << t;
    EXPECT_EQ(c.status().code(), DS_INVALID_ARGUMENT) << t;
  }
}

TEST(CudaLibrarySource, EnvironmentOverridesTheArtifact) {
  auto s = chooseLibrarySource({{3, "sm_90a"}}, "/x/k.fatbin", "/build/k.fatbin", 9, 0, "H100");
  ASSERT_TRUE(s.isOk()) << s.status().message();
  EXPECT_EQ(s->kind, LibrarySource::Kind::Environment);
  EXPECT_EQ(s->path, "/x/k.fatbin");
  EXPECT_EQ(s->describe(), "$DS_CUDA_KERNELS (/x/k.fatbin)");
}

TEST(CudaLibrarySource, ArtifactObjectChosenForTheDevice) {
  // A fat artifact's library objects (after its generated code): sm_80 at 3, sm_90a at 4.
  const std::vector<LibraryObject> objects = {{3, "sm_80"}, {4, "sm_90a"}};
  auto a = chooseLibrarySource(objects, "", "/build/k.fatbin", 8, 6, "RTX A6000");
  ASSERT_TRUE(a.isOk()) << a.status().message();
  EXPECT_EQ(a->kind, LibrarySource::Kind::Artifact);
  EXPECT_EQ(a->code_object, 3);
  EXPECT_EQ(a->match, CodeMatch::CompatibleCubin);
  EXPECT_EQ(a->describe(), "the artifact's code[3] (sm_80, compatible cubin)");
  auto h = chooseLibrarySource(objects, nullptr, "", 9, 0, "H100");
  ASSERT_TRUE(h.isOk());
  EXPECT_EQ(h->code_object, 4);
  EXPECT_EQ(h->match, CodeMatch::ExactCubin);
  // Objects that do not run on the device: an error, not the build tree.
  auto b = chooseLibrarySource(objects, nullptr, "/build/k.fatbin", 10, 0, "B200");
  ASSERT_FALSE(b.isOk());
  EXPECT_EQ(b.status().code(), DS_UNAVAILABLE);
  EXPECT_TRUE(contains(b.status().message(), "embedded in the artifact")) << b.status().message();
  EXPECT_TRUE(contains(b.status().message(), "sm_80, sm_90a")) << b.status().message();
}

TEST(CudaLibrarySource, BuildTreeLastAndErrorsNameWhatWasTried) {
  auto t = chooseLibrarySource({}, "", "/build/kernels/cuda/ds_cuda_kernels.fatbin", 9, 0, "H100");
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ(t->kind, LibrarySource::Kind::BuildTree);
  EXPECT_EQ(t->path, "/build/kernels/cuda/ds_cuda_kernels.fatbin");
  EXPECT_TRUE(contains(t->tried, "$DS_CUDA_KERNELS is unset")) << t->tried;
  EXPECT_TRUE(contains(t->tried, "embeds no kernel library")) << t->tried;
  auto none = chooseLibrarySource({}, nullptr, "", 9, 0, "H100");
  ASSERT_FALSE(none.isOk());
  EXPECT_EQ(none.status().code(), DS_UNAVAILABLE);
  const std::string& m = none.status().message();
  EXPECT_TRUE(contains(m, "$DS_CUDA_KERNELS is unset")) << m;
  EXPECT_TRUE(contains(m, "embeds no kernel library")) << m;
  EXPECT_TRUE(contains(m, "built without one")) << m;
  EXPECT_TRUE(contains(m, "--cuda-kernels")) << m;
}

}  // namespace
}  // namespace ds::hal::cuda

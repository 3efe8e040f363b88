// collectCudaLibrary over a fake build folder: the per-target choice (the runtime's rules),
// one object per distinct build, the bytes and ptxas resources carried, and the missing cases.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "compiler/artifact/CudaLibrary.h"

namespace mlir::ds {
namespace {

namespace fs = std::filesystem;

class CudaLibraryEmbedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ds_cuda_library_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  // The default build folder's files, each with distinct contents.
  void writeBuilds() {
    write("ds_cuda_kernels.sm_80.cubin", std::string("\x7f" "ELF-80", 7));
    write("ds_cuda_kernels.sm_89.cubin", std::string("\x7f" "ELF-89!", 8));
    write("ds_cuda_kernels.sm_90a.cubin", std::string("\x7f" "ELF-90a!!", 10));
    write("ds_cuda_kernels.compute_90.ptx", ".version 9.0\n.target sm_90\n");
    write("ds_cuda_kernels.fatbin", "ignored");
    write("ds_cuda_kernels.sm_75.ptx", "not PTX: an sm_ name with .ptx is ignored");
    write("ds_cuda_kernels.resources.json",
          R"([{"kernel": "ds_add_f32", "arch": "sm_80", "registers": 26, "stack_bytes": 0,
               "spill_stores": 0, "spill_loads": 0, "smem_bytes": 0, "hot": false},
              {"kernel": "ds_add_f32", "arch": "sm_90a", "registers": 28, "stack_bytes": 8,
               "spill_stores": 4, "spill_loads": 8, "smem_bytes": 128, "hot": false}])");
  }
  CudaLibraryLocation at(bool isDefault = false) { return {dir_.string(), "--cuda-kernels", isDefault}; }
  fs::path dir_;
};

TEST_F(CudaLibraryEmbedTest, OneBuildPerTargetSharedWhenTheSame) {
  writeBuilds();
  auto lib = collectCudaLibrary({"sm_80", "sm_86", "sm_89", "sm_90a", "sm_100a"}, at(),
                                {"ds_add_f32", "ds_add_bf16"});
  ASSERT_TRUE(static_cast<bool>(lib)) << llvm::toString(lib.takeError());
  // sm_86 reuses the sm_80 cubin: four objects for five targets.
  ASSERT_EQ(lib->objects.size(), 4u);
  const char* targets[] = {"sm_80", "sm_89", "sm_90a", "compute_90"};
  const size_t sizes[] = {7, 8, 10, 27};
  for (size_t i = 0; i < 4; ++i) {
    const CodeObject& o = lib->objects[i];
    EXPECT_EQ(o.target, targets[i]);
    EXPECT_TRUE(o.library);
    EXPECT_EQ(o.bytes.size(), sizes[i]) << o.target;
    EXPECT_EQ(o.format, i == 3 ? CodeFormat::Ptx : CodeFormat::Cubin) << o.target;
    EXPECT_EQ(o.symbols, (std::vector<std::string>{"ds_add_f32", "ds_add_bf16"}));
  }
  EXPECT_EQ(std::string(lib->objects[2].bytes.begin(), lib->objects[2].bytes.end()),
            std::string("\x7f" "ELF-90a!!", 10));
  ASSERT_EQ(lib->notes.size(), 5u);
  EXPECT_EQ(lib->notes[1], "sm_86: sm_80 (compatible cubin)");
  EXPECT_EQ(lib->notes[4], "sm_100a: compute_90 (PTX compiled by the driver at load)");
  EXPECT_EQ(lib->dir, dir_.string());
  // ptxas's figures of each cubin's arch; none for PTX.
  ASSERT_EQ(lib->objects[0].kernels.size(), 1u);
  EXPECT_EQ(lib->objects[0].kernels[0].registers, 26);
  ASSERT_EQ(lib->objects[2].kernels.size(), 1u);
  EXPECT_EQ(lib->objects[2].kernels[0].spill_load_bytes, 8);
  EXPECT_EQ(lib->objects[2].kernels[0].shared_bytes, 128);
  EXPECT_TRUE(lib->objects[1].kernels.empty());
  EXPECT_TRUE(lib->objects[3].kernels.empty());
}

TEST_F(CudaLibraryEmbedTest, HostOnlyEmbedsNothing) {
  writeBuilds();
  auto lib = collectCudaLibrary({}, at(), {});
  ASSERT_TRUE(static_cast<bool>(lib));
  EXPECT_TRUE(lib->objects.empty());
  EXPECT_TRUE(lib->notes.empty());
}

TEST_F(CudaLibraryEmbedTest, MissingLibraryErrorWhenExplicitWarningWhenDefault) {
  auto explicitDir = collectCudaLibrary({"sm_90a"}, at(false), {});
  ASSERT_FALSE(static_cast<bool>(explicitDir));
  const std::string msg = llvm::toString(explicitDir.takeError());
  EXPECT_NE(msg.find("no CUDA kernel library"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir_.string()), std::string::npos) << msg;
  auto byDefault = collectCudaLibrary({"sm_90a"}, at(true), {});
  ASSERT_TRUE(static_cast<bool>(byDefault));
  EXPECT_TRUE(byDefault->objects.empty());
  ASSERT_EQ(byDefault->notes.size(), 1u);
  EXPECT_NE(byDefault->notes[0].find("not embedded"), std::string::npos) << byDefault->notes[0];
  EXPECT_NE(byDefault->notes[0].find("DS_CUDA_KERNELS"), std::string::npos) << byDefault->notes[0];
  // No default folder at all (a build without nvcc): the same warning.
  auto none = collectCudaLibrary({"sm_80"}, CudaLibraryLocation{"", "the build tree", true}, {});
  ASSERT_TRUE(static_cast<bool>(none));
  EXPECT_TRUE(none->objects.empty());
}

TEST_F(CudaLibraryEmbedTest, TargetNoBuildServesIsAnError) {
  write("ds_cuda_kernels.sm_90a.cubin", "\x7f" "ELF");
  auto lib = collectCudaLibrary({"sm_90a", "sm_80"}, at(), {});
  ASSERT_FALSE(static_cast<bool>(lib));
  const std::string msg = llvm::toString(lib.takeError());
  EXPECT_NE(msg.find("none of which runs on sm_80"), std::string::npos) << msg;
}

TEST(CudaLibraryLocation, FlagThenEnvironmentThenBuildTree) {
  EXPECT_EQ(locateCudaLibrary("/a", "/b", "/c").dir, "/a");
  EXPECT_EQ(locateCudaLibrary("/a", "/b", "/c").source, "--cuda-kernels");
  EXPECT_EQ(locateCudaLibrary("", "/b", "/c").dir, "/b");
  EXPECT_FALSE(locateCudaLibrary("", "/b", "/c").isDefault);
  EXPECT_EQ(locateCudaLibrary("", "", "/c").dir, "/c");
  EXPECT_TRUE(locateCudaLibrary("", nullptr, "/c").isDefault);
}

}  // namespace
}  // namespace mlir::ds

// InputFiles and readRegularFile: FIFOs are errors, never hangs; -o can name no input, link or device.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "ingest/input_files.h"

namespace ds {
namespace {

std::string freshDir(const std::string& name) {
  const std::string dir =
      ::testing::TempDir() + "ds_input_files_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void writeFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

void expectError(const Status& s, const std::string& a, const std::string& b) {
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find(a), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(b), std::string::npos) << s.message();
}

TEST(InputFilesTest, FifoIsAnErrorNotAHang) {
  const std::string dir = freshDir("fifo");
  ASSERT_EQ(::mkfifo((dir + "/config.json").c_str(), 0644), 0);
  std::string text;
  expectError(readRegularFile(dir + "/config.json", &text), dir + "/config.json", "a FIFO");
  expectError(requireRegularFile(dir + "/config.json"), dir + "/config.json", "a FIFO");
  InputFiles inputs;
  expectError(inputs.addModelDir(dir), dir + "/config.json", "not a regular file");
  EXPECT_EQ(readRegularFile(dir + "/missing.json", &text).code(), DS_NOT_FOUND);
  expectError(readRegularFile(dir, &text), dir, "a directory");
  std::filesystem::remove_all(dir);
}

TEST(InputFilesTest, OutputMayNotBeAnInputEvenThroughLinks) {
  const std::string dir = freshDir("inputs");
  writeFile(dir + "/config.json", "{}");
  writeFile(dir + "/model.safetensors", "x");
  writeFile(dir + "/model-00002-of-00002.safetensors", "y");
  ASSERT_EQ(::link((dir + "/model.safetensors").c_str(), (dir + "/hard.dsa").c_str()), 0);
  InputFiles inputs;
  ASSERT_TRUE(inputs.addModelDir(dir).isOk());
  EXPECT_EQ(inputs.size(), 3u);
  expectError(inputs.checkOutput(dir + "/model.safetensors"), dir + "/model.safetensors",
              "never writes over its input");
  expectError(inputs.checkOutput(dir + "/model-00002-of-00002.safetensors"),
              "model-00002-of-00002.safetensors", "input");
  expectError(inputs.checkOutput(dir + "/hard.dsa"), "the same file as the input",
              dir + "/model.safetensors");
  EXPECT_TRUE(inputs.checkOutput(dir + "/new.dsa").isOk());
  writeFile(dir + "/old.dsa", "an earlier artifact");
  EXPECT_TRUE(inputs.checkOutput(dir + "/old.dsa").isOk());
  std::filesystem::remove_all(dir);
}

TEST(InputFilesTest, OutputLinksAndSpecialFilesAreRefused) {
  const std::string dir = freshDir("outputs");
  writeFile(dir + "/target.dsa", "x");
  ASSERT_EQ(::symlink("target.dsa", (dir + "/link.dsa").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir + "/fifo.dsa").c_str(), 0644), 0);
  InputFiles inputs;
  expectError(inputs.checkOutput(dir + "/link.dsa"), dir + "/link.dsa", "symbolic link");
  expectError(inputs.checkOutput(dir + "/fifo.dsa"), dir + "/fifo.dsa", "a FIFO");
  expectError(inputs.checkOutput(dir), dir, "a directory");
  expectError(inputs.checkOutput("/dev/null"), "/dev/null", "a character device");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ds

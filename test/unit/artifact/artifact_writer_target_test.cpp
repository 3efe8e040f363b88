// ArtifactWriter's target rules: what rename() would destroy (links, devices, FIFOs, directories)
// is refused, a regular file is replaced atomically, and no temp file is ever left behind.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "artifact/artifact_reader.h"
#include "artifact/artifact_writer.h"
#include "artifact_test_util.h"

namespace ds::artifact {
namespace {

using testing::freshDir;
using testing::listDir;

void expectRefused(const std::string& path, const std::string& why) {
  auto w = ArtifactWriter::create(path);
  ASSERT_FALSE(w.isOk()) << path;
  EXPECT_EQ(w.status().code(), DS_INVALID_ARGUMENT);
  EXPECT_NE(w.status().message().find(path), std::string::npos) << w.status().message();
  EXPECT_NE(w.status().message().find(why), std::string::npos) << w.status().message();
}

TEST(ArtifactWriterTarget, SymlinkIsRefusedAndKept) {
  const std::string dir = freshDir("symlink");
  ASSERT_TRUE(testing::writeTiny(dir + "/real.dsa").isOk());
  ASSERT_EQ(::symlink("real.dsa", (dir + "/link.dsa").c_str()), 0);
  expectRefused(dir + "/link.dsa", "symbolic link");
  struct stat st;
  ASSERT_EQ(::lstat((dir + "/link.dsa").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // A dangling link too: rename() would replace the link, linkat() would not follow it.
  ASSERT_EQ(::symlink("nowhere.dsa", (dir + "/dangling.dsa").c_str()), 0);
  expectRefused(dir + "/dangling.dsa", "symbolic link");
}

TEST(ArtifactWriterTarget, FifoAndDeviceAreRefused) {
  const std::string dir = freshDir("special");
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0644), 0);
  expectRefused(dir + "/fifo", "a FIFO");
  expectRefused("/dev/null", "a character device");
  std::vector<std::string> names = listDir(dir);
  EXPECT_EQ(names, std::vector<std::string>{"fifo"});
}

TEST(ArtifactWriterTarget, ReplacesARegularFileAndLeavesNoTemp) {
  const std::string dir = freshDir("replace");
  const std::string path = dir + "/a.dsa";
  ASSERT_TRUE(testing::writeTiny(path).isOk());  // nothing there: linked directly
  ASSERT_TRUE(testing::writeTiny(path).isOk());  // an artifact there: replaced by rename
  EXPECT_EQ(listDir(dir), std::vector<std::string>{"a.dsa"});
  EXPECT_TRUE(Artifact::open(path).isOk());
}

}  // namespace
}  // namespace ds::artifact

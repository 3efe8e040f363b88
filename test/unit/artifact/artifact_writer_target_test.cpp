// ArtifactWriter's target rules: what rename() would destroy (links, devices, FIFOs, directories)
// is refused, a regular file is replaced atomically, and no temp file is ever left behind.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "artifact/artifact_reader.h"
#include "artifact/format.h"
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

// The fallback where O_TMPFILE is unsupported: a named temp file, which SIGTERM removes. Run in a
// forked child that the signal kills.
TEST(ArtifactWriterTarget, NamedTempIsRemovedOnSigterm) {
  const std::string dir = freshDir("sigterm");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto w = ArtifactWriter::create(dir + "/a.dsa", ArtifactWriter::TempFile::kNamed);
    uint8_t bytes[100] = {};
    if (!w.isOk() || !(*w)->addSegmentFromMemory(bytes, sizeof(bytes)).isOk()) ::_exit(10);
    if (::access((*w)->tempPath().c_str(), F_OK) != 0) ::_exit(11);
    ::raise(SIGTERM);
    ::_exit(12);  // not reached: the signal's default action ends the process
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(listDir(dir).empty());
}

// An ignored SIGTERM (nohup, a background job) stays ignored; the destructor still cleans up.
TEST(ArtifactWriterTarget, IgnoredSigtermStaysIgnored) {
  const std::string dir = freshDir("sigign");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGTERM, SIG_IGN);
    {
      auto w = ArtifactWriter::create(dir + "/a.dsa", ArtifactWriter::TempFile::kNamed);
      if (!w.isOk()) ::_exit(10);
      ::raise(SIGTERM);
      if (::access((*w)->tempPath().c_str(), F_OK) != 0) ::_exit(11);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(listDir(dir).empty());
}

// The named temp file exists while writing (that is the fallback) and becomes the artifact.
TEST(ArtifactWriterTarget, NamedTempBecomesTheArtifact) {
  const std::string dir = freshDir("named");
  auto w = ArtifactWriter::create(dir + "/a.dsa", ArtifactWriter::TempFile::kNamed);
  ASSERT_TRUE(w.isOk());
  EXPECT_EQ(listDir(dir), std::vector<std::string>{"a.dsa.tmp." + std::to_string(::getpid())});
  flatbuffers::FlatBufferBuilder b;
  fb::FinishArtifactBuffer(b, fb::CreateArtifactDirect(b, kSchemaVersion, "t"));
  ASSERT_TRUE((*w)->finish(b.GetBufferPointer(), b.GetSize()).isOk());
  EXPECT_EQ(listDir(dir), std::vector<std::string>{"a.dsa"});
}

}  // namespace
}  // namespace ds::artifact

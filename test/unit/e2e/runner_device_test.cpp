// The runner over the device layer: generated host code loaded once per runner (not once per
// tensor-parallel rank), the logits view, and the engine's bounded memory of finished requests.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "e2e_util.h"
#include "exec/model_runner.h"

namespace ds::test {
namespace {

// Inodes of the generated-kernel shared objects mapped into this process (memfd "ds-kernels").
std::set<std::string> mappedKernelObjects() {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> inodes;
  for (std::string line; std::getline(maps, line);) {
    if (line.find("ds-kernels") == std::string::npos) continue;
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode;
    in >> range >> perms >> offset >> dev >> inode;
    inodes.insert(dev + ":" + inode);
  }
  return inodes;
}

TEST(RunnerDevice, GeneratedCodeIsLoadedOncePerRunnerNotPerRank) {
  for (const char* name : {"stories260K", "stories260K.tp4"}) {
    auto art = openArtifact(name);
    ASSERT_NE(art, nullptr) << name;
    ASSERT_TRUE(art->meta()->code() && art->meta()->code()->size() == 1) << name;
    const size_t before = mappedKernelObjects().size();
    RunnerOptions o;
    o.num_kv_blocks = 8;
    auto runner = ModelRunner::create(*art, o);
    ASSERT_TRUE(runner.isOk()) << runner.status().toString();
    EXPECT_EQ(mappedKernelObjects().size(), before + 1) << name << ": tp " << (*runner)->tpSize();
    EXPECT_GT((*runner)->numGeneratedLaunches(), 0u);
  }
}

TEST(RunnerDevice, StepReturnsAHostVisibleViewOfTheLogitRows) {
  auto art = openArtifact("tiny-llama");
  ASSERT_NE(art, nullptr);
  RunnerOptions o;
  o.num_kv_blocks = 4;
  auto runner = ModelRunner::create(*art, o);
  ASSERT_TRUE(runner.isOk());
  StepBatch b;
  b.token_ids = {1, 5, 7};
  b.positions = {0, 1, 2};
  b.token_seq = {0, 0, 0};
  b.logit_rows = {1, 2};
  b.num_seqs = 1;
  b.max_blocks_per_seq = 1;
  b.block_table = {0};
  StatusOr<LogitsView> view = (*runner)->step(b);
  ASSERT_TRUE(view.isOk()) << view.status().toString();
  EXPECT_EQ(view->rows, 2);
  EXPECT_EQ(view->vocab, (*runner)->vocabSize());
  std::vector<float> staging;
  StatusOr<const float*> host = view->host(&staging);
  ASSERT_TRUE(host.isOk());
  EXPECT_EQ(*host, view->data);  // the CPU is host-visible: no copy
  EXPECT_TRUE(staging.empty());
}

TEST(RunnerDevice, EngineForgetsTheOldestFinishedRequests) {
  auto art = openArtifact("tiny-llama");
  ASSERT_NE(art, nullptr);
  EngineOptions eo;
  eo.max_finished_kept = 2;
  auto engine = Engine::create(*art, eo);
  ASSERT_TRUE(engine.isOk());
  std::vector<int64_t> ids;
  for (int i = 0; i < 4; ++i) {
    GenerationRequest r;
    r.prompt = {1, 2 + i};
    r.max_new_tokens = 2;
    auto id = (*engine)->submit(r);
    ASSERT_TRUE(id.isOk());
    ids.push_back(*id);
  }
  std::vector<TokenEvent> ev;
  while ((*engine)->hasWork()) ASSERT_TRUE((*engine)->step(&ev).isOk());
  EXPECT_TRUE((*engine)->generated(ids[0]).empty());
  EXPECT_TRUE((*engine)->generated(ids[1]).empty());
  EXPECT_EQ((*engine)->generated(ids[2]).size(), 2u);
  EXPECT_EQ((*engine)->generated(ids[3]).size(), 2u);
}

}  // namespace
}  // namespace ds::test

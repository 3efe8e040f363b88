// RankWorkers: every rank runs once per job on its own persistent thread, with one kernel thread.
#include "exec/rank_workers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "cpu/cpu_kernels.h"

namespace ds {
namespace {

TEST(RankWorkers, RunsEachRankOncePerJobOnStableThreads) {
  for (int n : {1, 2, 4}) {
    auto w = RankWorkers::create(n, 1);
    ASSERT_TRUE(w.isOk()) << w.status().toString();
    ASSERT_EQ((*w)->size(), n);
    std::vector<std::thread::id> first(n);
    std::vector<int> runs(n, 0);
    for (int job = 0; job < 500; ++job) {
      std::vector<std::thread::id> seen(n);
      std::vector<int> threads(n, 0);
      (*w)->run([&](int r) {
        seen[r] = std::this_thread::get_id();
        threads[r] = cpu::numThreads();
        ++runs[r];
      });
      for (int r = 0; r < n; ++r) {
        if (job == 0) first[r] = seen[r];
        ASSERT_EQ(seen[r], first[r]) << "rank " << r << " moved threads at job " << job;
        ASSERT_NE(seen[r], std::this_thread::get_id());
        ASSERT_EQ(threads[r], 1);
      }
    }
    for (int r = 0; r < n; ++r) EXPECT_EQ(runs[r], 500);
    EXPECT_EQ(std::set<std::thread::id>(first.begin(), first.end()).size(), static_cast<size_t>(n));
  }
}

TEST(RankWorkers, ThreadLocalOverrideLeavesOtherThreadsAlone) {
  const int before = cpu::numThreads();
  cpu::setNumThreads(3);
  auto w = RankWorkers::create(2, 1);
  ASSERT_TRUE(w.isOk());
  std::atomic<int> inside{0};
  (*w)->run([&](int) { inside += cpu::numThreads(); });
  EXPECT_EQ(inside.load(), 2);
  EXPECT_EQ(cpu::numThreads(), 3);  // the caller keeps the process-wide setting
  cpu::setNumThreads(before);
}

TEST(RankWorkers, RejectsNoRanks) {
  EXPECT_EQ(RankWorkers::create(0, 1).status().code(), DS_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace ds

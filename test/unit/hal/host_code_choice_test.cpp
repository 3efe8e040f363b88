// The CPU device's choice among a fat host artifact's code objects (hal/cpu/host_code_choice.h),
// over made-up feature sets: the best match, the fallback, and the message when none runs.
#include "hal/cpu/host_code_choice.h"

#include <gtest/gtest.h>

#include <set>

namespace ds {
namespace {

const HostCodeCandidate kV3{0, "x86-64-v3", {"avx", "avx2", "fma"}};
const HostCodeCandidate kV4{1, "x86-64-v4", {"avx", "avx2", "fma", "avx512f", "avx512bw"}};
const HostCodeCandidate kBase{2, "x86-64", {}};

HostCodeChoice choose(const std::vector<HostCodeCandidate>& c, std::set<std::string> have) {
  return chooseHostCode(c, [&](const std::string& f) { return have.count(f) > 0; });
}

TEST(HostCodeChoice, PicksTheMostFeaturesAllPresent) {
  const std::set<std::string> avx512 = {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"};
  EXPECT_EQ(choose({kV3, kV4}, avx512).index, 1);
  EXPECT_EQ(choose({kV4, kV3}, avx512).index, 1);  // not the first listed: the best
  EXPECT_EQ(choose({kV3, kV4, kBase}, avx512).index, 1);
  EXPECT_TRUE(choose({kV3, kV4}, avx512).missing.empty());
}

TEST(HostCodeChoice, FallsBackToTheNextThatRuns) {
  EXPECT_EQ(choose({kV3, kV4}, {"avx", "avx2", "fma", "avx512f"}).index, 0);  // no avx512bw
  EXPECT_EQ(choose({kV4, kV3, kBase}, {"sse4.2"}).index, 2);
  EXPECT_EQ(choose({kBase}, {}).index, 2);
}

TEST(HostCodeChoice, EqualFeatureCountsKeepTheFirst) {
  HostCodeCandidate other{5, "other", {"avx", "avx2", "bmi"}};
  EXPECT_EQ(choose({kV3, other}, {"avx", "avx2", "fma", "bmi"}).index, 0);
  EXPECT_EQ(choose({other, kV3}, {"avx", "avx2", "fma", "bmi"}).index, 5);
}

TEST(HostCodeChoice, NoneRunsNamesWhatEachLacks) {
  HostCodeChoice c = choose({kV3, kV4}, {"avx"});
  EXPECT_EQ(c.index, -1);
  EXPECT_EQ(c.missing,
            "code object 0 (x86-64-v3) needs avx2, fma; "
            "code object 1 (x86-64-v4) needs avx2, fma, avx512f, avx512bw");
  EXPECT_EQ(choose({}, {"avx"}).index, -1);
}

}  // namespace
}  // namespace ds

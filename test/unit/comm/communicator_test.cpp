// InProcessGroup: all-reduce and all-gather against a sequential fixed-order reference, across
// 1-4 ranks on threads, repeated thousands of times, bitwise equal on every rank.
#include "comm/communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

namespace ds {
namespace {

std::unique_ptr<InProcessGroup> makeGroup(int n) {
  auto g = InProcessGroup::create(n);
  EXPECT_TRUE(g.isOk()) << g.status().toString();
  return std::move(g).value();
}

// Runs fn(rank) on one thread per rank and returns each rank's status.
std::vector<Status> onRanks(int n, const std::function<Status(int)>& fn) {
  std::vector<Status> status(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back([&, r] { status[r] = fn(r); });
  for (auto& t : threads) t.join();
  return status;
}

std::vector<float> randomVec(std::mt19937& rng, int64_t n) {
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

class CommSizes : public ::testing::TestWithParam<int> {};

TEST_P(CommSizes, AllReduceIsTheRankOrderSumOnEveryRank) {
  const int N = GetParam();
  auto group = makeGroup(N);
  ASSERT_EQ(group->size(), N);
  std::mt19937 rng(1234 + N);
  // Sizes below, at and above the rank count, uneven splits, and 1 MB.
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{64}, int64_t{1001}, int64_t{262144}}) {
    std::vector<std::vector<float>> in(N), data(N);
    for (int r = 0; r < N; ++r) data[r] = in[r] = randomVec(rng, n);
    std::vector<float> expect(n);
    for (int64_t i = 0; i < n; ++i) {
      float acc = in[0][i];
      for (int r = 1; r < N; ++r) acc += in[r][i];
      expect[i] = acc;
    }
    auto st = onRanks(N, [&](int r) { return group->rank(r)->allReduceSum(data[r].data(), n); });
    for (int r = 0; r < N; ++r) {
      ASSERT_TRUE(st[r].isOk()) << st[r].toString();
      EXPECT_TRUE(sameBits(data[r], expect)) << "rank " << r << " of " << N << ", n " << n;
    }
  }
}

TEST_P(CommSizes, AllGatherPlacesRankColumns) {
  const int N = GetParam();
  auto group = makeGroup(N);
  std::mt19937 rng(99 + N);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 5}, {7, 64}, {0, 4}}) {
    std::vector<std::vector<float>> in(N), out(N, std::vector<float>(rows * cols * N, -1.0f));
    for (int r = 0; r < N; ++r) in[r] = randomVec(rng, rows * cols);
    auto st = onRanks(N, [&](int r) {
      return group->rank(r)->allGather(in[r].data(), rows, cols, out[r].data());
    });
    for (int r = 0; r < N; ++r) {
      ASSERT_TRUE(st[r].isOk()) << st[r].toString();
      for (int64_t i = 0; i < rows; ++i)
        for (int q = 0; q < N; ++q)
          for (int64_t c = 0; c < cols; ++c)
            ASSERT_EQ(out[r][(i * N + q) * cols + c], in[q][i * cols + c])
                << "rank " << r << " row " << i << " from rank " << q << " col " << c;
    }
  }
}

// Thousands of back-to-back collectives, in place, with no synchronisation but the group's:
// a barrier or scratch-reuse race would show up as a wrong sum or a hang.
TEST_P(CommSizes, RepeatedCollectivesStayConsistent) {
  const int N = GetParam();
  auto group = makeGroup(N);
  constexpr int kSteps = 3000;
  std::vector<std::vector<float>> last(N);
  auto st = onRanks(N, [&](int r) -> Status {
    Communicator* c = group->rank(r);
    EXPECT_EQ(c->rank(), r);
    EXPECT_EQ(c->size(), N);
    std::vector<float> x(37), g(5 * N);
    for (int s = 0; s < kSteps; ++s) {
      // Rank r contributes r + s + i: the exact sum is N(N-1)/2 + N(s + i), representable.
      for (int i = 0; i < 37; ++i) x[i] = static_cast<float>(r + s + i);
      DS_RETURN_IF_ERROR(c->allReduceSum(x.data(), 37));
      for (int i = 0; i < 37; ++i) {
        const float want = static_cast<float>(N * (N - 1) / 2 + N * (s + i));
        if (x[i] != want)
          return internalError("step " + std::to_string(s) + " elem " + std::to_string(i) +
                               ": " + std::to_string(x[i]) + " != " + std::to_string(want));
      }
      // Now and then a large all-reduce (the two-barrier path) in the same stream.
      if (s % 100 == 7) {
        std::vector<float> big(70000, static_cast<float>(r + 1));
        DS_RETURN_IF_ERROR(c->allReduceSum(big.data(), 70000));
        if (big[0] != static_cast<float>(N * (N + 1) / 2) || big[69999] != big[0])
          return internalError("large all-reduce at step " + std::to_string(s));
      }
      // An all-gather between all-reduces, reading the all-reduced values.
      DS_RETURN_IF_ERROR(c->allGather(x.data() + r, 1, 5, g.data()));
      for (int q = 0; q < N; ++q)
        if (g[q * 5] != x[q]) return internalError("gather step " + std::to_string(s));
    }
    last[r] = x;
    return Status::ok();
  });
  for (int r = 0; r < N; ++r) {
    EXPECT_TRUE(st[r].isOk()) << st[r].toString();
    EXPECT_TRUE(sameBits(last[r], last[0]));
  }
}

// Same inputs twice give the same bits (no dependence on which rank finished first).
TEST_P(CommSizes, DeterministicAcrossRuns) {
  const int N = GetParam();
  auto group = makeGroup(N);
  std::mt19937 rng(7);
  std::vector<std::vector<float>> in(N);
  for (int r = 0; r < N; ++r) in[r] = randomVec(rng, 4099);
  std::vector<float> first;
  for (int run = 0; run < 20; ++run) {
    auto data = in;
    onRanks(N, [&](int r) {
      if ((r + run) % 2) std::this_thread::sleep_for(std::chrono::microseconds(50));
      return group->rank(r)->allReduceSum(data[r].data(), 4099);
    });
    for (int r = 1; r < N; ++r) ASSERT_TRUE(sameBits(data[r], data[0]));
    if (run == 0) first = data[0];
    ASSERT_TRUE(sameBits(data[0], first)) << "run " << run;
  }
}

TEST(InProcessGroup, MismatchedSizesFailOnEveryRank) {
 for (int N : {2, 3, 4}) {
  auto group = makeGroup(N);
  std::vector<std::vector<float>> data(N, std::vector<float>(16, 1.0f));
  auto st = onRanks(N, [&](int r) {
    return group->rank(r)->allReduceSum(data[r].data(), r == N - 1 ? 8 : 16);
  });
  for (int r = 0; r < N; ++r) {
    EXPECT_EQ(st[r].code(), DS_INVALID_ARGUMENT) << r;
    EXPECT_NE(st[r].message().find("allReduceSum"), std::string::npos) << st[r].message();
  }
  // The group still works afterwards.
  st = onRanks(N, [&](int r) { return group->rank(r)->allReduceSum(data[r].data(), 16); });
  for (int r = 0; r < N; ++r) {
    ASSERT_TRUE(st[r].isOk()) << st[r].toString();
    EXPECT_EQ(data[r][3], static_cast<float>(N));
  }
 }
}

// A rank that fails without joining: abort() releases the peers waiting for it, reset() makes
// the group usable again.
TEST_P(CommSizes, AbortReleasesWaitingPeers) {
  const int N = GetParam();
  auto group = makeGroup(N);
  std::vector<std::vector<float>> data(N, std::vector<float>(10, 2.0f));
  auto st = onRanks(N, [&](int r) -> Status {
    if (r == N - 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      group->abort();
      return internalError("rank failed");
    }
    return group->rank(r)->allReduceSum(data[r].data(), 10);
  });
  for (int r = 0; r + 1 < N; ++r) EXPECT_EQ(st[r].code(), DS_UNAVAILABLE) << st[r].toString();
  group->reset();
  st = onRanks(N, [&](int r) { return group->rank(r)->allReduceSum(data[r].data(), 10); });
  for (int r = 0; r < N; ++r) {
    ASSERT_TRUE(st[r].isOk()) << st[r].toString();
    EXPECT_EQ(data[r][0], 2.0f * N);
  }
}

INSTANTIATE_TEST_SUITE_P(Ranks, CommSizes, ::testing::Values(1, 2, 3, 4),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

TEST(InProcessGroup, RejectsBadSizes) {
  for (int n : {0, -1, 65}) {
    auto g = InProcessGroup::create(n);
    ASSERT_FALSE(g.isOk()) << n;
    EXPECT_EQ(g.status().code(), DS_INVALID_ARGUMENT);
  }
  auto g = InProcessGroup::create(2);
  ASSERT_TRUE(g.isOk());
  EXPECT_EQ((*g)->rank(2), nullptr);
  EXPECT_EQ((*g)->rank(-1), nullptr);
}

// Cost per all-reduce for the report: 64 floats and 1 MB, N = 2 and 4 (printed, not asserted).
TEST(InProcessGroup, AllReduceCost) {
  for (int N : {2, 4}) {
    for (int64_t n : {int64_t{64}, int64_t{262144}}) {
      auto group = makeGroup(N);
      const int iters = n == 64 ? 2000 : 100;
      std::vector<std::vector<float>> data(N, std::vector<float>(n, 1e-3f));
      const auto t0 = std::chrono::steady_clock::now();
      auto st = onRanks(N, [&](int r) -> Status {
        for (int i = 0; i < iters; ++i)
          DS_RETURN_IF_ERROR(group->rank(r)->allReduceSum(data[r].data(), n));
        return Status::ok();
      });
      const double us = std::chrono::duration<double, std::micro>(
                            std::chrono::steady_clock::now() - t0).count() / iters;
      for (const Status& s : st) ASSERT_TRUE(s.isOk()) << s.toString();
      std::printf("all-reduce N=%d n=%lld floats: %.1f us/call\n", N,
                  static_cast<long long>(n), us);
    }
  }
}

}  // namespace
}  // namespace ds

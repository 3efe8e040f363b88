// ProcessWorld (comm/process_world.h) with "processes" as threads of this test over real
// localhost sockets: the launchers' environment variables, the leader/follower handshake and its
// refusals, broadcast, and the host collectives between processes (the in-process group's bits:
// x0 + x1 + ... in rank order). Multi-process runs of whole models: test/runtime/multi_process_tp.sh.
#include "comm/process_world.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <chrono>
#include <thread>

namespace ds {
namespace {

struct ScopedEnv {
  std::vector<std::string> names;
  void set(const char* n, const char* v) {
    ::setenv(n, v, 1);
    names.push_back(n);
  }
  ~ScopedEnv() {
    for (const auto& n : names) ::unsetenv(n.c_str());
  }
};

int freePort() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

TEST(WorldConfig, ReadsTheLaunchersVariables) {
  {
    auto c = worldConfigFromEnvironment();
    ASSERT_TRUE(c.isOk());
    EXPECT_EQ(c->size, 1);  // nothing set: one process
  }
  {
    ScopedEnv e;  // mpirun
    e.set("OMPI_COMM_WORLD_SIZE", "4");
    e.set("OMPI_COMM_WORLD_RANK", "3");
    e.set("OMPI_COMM_WORLD_LOCAL_RANK", "1");
    e.set("MASTER_ADDR", "node0");
    auto c = worldConfigFromEnvironment();
    ASSERT_TRUE(c.isOk()) << c.status().toString();
    EXPECT_EQ(c->size, 4);
    EXPECT_EQ(c->rank, 3);
    EXPECT_EQ(c->local_rank, 1);
    EXPECT_EQ(c->master_addr, "node0");
    EXPECT_EQ(c->master_port, 29500);
    e.set("DS_WORLD_SIZE", "2");  // ours win
    e.set("DS_RANK", "1");
    e.set("DS_MASTER_PORT", "1234");
    c = worldConfigFromEnvironment();
    ASSERT_TRUE(c.isOk());
    EXPECT_EQ(c->size, 2);
    EXPECT_EQ(c->rank, 1);
    EXPECT_EQ(c->local_rank, 0);
    EXPECT_EQ(c->master_port, 1234);
  }
  {
    ScopedEnv e;  // torchrun without an address
    e.set("WORLD_SIZE", "2");
    e.set("RANK", "0");
    auto c = worldConfigFromEnvironment();
    ASSERT_FALSE(c.isOk());
    EXPECT_TRUE(contains(c.status().message(), "set MASTER_ADDR")) << c.status().message();
    e.set("MASTER_ADDR", "127.0.0.1");
    e.set("RANK", "2");
    c = worldConfigFromEnvironment();
    ASSERT_FALSE(c.isOk());
    EXPECT_EQ(c.status().message(), "RANK=2: expected an integer in [0, 1]");
    e.set("RANK", "1");
    e.set("MASTER_PORT", "http");
    c = worldConfigFromEnvironment();
    ASSERT_FALSE(c.isOk());
    EXPECT_EQ(c.status().message(), "MASTER_PORT=http: expected an integer in [1, 65535]");
  }
}

WorldConfig config(int size, int rank, int port, double timeout = 20) {
  WorldConfig c;
  c.size = size;
  c.rank = rank;
  c.master_addr = "127.0.0.1";
  c.master_port = port;
  c.timeout_s = timeout;
  return c;
}

// Runs fn(world of rank r) for every rank of a world of n on threads; the followers may start
// first (they retry until the leader listens).
void world(int n, const std::function<void(ProcessWorld&)>& fn) {
  const int port = freePort();
  std::vector<std::thread> t;
  for (int r = n - 1; r >= 0; --r)
    t.emplace_back([=] {
      auto w = ProcessWorld::connect(config(n, r, port));
      ASSERT_TRUE(w.isOk()) << "rank " << r << ": " << w.status().toString();
      fn(**w);
    });
  for (auto& x : t) x.join();
}

TEST(ProcessWorld, BroadcastAndHostCollectives) {
  for (int n : {2, 3, 4}) {
    std::vector<std::vector<float>> sums(n), gathered(n);
    std::vector<std::vector<float>> inputs(n);
    for (int r = 0; r < n; ++r) {
      std::mt19937 rng(r + 1);
      std::normal_distribution<float> d(0.0f, 3.0f);
      for (int i = 0; i < 1000; ++i) inputs[r].push_back(d(rng));
    }
    world(n, [&](ProcessWorld& w) {
      std::vector<uint8_t> msg;
      if (w.rank() == 0) msg = {1, 2, 3, 5, 8};
      ASSERT_TRUE(w.broadcast(&msg).isOk());
      EXPECT_EQ(msg, (std::vector<uint8_t>{1, 2, 3, 5, 8}));
      auto group = createProcessGroup(w);
      ASSERT_TRUE(group.isOk());
      Communicator* c = (*group)->rank(0);
      ASSERT_EQ(c->rank(), w.rank());
      ASSERT_EQ(c->size(), n);
      std::vector<float> x = inputs[w.rank()];
      ASSERT_TRUE(c->allReduceSum(x.data(), 1000).isOk());
      sums[w.rank()] = x;
      std::vector<float> out(2 * 3 * n);
      ASSERT_TRUE(c->allGather(inputs[w.rank()].data(), 2, 3, out.data()).isOk());
      gathered[w.rank()] = out;
    });
    for (int r = 0; r < n; ++r) {
      for (int i = 0; i < 1000; ++i) {
        float ref = inputs[0][i];
        for (int p = 1; p < n; ++p) ref += inputs[p][i];  // the in-process group's order
        ASSERT_EQ(std::memcmp(&sums[r][i], &ref, 4), 0) << n << " ranks, rank " << r << " element " << i;
      }
      for (int row = 0; row < 2; ++row)
        for (int p = 0; p < n; ++p)
          for (int j = 0; j < 3; ++j) ASSERT_EQ(gathered[r][row * 3 * n + p * 3 + j], inputs[p][row * 3 + j]);
    }
  }
}

TEST(ProcessWorld, RefusalsNameTheProblem) {
  // A follower told another world size is refused by the leader, by name.
  const int port = freePort();
  Status leader;
  std::thread t([&] {
    auto w = ProcessWorld::connect(config(2, 0, port, 10));
    leader = w.isOk() ? Status::ok() : w.status();
  });
  auto f = ProcessWorld::connect(config(3, 1, port, 10));
  t.join();
  ASSERT_FALSE(leader.isOk());
  EXPECT_TRUE(contains(leader.message(), "follower rank 1 was told a world of 3 processes, the leader 2")) << leader.message();
  // Nobody listening: the follower gives up after its timeout, naming the address.
  auto lone = ProcessWorld::connect(config(2, 1, freePort(), 1));
  ASSERT_FALSE(lone.isOk());
  EXPECT_TRUE(contains(lone.status().message(), "could not reach the leader at 127.0.0.1:")) << lone.status().message();
  // A leader whose followers never come.
  auto alone = ProcessWorld::connect(config(3, 0, freePort(), 1));
  ASSERT_FALSE(alone.isOk());
  EXPECT_TRUE(contains(alone.status().message(), "waited for 2 of 2 followers")) << alone.status().message();
}

TEST(ProcessWorld, StrayConnectionsIdleLeadersAndTheEnd) {
  // A connection that is not a follower (a port probe) does not stop the handshake; a follower
  // between steps waits for its leader however long it idles (past timeout_s); the last message
  // reaches every follower still there when one has gone.
  const int port = freePort();
  std::thread probe([&] {
    for (int i = 0; i < 100; ++i) {  // until the leader listens
      const int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(port));
      const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(s);
      if (ok) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::vector<std::string> got(3);
  std::thread leader([&] {
    auto w = ProcessWorld::connect(config(3, 0, port, 1));
    ASSERT_TRUE(w.isOk()) << w.status().toString();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // idle past timeout_s = 1
    std::vector<uint8_t> step = {'s', 't', 'e', 'p'};
    ASSERT_TRUE((*w)->broadcast(&step).isOk());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));   // follower 1 has gone by now
    (*w)->tellEveryone({'e', 'n', 'd'});
  });
  probe.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the probe is accepted first
  std::vector<std::thread> followers;
  for (int r = 1; r <= 2; ++r)
    followers.emplace_back([&, r] {
      auto w = ProcessWorld::connect(config(3, r, port, 1));
      ASSERT_TRUE(w.isOk()) << "rank " << r << ": " << w.status().toString();
      std::vector<uint8_t> m;
      ASSERT_TRUE((*w)->broadcast(&m, /*idle=*/true).isOk());
      got[r] = std::string(m.begin(), m.end());
      if (r == 1) return;  // leaves: its socket closes
      ASSERT_TRUE((*w)->broadcast(&m, /*idle=*/true).isOk());
      got[r] += "+" + std::string(m.begin(), m.end());
    });
  for (auto& f : followers) f.join();
  leader.join();
  EXPECT_EQ(got[1], "step");
  EXPECT_EQ(got[2], "step+end");
}

}  // namespace
}  // namespace ds

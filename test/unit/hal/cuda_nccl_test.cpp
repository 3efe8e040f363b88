// GPU tensor parallelism's host side over the fake driver and the fake NCCL (fake_nccl/): the
// NCCL table loads by dlopen, an NcclGroup joins one communicator per GPU (each with its device
// current, one device per rank), exchanges move the bytes the Communicator contract says,
// a failed init or an abort leaves nothing behind and reset() rejoins; whole tensor-parallel
// GPU artifacts run prefill, decode and CUDA-graph replays with their exchanges inside the graphs.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "artifact/artifact_reader.h"
#include "comm/communicator.h"
#include "comm/process_world.h"
#include "exec/model_runner.h"
#include "fake_cuda_batches.h"
#include "fake_cuda_client.h"
#include "fake_cuda_step_checks.h"
#include "fake_nccl.h"
#include "hal/cuda/cuda_comm.h"
#include "hal/cuda/cuda_device.h"
#include "hal/cuda/cuda_library.h"

namespace ds::test {
namespace {

const bool kFakeDriver = pointRuntimeAtFakeDriver();
const bool kFakeNccl = [] {
  ::setenv("DS_NCCL_LIBRARY", DS_FAKE_NCCL_LIBRARY, 1);
  return true;
}();

using hal::cuda::CudaDevice;

struct FakeNccl {
  decltype(&fake_nccl_reset) reset = nullptr;
  decltype(&fake_nccl_call_count) call_count = nullptr;
  decltype(&fake_nccl_bytes_moved) bytes_moved = nullptr;
  decltype(&fake_nccl_replayed_batches) replayed_batches = nullptr;
  decltype(&fake_nccl_live_comms) live_comms = nullptr;
  decltype(&fake_nccl_fail) fail = nullptr;
  decltype(&fake_nccl_last_error) last_error = nullptr;
  static const FakeNccl& get() {
    static const FakeNccl f = [] {
      FakeNccl c;
      void* h = ::dlopen(DS_FAKE_NCCL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
      if (!h) std::abort();
#define DS_FAKE_NCCL_BIND(field) c.field = reinterpret_cast<decltype(c.field)>(::dlsym(h, "fake_nccl_" #field))
      DS_FAKE_NCCL_BIND(reset);
      DS_FAKE_NCCL_BIND(call_count);
      DS_FAKE_NCCL_BIND(bytes_moved);
      DS_FAKE_NCCL_BIND(replayed_batches);
      DS_FAKE_NCCL_BIND(live_comms);
      DS_FAKE_NCCL_BIND(fail);
      DS_FAKE_NCCL_BIND(last_error);
#undef DS_FAKE_NCCL_BIND
      return c;
    }();
    return f;
  }
};

// N fake GPUs for a scope (the fake's cuInit re-reads FAKE_CUDA_DEVICES on every load of its path).
struct FakeGpus {
  explicit FakeGpus(int n) {
    ::setenv("FAKE_CUDA_DEVICES", std::to_string(n).c_str(), 1);
    (void)hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);
  }
  ~FakeGpus() {
    ::unsetenv("FAKE_CUDA_DEVICES");
    (void)hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);
  }
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<std::unique_ptr<CudaDevice>> makeDevices(int n) {
  std::vector<std::unique_ptr<CudaDevice>> out;
  for (int r = 0; r < n; ++r) {
    hal::DeviceOptions o;
    o.device_ordinal = r;
    auto d = CudaDevice::create("sm_90a", o);
    EXPECT_TRUE(d.isOk()) << d.status().toString();
    if (!d.isOk()) return {};
    out.push_back(std::move(d).value());
  }
  return out;
}

StatusOr<std::unique_ptr<CommGroup>> groupOf(std::vector<std::unique_ptr<CudaDevice>>& devices) {
  std::vector<hal::Device*> ranks;
  for (auto& d : devices) ranks.push_back(d.get());
  return devices[0]->createCommGroup(ranks, CommPlacement{});
}

TEST(Nccl, LibraryLoadsByDlopenAndNamesWhatIsMissing) {
  auto missing = hal::cuda::loadNccl({"/nonexistent/libnccl.so.2"});
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().code(), DS_UNAVAILABLE);
  EXPECT_TRUE(contains(missing.status().message(), "/nonexistent/libnccl.so.2 not found"));
  EXPECT_TRUE(contains(missing.status().message(), "tensor parallelism on GPUs needs NCCL")) << missing.status().message();
  auto lib = hal::cuda::loadNccl();  // DS_NCCL_LIBRARY: the fake
  ASSERT_TRUE(lib.isOk()) << lib.status().toString();
  EXPECT_EQ((*lib)->version, 22803);
  EXPECT_EQ((*lib)->path, DS_FAKE_NCCL_LIBRARY);
}

// Runs fn(r) on one thread per rank (NCCL ranks of one process: a thread each).
void onRanks(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> t;
  for (int r = 0; r < n; ++r) t.emplace_back(fn, r);
  for (auto& x : t) x.join();
}

TEST(Nccl, GroupExchangesBytesBetweenGpus) {
  FakeGpus gpus(3);
  const int live = FakeNccl::get().live_comms();
  {
    auto devices = makeDevices(3);
    ASSERT_EQ(devices.size(), 3u);
    auto group = groupOf(devices);
    ASSERT_TRUE(group.isOk()) << group.status().toString() << " / " << FakeNccl::get().last_error();
    EXPECT_EQ(FakeNccl::get().live_comms(), live + 3);
    ASSERT_EQ((*group)->size(), 3);
    // Buffers on each GPU: send [3 x 8] bytes (row p for rank p), recv [3 x 8], gather [3 x 5].
    std::vector<hal::DeviceBuffer> send(3), recv(3), gath(3);
    for (int r = 0; r < 3; ++r) {
      auto& a = devices[r]->allocator();
      ASSERT_TRUE(send[r].reserve(a, 24, hal::MemoryKind::Activations).isOk());
      ASSERT_TRUE(recv[r].reserve(a, 24, hal::MemoryKind::Activations).isOk());
      ASSERT_TRUE(gath[r].reserve(a, 15, hal::MemoryKind::Activations).isOk());
      for (int i = 0; i < 24; ++i) static_cast<uint8_t*>(send[r].data())[i] = static_cast<uint8_t>(16 * r + i);
      std::memset(recv[r].data(), 0xEE, 24);
    }
    std::vector<Status> st(3);
    onRanks(3, [&](int r) {
      Communicator* c = (*group)->rank(r);
      std::vector<Communicator::Piece> to(3), from(3);
      for (int p = 0; p < 3; ++p) {
        to[p] = {static_cast<uint64_t>(8 * p), p == r ? 0u : 8u};  // nothing to itself
        from[p] = {static_cast<uint64_t>(8 * p), p == r ? 0u : 8u};
      }
      st[r] = c->allToAllV(send[r].data(), to.data(), recv[r].data(), from.data());
      if (st[r].isOk()) st[r] = c->allGatherBytes(static_cast<uint8_t*>(send[r].data()) + 3, 5, gath[r].data());
    });
    for (int r = 0; r < 3; ++r) ASSERT_TRUE(st[r].isOk()) << "rank " << r << ": " << st[r].toString();
    for (int r = 0; r < 3; ++r)
      for (int p = 0; p < 3; ++p)
        for (int i = 0; i < 8; ++i) {
          const uint8_t got = static_cast<uint8_t*>(recv[r].data())[8 * p + i];
          // Rank p's piece for rank r is row r of p's send buffer.
          EXPECT_EQ(got, p == r ? 0xEE : static_cast<uint8_t>(16 * p + 8 * r + i)) << r << " from " << p;
          if (i < 5) {
            EXPECT_EQ(static_cast<uint8_t*>(gath[r].data())[5 * p + i], static_cast<uint8_t>(16 * p + 3 + i));
          }
        }
    // The host-memory collectives are the in-process group's: the NCCL ones say so.
    float x = 1;
    EXPECT_EQ((*group)->rank(0)->allReduceSum(&x, 1).code(), DS_UNSUPPORTED);
  }
  EXPECT_EQ(FakeNccl::get().live_comms(), live);  // destroyed with the group
}

TEST(Nccl, FailedInitAbortAndReset) {
  FakeGpus gpus(2);
  const int live = FakeNccl::get().live_comms();
  auto devices = makeDevices(2);
  ASSERT_EQ(devices.size(), 2u);
  // The second rank's init fails: named, and the first rank's communicator is not left behind.
  FakeNccl::get().fail("ncclCommInitRank", 2, 2);
  auto bad = groupOf(devices);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), DS_UNAVAILABLE);
  EXPECT_TRUE(contains(bad.status().message(), "ncclCommInitRank(rank 1 of 2, cuda:1")) << bad.status().message();
  EXPECT_TRUE(contains(bad.status().message(), "unhandled system error")) << bad.status().message();
  EXPECT_EQ(FakeNccl::get().live_comms(), live);

  auto group = groupOf(devices);
  ASSERT_TRUE(group.isOk()) << group.status().toString();
  hal::DeviceBuffer b0, b1;
  ASSERT_TRUE(b0.reserve(devices[0]->allocator(), 64, hal::MemoryKind::Activations).isOk());
  ASSERT_TRUE(b1.reserve(devices[1]->allocator(), 64, hal::MemoryKind::Activations).isOk());
  Communicator* rank0 = (*group)->rank(0);
  const size_t aborts = FakeNccl::get().call_count("ncclCommAbort");
  (*group)->abort();  // a rank failed mid-step: no call in flight, so the communicators are aborted
  EXPECT_EQ(FakeNccl::get().call_count("ncclCommAbort"), aborts + 2);
  EXPECT_EQ(FakeNccl::get().live_comms(), live);
  const Status after = rank0->allGatherBytes(b0.data(), 8, b0.data());
  EXPECT_EQ(after.code(), DS_UNAVAILABLE);
  EXPECT_TRUE(contains(after.message(), "aborted")) << after.message();
  ASSERT_TRUE((*group)->reset().isOk());  // every rank returned: join new ones
  EXPECT_EQ(FakeNccl::get().call_count("ncclCommAbort"), aborts + 2) << "aborted once";
  EXPECT_EQ(FakeNccl::get().live_comms(), live + 2);
  EXPECT_EQ((*group)->rank(0), rank0) << "the ranks keep their communicators";
  std::vector<Status> st(2);
  onRanks(2, [&](int r) {
    void* b = r ? b1.data() : b0.data();
    st[r] = (*group)->rank(r)->allGatherBytes(b, 16, static_cast<uint8_t*>(b) + 32);
  });
  EXPECT_TRUE(st[0].isOk() && st[1].isOk()) << st[0].toString() << " / " << st[1].toString();
}

// ---- whole tensor-parallel GPU artifacts --------------------------------------------------------

std::string artifactPath(const std::string& name) {
  return std::string(DS_FAKE_CUDA_ARTIFACTS) + "/" + name + ".dsa";
}

StepBatch batchOf(std::vector<int32_t> ids, int32_t first_pos, int64_t block_size) {
  return sequenceStep(ids, first_pos, 16 / block_size + 1);
}

class NcclRun : public ::testing::TestWithParam<const char*> {};

TEST_P(NcclRun, TensorParallelStepsAndGraphReplays) {
  const std::string path = artifactPath(GetParam());
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " was not built";
  if (!std::ifstream(hal::cuda::buildTreeLibraryPath()).good()) GTEST_SKIP() << "no kernel library fatbin";
  FakeGpus gpus(2);
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  ASSERT_EQ(plan->tp_size, 2);
  const int live = FakeNccl::get().live_comms();
  {
    RunnerOptions o;
    o.num_kv_blocks = 8;
    auto runner = ModelRunner::create(**art, o);
    ASSERT_TRUE(runner.isOk()) << runner.status().toString() << " / " << FakeNccl::get().last_error();
    EXPECT_EQ(FakeNccl::get().live_comms(), live + 2);
    const int64_t bs = (*runner)->blockSize();
    const StepBatch prefill = batchOf({1, 2, 3, 4, 5}, 0, bs);
    ASSERT_TRUE((*runner)->step(prefill).isOk()) << FakeCuda::get().last_error() << " / " << FakeNccl::get().last_error();
    FakeNccl::get().reset();
    FakeCuda::get().reset();
    auto view = (*runner)->step(prefill);
    ASSERT_TRUE(view.isOk()) << view.status().toString();
    // Every all-reduce / all-gather of the plan became exchanges, on both ranks.
    size_t collectives = 0;
    for (const hal::LaunchDesc& l : plan->launches)
      collectives += l.kind == abi::KernelKind::AllReduce || l.kind == abi::KernelKind::AllGather ||
                     (l.kind == abi::KernelKind::AddRmsNorm && l.params.all_reduce_rhs);
    ASSERT_GT(collectives, 0u);
    const size_t exchanges = FakeNccl::get().call_count("ncclAllGather") + FakeNccl::get().call_count("ncclGroupEnd");
    EXPECT_EQ(exchanges, 2 * collectives) << "prefill (one exchange per small collective per rank)";
    EXPECT_GT(FakeNccl::get().bytes_moved(), 0u);
    size_t sums = 0;
    for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i)
      sums += std::string(FakeCuda::get().launch(i).name).rfind("ds_comm_sum_ranks_bf16", 0) == 0;
    size_t reduces = 0;
    for (const hal::LaunchDesc& l : plan->launches)
      reduces += l.kind == abi::KernelKind::AllReduce || (l.kind == abi::KernelKind::AddRmsNorm && l.params.all_reduce_rhs);
    EXPECT_EQ(sums, 2 * reduces);

    // Decode: the first step of the bucket is eager and recorded, the next replays the graph -
    // the exchanges inside it too (fake_cuda_enqueue_host), on both ranks.
    ASSERT_TRUE((*runner)->step(batchOf({7}, 5, bs)).isOk()) << FakeNccl::get().last_error();
    const size_t before = FakeNccl::get().replayed_batches();
    const size_t calls = FakeNccl::get().call_count("ncclAllGather");
    view = (*runner)->step(batchOf({8}, 6, bs));
    ASSERT_TRUE(view.isOk()) << view.status().toString() << " / " << FakeNccl::get().last_error();
    EXPECT_EQ(FakeNccl::get().replayed_batches() - before, 2 * collectives) << "exchanges replayed from the graphs";
    EXPECT_EQ(FakeNccl::get().call_count("ncclAllGather"), calls) << "a replay calls no NCCL entry point";
    std::vector<float> staging;
    ASSERT_TRUE(view->host(&staging).isOk());
    // A failed exchange fails the step (the group is aborted and rejoined); the steps after it
    // run on the rejoined communicators - the ranks' own, at the addresses they hold.
    FakeNccl::get().fail("ncclAllGather", 1, 3);
    auto failed = (*runner)->step(prefill);
    ASSERT_FALSE(failed.isOk());
    EXPECT_NE(failed.status().message().find("ncclAllGather"), std::string::npos) << failed.status().message();
    EXPECT_EQ(FakeNccl::get().live_comms(), live + 2);
    ASSERT_TRUE((*runner)->step(prefill).isOk()) << FakeNccl::get().last_error();
    ASSERT_TRUE((*runner)->step(batchOf({9}, 5, bs)).isOk()) << FakeNccl::get().last_error();
  }
  EXPECT_EQ(FakeNccl::get().live_comms(), live);
}

INSTANTIATE_TEST_SUITE_P(Artifacts, NcclRun,
                         ::testing::Values("tiny-llama.sm_90a.tp2", "tiny-deepseek-v3.sm_90a.tp2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-' || c == '.') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace ds::test

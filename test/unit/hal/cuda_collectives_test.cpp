// Tensor parallelism's collectives on the CUDA device (hal/cuda/cuda_launches_collective.cpp)
// without a GPU or NCCL: every rank's plan for all_reduce / add_rms_norm's all_reduce_rhs /
// all_gather, executed in lockstep on host memory - exchanges as the Communicator contract
// defines them, kernels (ds_comm_sum_ranks, ds_copy_cols) as their headers define them - must
// give every rank the rank-ordered f32 sum (x_0 + x_1 + ... rounded once), bit for bit, through
// the one-exchange and the two-exchange forms alike, and the gathered columns.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "format/dtype.h"
#include "hal/cuda/cuda_launches.h"

namespace ds::hal::cuda {
namespace {

using K = abi::KernelKind;

uint64_t addr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }
template <class T>
T* ptr(uint64_t a) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(a));
}
float bf16ToFloat(uint16_t h) {
  uint32_t u = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The kernels' definitions (include/ds_cuda_collective.h, ds_cuda_kernels.h), on host memory.
void runKernel(const CudaCall& c) {
  if (c.symbol.rfind("ds_comm_sum_ranks_", 0) == 0) {
    ds_cuda_comm_sum_params p;
    ASSERT_EQ(c.params.size(), sizeof p);
    std::memcpy(&p, c.params.data(), sizeof p);
    const bool bf = p.dtype == DS_CUDA_BF16;
    ASSERT_EQ(c.symbol, bf ? "ds_comm_sum_ranks_bf16" : "ds_comm_sum_ranks_f32");
    std::vector<float> sums(static_cast<size_t>(p.count));
    for (int64_t i = 0; i < p.count; ++i) {
      float acc = 0;
      for (int r = 0; r < p.nranks; ++r) {
        const uint64_t base = (p.self && r == p.self_rank) ? p.self : p.src + static_cast<uint64_t>(r * p.slot_stride) * (bf ? 2 : 4);
        const float v = bf ? bf16ToFloat(ptr<uint16_t>(base)[i]) : ptr<float>(base)[i];
        acc = r == 0 ? v : acc + v;
      }
      sums[static_cast<size_t>(i)] = acc;
    }
    for (int64_t i = 0; i < p.count; ++i) {  // after reading everything: dst may be self
      if (bf) ptr<uint16_t>(p.dst)[i] = floatToBF16(sums[static_cast<size_t>(i)]);
      else ptr<float>(p.dst)[i] = sums[static_cast<size_t>(i)];
    }
    return;
  }
  if (c.symbol.rfind("ds_copy_cols_", 0) == 0) {
    ds_cuda_copy_cols_params p;
    ASSERT_EQ(c.params.size(), sizeof p);
    std::memcpy(&p, c.params.data(), sizeof p);
    const uint64_t es = p.dtype == DS_CUDA_BF16 ? 2 : 4;
    for (int32_t r = 0; r < p.rows; ++r)
      std::memcpy(ptr<uint8_t>(p.y + r * p.y_stride * es), ptr<uint8_t>(p.x + r * p.x_stride * es), p.cols * es);
    return;
  }
  FAIL() << "unexpected kernel " << c.symbol;
}

// The plans of all ranks, call by call: an exchange moves bytes between every rank's buffers
// (sends staged first, as NCCL reads them before anyone's receive lands), a kernel runs per rank.
void runLockstep(const std::vector<CudaLaunchPlan>& plans) {
  const size_t N = plans.size();
  for (size_t r = 1; r < N; ++r) ASSERT_EQ(plans[r].calls.size(), plans[0].calls.size());
  for (size_t k = 0; k < plans[0].calls.size(); ++k) {
    const CudaCallKind kind = plans[0].calls[k].kind;
    for (size_t r = 0; r < N; ++r) ASSERT_EQ(plans[r].calls[k].kind, kind) << "call " << k;
    if (kind == CudaCallKind::Kernel) {
      for (size_t r = 0; r < N; ++r) runKernel(plans[r].calls[k]);
      continue;
    }
    ASSERT_TRUE(kind == CudaCallKind::AllGather || kind == CudaCallKind::AllToAllV);
    std::vector<std::vector<std::vector<uint8_t>>> sent(N, std::vector<std::vector<uint8_t>>(N));
    for (size_t q = 0; q < N; ++q) {
      const CudaExchange& x = plans[q].calls[k].exchange;
      for (size_t p = 0; p < N; ++p) {
        const uint64_t off = kind == CudaCallKind::AllGather ? 0 : x.to[p].offset;
        const uint64_t n = kind == CudaCallKind::AllGather ? x.bytes : x.to[p].bytes;
        sent[q][p].assign(ptr<uint8_t>(x.send + off), ptr<uint8_t>(x.send + off) + n);
      }
    }
    for (size_t p = 0; p < N; ++p) {
      const CudaExchange& x = plans[p].calls[k].exchange;
      for (size_t q = 0; q < N; ++q) {
        const uint64_t off = kind == CudaCallKind::AllGather ? q * x.bytes : x.from[q].offset;
        const uint64_t n = kind == CudaCallKind::AllGather ? x.bytes : x.from[q].bytes;
        ASSERT_EQ(n, sent[q][p].size()) << "rank " << q << " sends " << sent[q][p].size() << " bytes to rank " << p;
        if (n) std::memcpy(ptr<uint8_t>(x.recv + off), sent[q][p].data(), n);
      }
    }
  }
}

LaunchDesc launchOf(K kind) {
  LaunchDesc l;
  l.kind = kind;
  l.sig = abi::signature(kind);
  return l;
}

struct Case {
  int N;
  int64_t n;
  DType dt;
};

// all_reduce of n elements over N ranks (out == in, as the compiler plans it) or into a separate
// out; returns every rank's result bytes.
std::vector<std::vector<uint8_t>> allReduce(const Case& c, bool separate_out, uint32_t seed,
                                            std::vector<std::vector<float>>* inputs) {
  const bool bf = c.dt == DType::BF16;
  const size_t es = bf ? 2 : 4, bytes = static_cast<size_t>(c.n) * es;
  std::uniform_real_distribution<float> e(-12.0f, 4.0f), u(0.0f, 1.0f);
  std::vector<std::vector<uint8_t>> in(c.N, std::vector<uint8_t>(bytes)), out(c.N, std::vector<uint8_t>(bytes)),
      ws(c.N);
  inputs->assign(c.N, std::vector<float>(static_cast<size_t>(c.n)));
  for (int r = 0; r < c.N; ++r) {
    std::mt19937 rng(seed * 100 + static_cast<uint32_t>(r));  // per rank: a prefix of n is the same
    for (int64_t i = 0; i < c.n; ++i) {
      float v = std::ldexp(1.0f + u(rng), static_cast<int>(e(rng))) * (u(rng) < 0.5f ? -1.0f : 1.0f);
      if (bf) {
        const uint16_t h = floatToBF16(v);
        std::memcpy(in[r].data() + i * 2, &h, 2);
        v = bf16ToFloat(h);
      } else {
        std::memcpy(in[r].data() + i * 4, &v, 4);
      }
      (*inputs)[r][static_cast<size_t>(i)] = v;
    }
  }
  LaunchDesc l = launchOf(K::AllReduce);
  BufferDesc d;
  d.cols = {c.n};
  d.row_elems = c.n;
  d.dtype = c.dt;
  std::vector<CudaLaunchPlan> plans(c.N);
  for (int r = 0; r < c.N; ++r) {
    CudaLaunchView v;
    v.launch = &l;
    v.in[0] = addr(in[r].data());
    v.out[0] = addr(separate_out ? out[r].data() : in[r].data());
    v.in_desc[0] = v.out_desc[0] = &d;
    v.in_rows[0] = v.out_rows[0] = 1;
    CudaStepView s;
    s.rank = r;
    s.tp = c.N;
    v.workspace = uint64_t{1} << 40;  // a placeholder to learn the size (as the executable does)
    StatusOr<CudaLaunchPlan> sized = planCudaLaunch(v, s);
    EXPECT_TRUE(sized.isOk()) << sized.status().toString();
    if (!sized.isOk()) return {};
    ws[r].assign(sized->workspace_bytes + 256, 0xA5);
    v.workspace = (addr(ws[r].data()) + 255) & ~uint64_t{255};
    StatusOr<CudaLaunchPlan> p = planCudaLaunch(v, s);
    EXPECT_TRUE(p.isOk()) << p.status().toString();
    if (!p.isOk()) return {};
    plans[r] = std::move(p).value();
  }
  runLockstep(plans);
  return separate_out ? out : in;
}

class CudaAllReduce : public testing::TestWithParam<Case> {};

TEST_P(CudaAllReduce, EveryRankGetsTheRankOrderedSum) {
  const Case c = GetParam();
  const bool bf = c.dt == DType::BF16;
  for (bool separate : {false, true}) {
    std::vector<std::vector<float>> x;
    const std::vector<std::vector<uint8_t>> got = allReduce(c, separate, 7 + c.N, &x);
    ASSERT_EQ(got.size(), static_cast<size_t>(c.N));
    size_t bad = 0;
    for (int64_t i = 0; i < c.n; ++i) {
      float acc = x[0][static_cast<size_t>(i)];
      for (int r = 1; r < c.N; ++r) acc += x[r][static_cast<size_t>(i)];
      for (int r = 0; r < c.N; ++r) {
        if (bf) {
          uint16_t h;
          std::memcpy(&h, got[r].data() + i * 2, 2);
          bad += h != floatToBF16(acc);
        } else {
          float f;
          std::memcpy(&f, got[r].data() + i * 4, 4);
          bad += std::memcmp(&f, &acc, 4) != 0;
        }
      }
    }
    EXPECT_EQ(bad, 0u) << c.N << " ranks, " << c.n << (bf ? " bf16" : " f32") << (separate ? ", separate out" : "");
  }
}

// One exchange (<= 256 KiB per rank) and two (reduce-scatter + gather as all-to-alls), counts
// that do not divide by the ranks, and fewer elements than ranks.
INSTANTIATE_TEST_SUITE_P(Sizes, CudaAllReduce,
                         testing::Values(Case{2, 7168, DType::BF16}, Case{3, 1001, DType::F32},
                                         Case{4, 3, DType::F32}, Case{8, 5000, DType::BF16},
                                         Case{2, 70001, DType::F32}, Case{3, 200003, DType::BF16},
                                         Case{8, 131075, DType::F32}));

TEST(CudaAllReduce, BothFormsGiveTheSameBits) {
  // The same inputs through one exchange (a 64-element prefix) and two (all of them): element i
  // is the same sum whatever the count - batch invariance across the threshold.
  const Case big{4, 100000, DType::F32};
  std::vector<std::vector<float>> x;
  const auto whole = allReduce(big, false, 11, &x);
  ASSERT_EQ(whole.size(), 4u);
  const Case small{4, 64, DType::F32};
  std::vector<std::vector<float>> y;
  const auto prefix = allReduce(small, false, 11, &y);  // the same generator: the same first values
  ASSERT_EQ(prefix.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(y[r][i], x[r][i]);  // (sanity: same inputs)
    EXPECT_EQ(0, std::memcmp(whole[r].data(), prefix[r].data(), 64 * 4)) << "rank " << r;
  }
}

TEST(CudaAllReduce, PlansByExchangeSize) {
  // Decode-sized: one all-gather + one sum; prefill-sized: all-to-all, sum of this rank's chunk,
  // all-to-all. At tp 1: nothing in place, a copy otherwise.
  std::vector<std::vector<float>> x;
  auto shape = [](int N, int64_t n, int rank) {
    static LaunchDesc l = launchOf(K::AllReduce);
    static BufferDesc d;
    d.cols = {n};
    d.row_elems = n;
    d.dtype = DType::BF16;
    CudaLaunchView v;
    v.launch = &l;
    v.in[0] = v.out[0] = 0x100000;
    v.workspace = 0x800000;
    v.in_desc[0] = v.out_desc[0] = &d;
    v.in_rows[0] = v.out_rows[0] = 1;
    CudaStepView s;
    s.rank = rank;
    s.tp = N;
    StatusOr<CudaLaunchPlan> p = planCudaLaunch(v, s);
    EXPECT_TRUE(p.isOk()) << p.status().toString();
    std::vector<std::string> out;
    for (const CudaCall& c : p->calls) out.push_back(c.symbol);
    return std::make_pair(out, p->workspace_bytes);
  };
  auto small = shape(8, 7168 * 4, 3);
  EXPECT_EQ(small.first, (std::vector<std::string>{"allGather", "ds_comm_sum_ranks_bf16"}));
  EXPECT_GE(small.second, 8u * 7168 * 4 * 2);
  auto big = shape(8, 7168 * 512, 3);
  EXPECT_EQ(big.first, (std::vector<std::string>{"allToAllV", "ds_comm_sum_ranks_bf16", "allToAllV"}));
  EXPECT_GE(big.second, 7168u * 512 * 2);
  EXPECT_LT(big.second, 7168u * 512 * 2 + 8 * 256 + 512);  // N chunks of n / N: about n elements
  EXPECT_TRUE(shape(1, 4096, 0).first.empty());
}

TEST(CudaAllGather, RanksColumnsSideBySide) {
  // Logits of a vocab-parallel plan: each rank's [rows, cols] slice into out[rows, cols * N].
  for (int64_t rows : {1, 3}) {
    const int N = 3;
    const int64_t cols = 5;
    std::vector<std::vector<float>> in(N, std::vector<float>(rows * cols)), out(N, std::vector<float>(rows * cols * N, -1));
    std::vector<std::vector<uint8_t>> ws(N);
    for (int r = 0; r < N; ++r)
      for (int64_t i = 0; i < rows * cols; ++i) in[r][i] = static_cast<float>(100 * r + i);
    LaunchDesc l = launchOf(K::AllGather);
    BufferDesc di, dout;
    di.cols = {cols};
    di.row_elems = cols;
    dout.cols = {cols * N};
    dout.row_elems = cols * N;
    std::vector<CudaLaunchPlan> plans(N);
    for (int r = 0; r < N; ++r) {
      CudaLaunchView v;
      v.launch = &l;
      v.in[0] = addr(in[r].data());
      v.out[0] = addr(out[r].data());
      v.in_desc[0] = &di;
      v.out_desc[0] = &dout;
      v.in_rows[0] = v.out_rows[0] = rows;
      ws[r].resize(4096);
      v.workspace = (addr(ws[r].data()) + 255) & ~uint64_t{255};
      CudaStepView s;
      s.rank = r;
      s.tp = N;
      StatusOr<CudaLaunchPlan> p = planCudaLaunch(v, s);
      ASSERT_TRUE(p.isOk()) << p.status().toString();
      ASSERT_LE(p->workspace_bytes, 4096u - 256);
      plans[r] = std::move(p).value();
    }
    runLockstep(plans);
    for (int r = 0; r < N; ++r)
      for (int64_t row = 0; row < rows; ++row)
        for (int q = 0; q < N; ++q)
          for (int64_t j = 0; j < cols; ++j)
            ASSERT_EQ(out[r][row * cols * N + q * cols + j], static_cast<float>(100 * q + row * cols + j))
                << "rank " << r << " rows " << rows;
  }
}

}  // namespace
}  // namespace ds::hal::cuda

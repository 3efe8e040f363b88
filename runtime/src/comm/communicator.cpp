// InProcessGroup: a barrier over a generation counter and the fixed-order host collectives.
#include "comm/communicator.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DS_CPU_RELAX() _mm_pause()
#else
#define DS_CPU_RELAX() ((void)0)
#endif

namespace ds {

struct InProcessGroup::State {
  explicit State(int n) : size(n), parity(n, 0) {
    for (int p = 0; p < 2; ++p) {
      ptr[p].resize(n);
      count[p].resize(n);
      cols[p].resize(n);
      slot[p].resize(n);
    }
  }

  const int size;
  // Barrier: `arrived` counts this round's ranks; the last one bumps `generation`.
  std::atomic<int> arrived{0};
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> aborted{false};
  std::mutex mu;
  std::condition_variable cv;
  // Everything a collective shares comes in two sets and collectives alternate between them
  // (`parity`, per rank, identical on every rank). A rank can be at most one collective ahead
  // of the slowest (each collective has a barrier), so it never writes the set a slower rank is
  // still reading, and a collective needs no barrier at its end.
  std::vector<int> parity;
  std::vector<const float*> ptr[2];      // each rank's input (large all-reduce)
  std::vector<int64_t> count[2], cols[2];  // each rank's sizes, checked against rank 0's
  std::vector<std::vector<float>> slot[2];  // each rank's copy of its input (small collectives)
  std::vector<float> scratch[2];         // large all-reduce result

  Status abortedStatus() const {
    return Status(DS_UNAVAILABLE, "collective aborted: a peer rank failed");
  }

  Status barrier() {
    const uint64_t gen = generation.load(std::memory_order_acquire);
    if (aborted.load(std::memory_order_acquire)) return abortedStatus();
    if (arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == size) {
      arrived.store(0, std::memory_order_relaxed);
      {
        std::lock_guard<std::mutex> lock(mu);
        generation.store(gen + 1, std::memory_order_release);
      }
      cv.notify_all();
      return Status::ok();
    }
    // Peers usually arrive within microseconds: spin, then yield, then sleep (more ranks than
    // cores must not burn the core the missing rank needs).
    for (int i = 0; i < 256; ++i) {
      if (generation.load(std::memory_order_acquire) != gen) return Status::ok();
      DS_CPU_RELAX();
    }
    for (int i = 0; i < 16; ++i) {
      if (generation.load(std::memory_order_acquire) != gen) return Status::ok();
      if (aborted.load(std::memory_order_acquire)) return abortedStatus();
      std::this_thread::yield();
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] {
      return generation.load(std::memory_order_acquire) != gen ||
             aborted.load(std::memory_order_acquire);
    });
    if (generation.load(std::memory_order_acquire) != gen) return Status::ok();
    return abortedStatus();
  }
};

namespace {

// All-reduces up to this many elements copy their input into the rank's slot and need one
// barrier (every rank then sums every slot: N x n reads each); larger ones split the sum over
// the ranks and need two.
constexpr int64_t kSmallAllReduce = 1 << 16;

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(InProcessGroup::State* s, int rank) : s_(s), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return s_->size; }

  Status allReduceSum(float* data, int64_t n) override {
    const int N = s_->size;
    const int p = s_->parity[rank_];
    s_->parity[rank_] ^= 1;
    const bool small = n <= kSmallAllReduce;
    if (small && n > 0) {
      std::vector<float>& mine = s_->slot[p][rank_];
      if (mine.size() < static_cast<size_t>(n)) mine.resize(n);
      std::memcpy(mine.data(), data, static_cast<size_t>(n) * sizeof(float));
    }
    std::vector<float>& scratch = s_->scratch[p];
    if (!small && rank_ == 0 && scratch.size() < static_cast<size_t>(n)) scratch.resize(n);
    s_->ptr[p][rank_] = data;
    s_->count[p][rank_] = n;
    DS_RETURN_IF_ERROR(s_->barrier());
    // Every rank sees the same published sizes, so all take the same path (or return the same
    // error) and meet at the same barriers.
    const std::vector<int64_t>& count = s_->count[p];
    for (int q = 0; q < N; ++q)
      if (count[q] != count[0] || count[q] < 0)
        return invalidArgument("allReduceSum: rank " + std::to_string(q) + " passed " +
                               std::to_string(count[q]) + " elements, rank 0 " +
                               std::to_string(count[0]));
    if (n == 0) return Status::ok();
    if (small) {
      const std::vector<std::vector<float>>& slot = s_->slot[p];
      for (int64_t i = 0; i < n; ++i) {
        float acc = slot[0][i];
        for (int q = 1; q < N; ++q) acc += slot[q][i];
        data[i] = acc;
      }
      return Status::ok();
    }
    const int64_t lo = n * rank_ / N, hi = n * (rank_ + 1) / N;
    float* out = scratch.data();
    const float* const* src = s_->ptr[p].data();
    for (int64_t i = lo; i < hi; ++i) {
      float acc = src[0][i];
      for (int q = 1; q < N; ++q) acc += src[q][i];
      out[i] = acc;
    }
    DS_RETURN_IF_ERROR(s_->barrier());
    std::memcpy(data, out, static_cast<size_t>(n) * sizeof(float));
    return Status::ok();
  }

  Status allGather(const float* in, int64_t rows, int64_t cols, float* out) override {
    const int N = s_->size;
    const int p = s_->parity[rank_];
    s_->parity[rank_] ^= 1;
    const int64_t n = rows > 0 && cols > 0 ? rows * cols : 0;
    if (n > 0) {
      std::vector<float>& mine = s_->slot[p][rank_];
      if (mine.size() < static_cast<size_t>(n)) mine.resize(n);
      std::memcpy(mine.data(), in, static_cast<size_t>(n) * sizeof(float));
    }
    s_->count[p][rank_] = rows;
    s_->cols[p][rank_] = cols;
    DS_RETURN_IF_ERROR(s_->barrier());
    const std::vector<int64_t>&rc = s_->count[p], &cc = s_->cols[p];
    for (int q = 0; q < N; ++q)
      if (rc[q] != rc[0] || cc[q] != cc[0] || rc[q] < 0 || cc[q] < 0)
        return invalidArgument("allGather: rank " + std::to_string(q) + " passed [" +
                               std::to_string(rc[q]) + ", " + std::to_string(cc[q]) +
                               "], rank 0 [" + std::to_string(rc[0]) + ", " +
                               std::to_string(cc[0]) + "]");
    if (n == 0) return Status::ok();
    const size_t row_bytes = static_cast<size_t>(cols) * sizeof(float);
    for (int q = 0; q < N; ++q) {
      const float* src = s_->slot[p][q].data();
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(out + (r * N + q) * cols, src + r * cols, row_bytes);
    }
    return Status::ok();
  }

 private:
  InProcessGroup::State* s_;
  const int rank_;
};

}  // namespace

StatusOr<std::unique_ptr<InProcessGroup>> InProcessGroup::create(int size) {
  if (size < 1 || size > 64)
    return invalidArgument("InProcessGroup: size " + std::to_string(size) + " outside [1, 64]");
  std::unique_ptr<InProcessGroup> g(new InProcessGroup());
  g->state_ = std::make_unique<State>(size);
  for (int r = 0; r < size; ++r)
    g->ranks_.push_back(std::make_unique<InProcessCommunicator>(g->state_.get(), r));
  return g;
}

InProcessGroup::~InProcessGroup() = default;

int InProcessGroup::size() const { return state_->size; }

Communicator* InProcessGroup::rank(int rank) {
  return rank >= 0 && rank < state_->size ? ranks_[rank].get() : nullptr;
}

void InProcessGroup::abort() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->aborted.store(true, std::memory_order_release);
  }
  state_->cv.notify_all();
}

Status InProcessGroup::reset() {
  // An abort can leave ranks a different number of all-reduces apart.
  std::fill(state_->parity.begin(), state_->parity.end(), 0);
  state_->arrived.store(0, std::memory_order_relaxed);
  state_->aborted.store(false, std::memory_order_release);
  return Status::ok();
}

Status Communicator::allGatherBytes(const void*, uint64_t, void*) {
  return unsupported("this communicator has no byte all-gather (the in-process group serves f32 collectives)");
}

Status Communicator::allToAllV(const void*, const Piece*, void*, const Piece*) {
  return unsupported("this communicator has no all-to-all (the in-process group serves f32 collectives)");
}

}  // namespace ds

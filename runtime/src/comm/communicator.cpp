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
  explicit State(int n) : size(n), ptr(n), count(n), cols(n), parity(n, 0) {}

  const int size;
  // Barrier: `arrived` counts this round's ranks; the last one bumps `generation`.
  std::atomic<int> arrived{0};
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> aborted{false};
  std::mutex mu;
  std::condition_variable cv;
  // Each rank's arguments of the collective in progress (written before the first barrier).
  std::vector<const float*> ptr;
  std::vector<int64_t> count, cols;
  // All-reduce results; two, alternating, so a rank starting the next all-reduce never writes
  // the buffer a slower rank is still copying out of.
  std::vector<float> scratch[2];
  std::vector<int> parity;  // per rank: which scratch its next all-reduce uses

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

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(InProcessGroup::State* s, int rank) : s_(s), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return s_->size; }

  Status allReduceSum(float* data, int64_t n) override {
    const int N = s_->size;
    std::vector<float>& scratch = s_->scratch[s_->parity[rank_]];
    s_->parity[rank_] ^= 1;
    if (rank_ == 0 && n > 0 && scratch.size() < static_cast<size_t>(n)) scratch.resize(n);
    s_->ptr[rank_] = data;
    s_->count[rank_] = n;
    DS_RETURN_IF_ERROR(s_->barrier());
    // Every rank sees the same published sizes, so all return the same error together.
    for (int q = 0; q < N; ++q)
      if (s_->count[q] != s_->count[0] || s_->count[q] < 0)
        return invalidArgument("allReduceSum: rank " + std::to_string(q) + " passed " +
                               std::to_string(s_->count[q]) + " elements, rank 0 " +
                               std::to_string(s_->count[0]));
    if (n == 0) return Status::ok();
    const int64_t lo = n * rank_ / N, hi = n * (rank_ + 1) / N;
    float* out = scratch.data();
    const float* const* src = s_->ptr.data();
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
    s_->ptr[rank_] = in;
    s_->count[rank_] = rows;
    s_->cols[rank_] = cols;
    DS_RETURN_IF_ERROR(s_->barrier());
    for (int q = 0; q < N; ++q)
      if (s_->count[q] != s_->count[0] || s_->cols[q] != s_->cols[0] || rows < 0 || cols < 0)
        return invalidArgument("allGather: rank " + std::to_string(q) + " passed [" +
                               std::to_string(s_->count[q]) + ", " + std::to_string(s_->cols[q]) +
                               "], rank 0 [" + std::to_string(s_->count[0]) + ", " +
                               std::to_string(s_->cols[0]) + "]");
    const size_t row_bytes = static_cast<size_t>(cols) * sizeof(float);
    for (int q = 0; q < N; ++q)
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(out + (r * N + q) * cols, s_->ptr[q] + r * cols, row_bytes);
    // Peers may overwrite their `in` as soon as they return: wait until everyone has copied.
    return s_->barrier();
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

void InProcessGroup::reset() {
  // An abort can leave ranks a different number of all-reduces apart.
  std::fill(state_->parity.begin(), state_->parity.end(), 0);
  state_->arrived.store(0, std::memory_order_relaxed);
  state_->aborted.store(false, std::memory_order_release);
}

}  // namespace ds

// RankWorkers: a start generation and a pending count under one mutex, two condition variables.
#include "exec/rank_workers.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "cpu/cpu_kernels.h"

namespace ds {

struct RankWorkers::State {
  std::mutex mu;
  std::condition_variable start, done;
  uint64_t generation = 0;  // bumped once per run()
  int pending = 0;          // workers still running the current job
  bool stop = false;
  const std::function<void(int)>* job = nullptr;
  std::vector<std::thread> threads;

  void loop(int rank, int kernel_threads) {
    cpu::setThreadLocalNumThreads(kernel_threads);
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* f;
      {
        std::unique_lock<std::mutex> lock(mu);
        start.wait(lock, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
        f = job;
      }
      (*f)(rank);
      std::lock_guard<std::mutex> lock(mu);
      if (--pending == 0) done.notify_one();
    }
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    start.notify_all();
    for (std::thread& t : threads) t.join();
    threads.clear();
  }
};

StatusOr<std::unique_ptr<RankWorkers>> RankWorkers::create(int ranks, int kernel_threads) {
  if (ranks < 1) return invalidArgument("RankWorkers: " + std::to_string(ranks) + " ranks");
  std::unique_ptr<RankWorkers> w(new RankWorkers());
  w->state_ = std::make_unique<State>();
  State* s = w->state_.get();
  try {
    for (int r = 0; r < ranks; ++r) s->threads.emplace_back([s, r, kernel_threads] { s->loop(r, kernel_threads); });
  } catch (const std::system_error& e) {
    s->shutdown();
    return Status(DS_OUT_OF_MEMORY, std::string("cannot start the tensor-parallel rank threads: ") + e.what());
  }
  return w;
}

RankWorkers::~RankWorkers() {
  if (state_) state_->shutdown();
}

int RankWorkers::size() const { return static_cast<int>(state_->threads.size()); }

void RankWorkers::run(const std::function<void(int)>& job) {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.job = &job;
    s.pending = static_cast<int>(s.threads.size());
    ++s.generation;
  }
  s.start.notify_all();
  std::unique_lock<std::mutex> lock(s.mu);
  s.done.wait(lock, [&] { return s.pending == 0; });
  s.job = nullptr;
}

}  // namespace ds

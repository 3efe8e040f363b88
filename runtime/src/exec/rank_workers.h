// RankWorkers: one persistent thread per tensor-parallel rank, handed a job every step.
#pragma once

#include <functional>
#include <memory>

#include "base/status.h"

namespace ds {

// Threads are created once (create) and joined by the destructor: a step only wakes them.
// Each worker limits the CPU kernels to `kernel_threads` threads on itself, so N concurrent
// ranks do not each fork a team sized for the whole machine.
class RankWorkers {
 public:
  static StatusOr<std::unique_ptr<RankWorkers>> create(int ranks, int kernel_threads);
  ~RankWorkers();
  RankWorkers(const RankWorkers&) = delete;
  RankWorkers& operator=(const RankWorkers&) = delete;

  int size() const;
  // Runs job(r) on worker r for every rank concurrently; returns once all have returned.
  // Not reentrant: one run at a time (ModelRunner::step is not thread-safe either).
  void run(const std::function<void(int)>& job);

  struct State;

 private:
  RankWorkers() = default;
  std::unique_ptr<State> state_;
};

}  // namespace ds

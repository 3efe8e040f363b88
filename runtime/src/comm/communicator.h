// Communicator: the collectives tensor-parallel ranks use (all-reduce, all-gather), and the
// in-process group that joins N ranks running on N threads of one process.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"

namespace ds {

// One rank's handle on a group of `size()` ranks. This is the interface an NCCL communicator
// implements too, so it assumes nothing about where memory lives: pointers are in the memory of
// the rank's device (host memory for InProcessGroup, device memory for NCCL) and the calls may
// be asynchronous with respect to the host on such devices (ordered on the rank's stream).
//
// Collectives: every rank of the group calls the same collectives in the same order with the same
// sizes. Results are deterministic: the same inputs give the same bits on every run and every
// rank, whatever the thread (or stream) timing.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // data[i] = sum over ranks 0..size-1 of data[i] (n elements per rank), added in rank order
  // (((x0 + x1) + x2) + ...) so every rank gets the same bits.
  virtual Status allReduceSum(float* data, int64_t n) = 0;
  // out[rows, cols * size]: rank r's in[rows, cols] lands in columns [r cols, (r + 1) cols).
  // `out` must not overlap `in`.
  virtual Status allGather(const float* in, int64_t rows, int64_t cols, float* out) = 0;
};

// N communicators for N threads of one process over host memory. Ranks meet at a barrier (spin
// briefly, yield, then block on a condition variable, so more ranks than cores still make
// progress). Small all-reduces (<= 64Ki elements) and all-gathers copy each rank's input into a
// slot of its own before one barrier, then every rank reads all slots; large all-reduces split
// the elements into N ranges, rank r sums range r in rank order into a shared scratch buffer,
// and after a second barrier every rank copies the whole result out. Either way each element is
// x0 + x1 + ... in rank order, so all ranks get the same bits.
class InProcessGroup {
 public:
  // size in [1, 64].
  static StatusOr<std::unique_ptr<InProcessGroup>> create(int size);
  ~InProcessGroup();
  InProcessGroup(const InProcessGroup&) = delete;
  InProcessGroup& operator=(const InProcessGroup&) = delete;

  int size() const;
  // The communicator of `rank` (owned by the group); use each from one thread at a time.
  Communicator* rank(int rank);

  // Makes every collective in progress or to come return UNAVAILABLE, so peers of a rank that
  // failed mid-step do not wait for it forever. Safe from any thread.
  void abort();
  // Clears an abort once no rank is inside a collective (e.g. after all ranks returned).
  void reset();

  struct State;

 private:
  InProcessGroup() = default;
  std::unique_ptr<State> state_;
  std::vector<std::unique_ptr<Communicator>> ranks_;
};

}  // namespace ds

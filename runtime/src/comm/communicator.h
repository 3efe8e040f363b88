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

  // Byte exchanges, the transport a device composes its own collectives from (the CUDA device
  // plans its deterministic all-reduce as exchanges plus kernels of its own: docs/tensor_parallel.md
  // "Collectives on GPUs"; expert parallelism's dispatch/combine is an allToAllV). Defaults:
  // UNSUPPORTED (the in-process group serves the f32 collectives above only).
  //
  // out[size][bytes]: rank r's `in` (bytes) lands at out + r * bytes; `in` may be out + rank * bytes.
  virtual Status allGatherBytes(const void* in, uint64_t bytes, void* out);
  // One piece per peer each way: to[p] is the part of `send` for rank p, from[p] where rank p's
  // part for this rank lands in `recv` (its size must equal that rank's to[this rank].bytes).
  // A rank's piece to itself is copied. Received ranges must not overlap sent ones.
  struct Piece {
    uint64_t offset = 0, bytes = 0;
  };
  virtual Status allToAllV(const void* send, const Piece* to, void* recv, const Piece* from);
};

// The communicators of one group of ranks (one per rank this process drives), and what a runner
// does when a rank fails mid-step.
class CommGroup {
 public:
  virtual ~CommGroup() = default;
  virtual int size() const = 0;
  // The communicator of `rank` (owned by the group); use each from one thread at a time.
  virtual Communicator* rank(int rank) = 0;
  // Makes every collective in progress or to come fail (UNAVAILABLE), so peers of a rank that
  // failed mid-step do not wait for it forever. Safe from any thread.
  virtual void abort() = 0;
  // Makes the group usable again once no rank is inside a collective (after all ranks returned);
  // an error when it cannot (the runner then reports it with the step's).
  virtual Status reset() = 0;
};

// N communicators for N threads of one process over host memory. Ranks meet at a barrier (spin
// briefly, yield, then block on a condition variable, so more ranks than cores still make
// progress). Small all-reduces (<= 64Ki elements) and all-gathers copy each rank's input into a
// slot of its own before one barrier, then every rank reads all slots; large all-reduces split
// the elements into N ranges, rank r sums range r in rank order into a shared scratch buffer,
// and after a second barrier every rank copies the whole result out. Either way each element is
// x0 + x1 + ... in rank order, so all ranks get the same bits.
class InProcessGroup final : public CommGroup {
 public:
  // size in [1, 64].
  static StatusOr<std::unique_ptr<InProcessGroup>> create(int size);
  ~InProcessGroup() override;
  InProcessGroup(const InProcessGroup&) = delete;
  InProcessGroup& operator=(const InProcessGroup&) = delete;

  int size() const override;
  Communicator* rank(int rank) override;
  void abort() override;
  // Clears an abort (always succeeds).
  Status reset() override;

  struct State;

 private:
  InProcessGroup() = default;
  std::unique_ptr<State> state_;
  std::vector<std::unique_ptr<Communicator>> ranks_;
};

}  // namespace ds

// Tensor-parallel GPU ranks over NCCL (docs/tensor_parallel.md "Collectives on GPUs"): one
// communicator per rank this process drives, each ordered on its CudaDevice's stream. NCCL only
// moves bytes (all-gather, grouped send/receive); the launch builder composes the all-reduce from
// them and the library's rank-ordered sum, so results are deterministic and batch invariant.
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "hal/cuda/nccl_library.h"

namespace ds::hal::cuda {

class CudaDevice;

// Where this process's ranks sit in the world: world_size ranks in all, this process drives
// ranks [first_rank, first_rank + devices.size()). One process (the default): first_rank 0,
// world_size = devices.size(), and the unique id is made here.
struct NcclWorld {
  int world_size = 0, first_rank = 0;
  bool have_id = false;  // false: ncclGetUniqueId (single process)
  ncclUniqueId id{};
};

class NcclGroup final : public CommGroup {
 public:
  // Joins `devices` (this process's ranks, in order) into the world. UNAVAILABLE when NCCL cannot
  // load or initialize (the message says which and what to install).
  static StatusOr<std::unique_ptr<NcclGroup>> create(const NcclLibrary& lib,
                                                     const std::vector<CudaDevice*>& devices,
                                                     const NcclWorld& world);
  ~NcclGroup() override;
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int size() const override { return static_cast<int>(ranks_.size()); }
  Communicator* rank(int r) override;
  // Every collective from now on fails (UNAVAILABLE) until reset(); safe from any thread. Once no
  // rank thread is inside an NCCL call (they hold `calls_` shared; waited for up to 2 s), the
  // communicators are aborted too (ncclCommAbort), releasing kernels that wait for the failed
  // rank - a peer blocked in a stream synchronize mid-step would otherwise never return. If a
  // call does not finish in time, reset() aborts them instead.
  void abort() override;
  // After an abort, once no rank thread is inside a collective: ncclCommAbort on every
  // communicator (releasing kernels still waiting for the failed rank), then new ones (a new
  // unique id; single process only) inside the same Communicator objects.
  Status reset() override;

 private:
  NcclGroup(const NcclLibrary& lib, std::vector<CudaDevice*> devices, NcclWorld world)
      : lib_(lib), devices_(std::move(devices)), world_(world) {}
  Status init();
  void destroy(bool abort);

  const NcclLibrary& lib_;
  std::vector<CudaDevice*> devices_;
  NcclWorld world_;
  std::vector<ncclComm_t> comms_;
  std::vector<std::unique_ptr<Communicator>> ranks_;
  std::atomic<bool> abort_flag_{false};  // abort() was called; read by the communicators
  std::shared_timed_mutex calls_;        // held shared by each communicator call
};

}  // namespace ds::hal::cuda

// ProcessWorld: the processes of a multi-process (multi-node) tensor-parallel run and the TCP
// channel between them (docs/tensor_parallel.md "Multi-node"). Process 0 (the leader: the engine,
// the scheduler, the sampler, the HTTP server) listens; every other process (a follower) connects
// to it. The channel carries the bootstrap (NCCL's unique id, the KV cache size), each step's
// batch from the leader, and - on the host target, one rank per process - the collectives.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "comm/communicator.h"

namespace ds {

// Where this process sits, as the launcher said it (mpirun, torchrun, srun or by hand).
struct WorldConfig {
  int size = 1, rank = 0;
  int local_rank = 0;           // this process's index on its node (picks its GPUs)
  std::string master_addr;      // the leader's host name or address
  int master_port = 29500;
  double timeout_s = 300;       // connecting, and waiting for a peer's message
};

// Reads, first found wins: DS_WORLD_SIZE / DS_RANK / DS_LOCAL_RANK, OpenMPI's
// OMPI_COMM_WORLD_SIZE / _RANK / _LOCAL_RANK, torchrun's WORLD_SIZE / RANK / LOCAL_RANK, Slurm's
// SLURM_NTASKS / SLURM_PROCID / SLURM_LOCALID; DS_MASTER_ADDR or MASTER_ADDR (required when the
// size is above 1), DS_MASTER_PORT or MASTER_PORT (29500), DS_WORLD_TIMEOUT_S (300). Size 1
// when none is set. INVALID_ARGUMENT naming the variable for values that do not parse or fit.
StatusOr<WorldConfig> worldConfigFromEnvironment();

class ProcessWorld {
 public:
  // Process 0 listens on master_port and accepts size - 1 followers (each says its rank and the
  // size it was told: a duplicate or a mismatch is refused by name); a follower connects to
  // master_addr:master_port, retrying until timeout_s. UNAVAILABLE naming the address on failure.
  static StatusOr<std::unique_ptr<ProcessWorld>> connect(const WorldConfig& config);
  ~ProcessWorld();
  ProcessWorld(const ProcessWorld&) = delete;
  ProcessWorld& operator=(const ProcessWorld&) = delete;

  int rank() const { return config_.rank; }
  int size() const { return config_.size; }
  const WorldConfig& config() const { return config_; }

  // Leader: sends `bytes` to every follower. Follower: replaces `bytes` with the leader's,
  // waiting at most timeout_s, or (idle = true: a follower between steps, whose leader may serve
  // nothing for hours) until the message comes or the leader's connection closes.
  Status broadcast(std::vector<uint8_t>* bytes, bool idle = false);
  // Leader: sends `bytes` to every follower it can still reach, ignoring failures (the end of a
  // run: one dead follower must not keep the others waiting).
  void tellEveryone(const std::vector<uint8_t>& bytes);
  // Star exchanges with the leader (follower: peer must be 0; leader: peer is a follower).
  Status send(int peer, const void* data, uint64_t bytes);
  Status recv(int peer, void* data, uint64_t bytes, bool idle = false);

 private:
  ProcessWorld() = default;
  int socketOf(int peer) const;
  WorldConfig config_;
  std::vector<int> sockets_;  // leader: per follower rank (index = rank); follower: [0] the leader
};

// Where a group's ranks sit (Device::createCommGroup): ranks [first_rank, first_rank + local) of
// world_ranks tensor-parallel ranks, with `world` the processes' channel (null: every rank in
// this process).
struct CommPlacement {
  ProcessWorld* world = nullptr;
  int first_rank = 0;
  int world_ranks = 0;  // 0: the group's local ranks are all of them
};

// The host's collectives between processes, one tensor-parallel rank per process: through the
// leader, which adds every rank's data in rank order (x0 + x1 + ...) and sends the sum back, so
// results are the in-process group's bits. The group has one communicator: this process's rank.
StatusOr<std::unique_ptr<CommGroup>> createProcessGroup(ProcessWorld& world);

}  // namespace ds

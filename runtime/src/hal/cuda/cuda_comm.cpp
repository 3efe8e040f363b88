// NcclGroup and its communicators (cuda_comm.h). Not yet run on a GPU: CI runs them against a fake
// NCCL (test/unit/hal/fake_nccl) over the fake driver's memory.
#include "hal/cuda/cuda_comm.h"

#include <chrono>
#include <cstring>


#include "comm/process_world.h"
#include "hal/cuda/cuda_device.h"

namespace ds::hal::cuda {

namespace {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const NcclLibrary& lib, CudaDevice& device, ncclComm_t comm, int rank, int size,
                   const std::atomic<bool>* aborted, std::shared_timed_mutex* calls)
      : lib_(lib), device_(device), comm_(comm), rank_(rank), size_(size), aborted_(aborted), calls_(calls) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // A rejoined group (NcclGroup::reset) keeps its communicators (ranks hold their addresses) and
  // swaps the NCCL handle inside.
  void setComm(ncclComm_t comm) { comm_ = comm; }

  Status allReduceSum(float*, int64_t) override {
    return unsupported("the CUDA device plans all-reduce as exchanges and its own sum kernel");
  }
  Status allGather(const float*, int64_t, int64_t, float*) override {
    return unsupported("the CUDA device plans all-gather as an exchange and its own copies");
  }

  Status allGatherBytes(const void* in, uint64_t bytes, void* out) override {
    std::shared_lock<std::shared_timed_mutex> in_call(*calls_);
    DS_RETURN_IF_ERROR(ready("ncclAllGather"));
    return lib_.check(lib_.ncclAllGather(in, out, bytes, kNcclUint8, comm_, device_.cuStream()),
                      "ncclAllGather(" + std::to_string(bytes) + " bytes per rank)", comm_);
  }

  Status allToAllV(const void* send, const Piece* to, void* recv, const Piece* from) override {
    std::shared_lock<std::shared_timed_mutex> in_call(*calls_);
    DS_RETURN_IF_ERROR(ready("allToAllV"));
    const auto* s = static_cast<const uint8_t*>(send);
    auto* r = static_cast<uint8_t*>(recv);
    DS_RETURN_IF_ERROR(lib_.check(lib_.ncclGroupStart(), "ncclGroupStart", comm_));
    Status first;
    for (int p = 0; p < size_ && first.isOk(); ++p) {
      // Zero-byte pieces are skipped on both sides (the sender's to[p] and the receiver's
      // from[sender] have the same size by contract).
      if (to[p].bytes)
        first = lib_.check(lib_.ncclSend(s + to[p].offset, to[p].bytes, kNcclUint8, p, comm_, device_.cuStream()),
                           "ncclSend(" + std::to_string(to[p].bytes) + " bytes to rank " + std::to_string(p) + ")", comm_);
      if (first.isOk() && from[p].bytes)
        first = lib_.check(lib_.ncclRecv(r + from[p].offset, from[p].bytes, kNcclUint8, p, comm_, device_.cuStream()),
                           "ncclRecv(" + std::to_string(from[p].bytes) + " bytes from rank " + std::to_string(p) + ")", comm_);
    }
    const Status end = lib_.check(lib_.ncclGroupEnd(), "ncclGroupEnd (all-to-all)", comm_);
    return first.isOk() ? end : first;
  }

 private:
  Status ready(const char* what) {
    if (aborted_->load(std::memory_order_acquire))
      return Status(DS_UNAVAILABLE, std::string(what) + ": the tensor-parallel group was aborted (a rank failed)");
    return device_.bind();  // NCCL enqueues on the current context's device
  }

  const NcclLibrary& lib_;
  CudaDevice& device_;
  ncclComm_t comm_;
  const int rank_, size_;
  const std::atomic<bool>* aborted_;
  std::shared_timed_mutex* calls_;
};

}  // namespace

StatusOr<std::unique_ptr<NcclGroup>> NcclGroup::create(const NcclLibrary& lib,
                                                       const std::vector<CudaDevice*>& devices,
                                                       const NcclWorld& world) {
  NcclWorld w = world;
  if (w.world_size == 0) w.world_size = static_cast<int>(devices.size());
  if (devices.empty() || w.first_rank < 0 || w.first_rank + static_cast<int>(devices.size()) > w.world_size)
    return invalidArgument("NCCL group: ranks [" + std::to_string(w.first_rank) + ", " +
                           std::to_string(w.first_rank + static_cast<int>(devices.size())) +
                           ") do not fit a world of " + std::to_string(w.world_size));
  std::unique_ptr<NcclGroup> g(new NcclGroup(lib, devices, w));
  DS_RETURN_IF_ERROR(g->init());
  return g;
}

Status NcclGroup::init() {
  if (!world_.have_id) {
    if (world_.first_rank != 0 || world_.world_size != static_cast<int>(devices_.size()))
      return invalidArgument("NCCL group: a multi-process world needs rank 0's unique id");
    DS_RETURN_IF_ERROR(lib_.check(lib_.ncclGetUniqueId(&world_.id), "ncclGetUniqueId"));
  }
  // One thread initializes every local rank: inside a group, each with its device current.
  comms_.assign(devices_.size(), nullptr);
  DS_RETURN_IF_ERROR(lib_.check(lib_.ncclGroupStart(), "ncclGroupStart (init)"));
  Status first;
  for (size_t i = 0; i < devices_.size() && first.isOk(); ++i) {
    first = devices_[i]->bind();
    if (first.isOk())
      first = lib_.check(lib_.ncclCommInitRank(&comms_[i], world_.world_size, world_.id,
                                               world_.first_rank + static_cast<int>(i)),
                         "ncclCommInitRank(rank " + std::to_string(world_.first_rank + static_cast<int>(i)) +
                             " of " + std::to_string(world_.world_size) + ", " + devices_[i]->info().name + ")");
  }
  const Status end = lib_.check(lib_.ncclGroupEnd(), "ncclGroupEnd (init of " +
                                                         std::to_string(world_.world_size) + " ranks)");
  if (!first.isOk() || !end.isOk()) {
    destroy(true);
    return first.isOk() ? end : first;
  }
  // The communicators live as long as the group: executors keep their addresses across reset().
  if (ranks_.empty())
    for (size_t i = 0; i < devices_.size(); ++i)
      ranks_.push_back(std::make_unique<NcclCommunicator>(lib_, *devices_[i], comms_[i],
                                                          world_.first_rank + static_cast<int>(i),
                                                          world_.world_size, &abort_flag_, &calls_));
  else
    for (size_t i = 0; i < devices_.size(); ++i) static_cast<NcclCommunicator*>(ranks_[i].get())->setComm(comms_[i]);
  abort_flag_.store(false, std::memory_order_release);
  return Status::ok();
}

void NcclGroup::destroy(bool abort) {
  for (size_t i = 0; i < comms_.size(); ++i) {
    if (!comms_[i]) continue;
    (void)devices_[i]->bind();
    (void)(abort ? lib_.ncclCommAbort(comms_[i]) : lib_.ncclCommDestroy(comms_[i]));
    comms_[i] = nullptr;
  }
}

NcclGroup::~NcclGroup() { destroy(abort_flag_.load(std::memory_order_acquire)); }

Communicator* NcclGroup::rank(int r) {
  return r >= 0 && r < static_cast<int>(ranks_.size()) ? ranks_[static_cast<size_t>(r)].get() : nullptr;
}

void NcclGroup::abort() {
  abort_flag_.store(true, std::memory_order_release);  // later calls fail at once
  // Calls in flight (NCCL enqueues without waiting for peers) finish on live communicators first.
  std::unique_lock<std::shared_timed_mutex> no_calls(calls_, std::defer_lock);
  if (no_calls.try_lock_for(std::chrono::seconds(2))) destroy(true);
}

Status NcclGroup::reset() {
  if (!abort_flag_.load(std::memory_order_acquire)) return Status::ok();
  destroy(true);  // ncclCommAbort: frees them and releases kernels still waiting on a peer
  if (world_.world_size != static_cast<int>(devices_.size()))
    return Status(DS_UNAVAILABLE, "a multi-process NCCL world cannot rejoin after a rank failed: restart every process");
  world_.have_id = false;
  return init();
}

StatusOr<std::unique_ptr<CommGroup>> CudaDevice::createCommGroup(const std::vector<Device*>& ranks,
                                                                  const CommPlacement& where) {
  std::vector<CudaDevice*> devices;
  for (Device* d : ranks) {
    auto* cuda = dynamic_cast<CudaDevice*>(d);
    if (!cuda) return invalidArgument("an NCCL group joins CUDA devices only");
    devices.push_back(cuda);
  }
  StatusOr<const NcclLibrary*> lib = loadNccl();
  if (!lib.isOk()) return lib.status();
  NcclWorld world;
  world.world_size = where.world_ranks > 0 ? where.world_ranks : static_cast<int>(devices.size());
  world.first_rank = where.first_rank;
  if (where.world && where.world->size() > 1) {
    // Several processes: the leader makes NCCL's unique id and sends it to every follower over
    // the processes' channel (NCCL's own bootstrap then runs over TCP between the ranks).
    std::vector<uint8_t> id(sizeof(ncclUniqueId));
    if (where.world->rank() == 0)
      DS_RETURN_IF_ERROR((*lib)->check((*lib)->ncclGetUniqueId(reinterpret_cast<ncclUniqueId*>(id.data())),
                                       "ncclGetUniqueId"));
    DS_RETURN_IF_ERROR(where.world->broadcast(&id));
    if (id.size() != sizeof(ncclUniqueId)) return dataLoss("the leader sent an NCCL id of " + std::to_string(id.size()) + " bytes");
    std::memcpy(&world.id, id.data(), sizeof world.id);
    world.have_id = true;
  }
  StatusOr<std::unique_ptr<NcclGroup>> group = NcclGroup::create(**lib, devices, world);
  if (!group.isOk()) return group.status();
  return std::unique_ptr<CommGroup>(std::move(group).value());
}

}  // namespace ds::hal::cuda

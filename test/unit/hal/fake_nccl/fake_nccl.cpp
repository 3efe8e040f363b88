// The fake NCCL (fake_nccl.h): communicators of one process meeting in per-pair mailboxes over
// the fake CUDA driver's (host) memory. Sends are posted before receives wait, so a group's
// all-to-all never deadlocks; every exchange runs in stream order through the fake driver
// (now, or at each replay of a captured graph).
#include "fake_nccl.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "fake_cuda.h"
#include "hal/cuda/nccl_library.h"

using namespace ds::hal::cuda;

#define FAKE_NCCL_DECLARE(name, type) \
  extern "C" __attribute__((visibility("default"))) std::remove_pointer_t<NcclLibrary::name##_fn> name;
DS_NCCL_SYMBOLS(FAKE_NCCL_DECLARE)
DS_NCCL_OPTIONAL_SYMBOLS(FAKE_NCCL_DECLARE)
#undef FAKE_NCCL_DECLARE

namespace {

constexpr ncclResult_t kUnhandledCuda = 1, kInternal = 3, kInvalidArgument = 4, kInvalidUsage = 5;

struct Message {
  int kind = 0;  // 0 send/recv, 1 all-gather
  std::vector<uint8_t> bytes;
};

struct World {
  int nranks = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::map<int, int> device_of;                            // rank -> device
  std::map<std::pair<int, int>, std::deque<Message>> mail;  // (from, to)
  bool aborted = false;  // ncclCommAbort, or a rank's call failed (a peer never sends: give up)
};

struct Comm {
  std::shared_ptr<World> world;
  int rank = 0, device = 0;
  bool live = true;
};

struct Op {
  enum Kind { Send, Recv, AllGather } kind = Send;
  Comm* comm = nullptr;
  const uint8_t* send = nullptr;
  uint8_t* recv = nullptr;
  size_t bytes = 0;
  int peer = 0;
  uint64_t stream = 0;
};
struct Batch {
  std::vector<Op> ops;
  bool recorded = false;  // captured into a graph: each run is a replay
};

struct State {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<World>> worlds;
  std::map<std::string, size_t> calls;
  std::map<std::string, std::pair<size_t, ncclResult_t>> failures;
  std::deque<std::unique_ptr<Batch>> captured;  // live as long as the process (graphs replay them)
  std::vector<Comm*> comms;
  uint64_t moved = 0, id_counter = 0;
  size_t replayed = 0;
  std::string last_error;
};
State& state() {
  static State* s = new State();
  return *s;
}
thread_local int group_depth = 0;
thread_local std::vector<Op> pending;

ncclResult_t fail(ncclResult_t r, const std::string& why) {
  state().last_error = why;
  return r;
}
// Counts the call and fires an armed failure (state().mu held by the caller).
ncclResult_t enter(const char* symbol) {
  State& s = state();
  const size_t n = ++s.calls[symbol];
  auto it = s.failures.find(symbol);
  if (it != s.failures.end() && it->second.first == n) {
    const ncclResult_t r = it->second.second;
    s.failures.erase(it);
    return fail(r, std::string(symbol) + ": failure armed by the test");
  }
  return 0;
}
#define FAKE_NCCL_ENTER(symbol)                       \
  std::unique_lock<std::mutex> lock_(state().mu);    \
  if (ncclResult_t r_ = enter(symbol)) return r_;

int timeoutSeconds() {
  const char* t = std::getenv("FAKE_NCCL_TIMEOUT_S");
  return t && std::atoi(t) > 0 ? std::atoi(t) : 20;
}

// Runs one batch: every send and all-gather contribution posted, then every receive waits.
void runBatch(Batch& b) {
  for (const Op& op : b.ops) {
    World& w = *op.comm->world;
    std::lock_guard<std::mutex> lock(w.mu);
    if (op.kind == Op::Send) w.mail[{op.comm->rank, op.peer}].push_back({0, {op.send, op.send + op.bytes}});
    if (op.kind == Op::AllGather)
      for (int p = 0; p < w.nranks; ++p) w.mail[{op.comm->rank, p}].push_back({1, {op.send, op.send + op.bytes}});
    w.cv.notify_all();
  }
  uint64_t moved = 0;
  for (const Op& op : b.ops) {
    if (op.kind == Op::Send) continue;
    World& w = *op.comm->world;
    const int n = op.kind == Op::AllGather ? w.nranks : 1;
    for (int i = 0; i < n; ++i) {
      const int from = op.kind == Op::AllGather ? i : op.peer;
      std::unique_lock<std::mutex> lock(w.mu);
      auto& box = w.mail[{from, op.comm->rank}];
      const bool got = w.cv.wait_for(lock, std::chrono::seconds(timeoutSeconds()),
                                     [&] { return w.aborted || !box.empty(); });
      if (w.aborted) return;  // ncclCommAbort: the exchange gives up
      if (!got) {
        std::fprintf(stderr, "fake_nccl: rank %d waited %d s for rank %d: a peer never sent (mismatched collectives?)\n",
                     op.comm->rank, timeoutSeconds(), from);
        std::abort();
      }
      Message m = std::move(box.front());
      box.pop_front();
      const int want = op.kind == Op::AllGather ? 1 : 0;
      if (m.kind != want || m.bytes.size() != op.bytes) {
        std::fprintf(stderr, "fake_nccl: rank %d expected %s of %zu bytes from rank %d, got %s of %zu\n",
                     op.comm->rank, want ? "an all-gather part" : "a send", op.bytes, from,
                     m.kind ? "an all-gather part" : "a send", m.bytes.size());
        std::abort();
      }
      std::memcpy(op.recv + (op.kind == Op::AllGather ? static_cast<size_t>(i) * op.bytes : 0), m.bytes.data(),
                  m.bytes.size());
      moved += m.bytes.size();
    }
  }
  std::lock_guard<std::mutex> lock(state().mu);
  state().moved += moved;
  if (b.recorded) ++state().replayed;
}

void runQueued(void* arg) { runBatch(*static_cast<Batch*>(arg)); }

// Queues `ops` (one stream) on the fake driver: now, or into the stream's capture.
ncclResult_t submit(std::vector<Op> ops, std::unique_lock<std::mutex>& lock) {
  if (ops.empty()) return 0;
  for (const Op& op : ops)
    if (op.stream != ops[0].stream) return fail(kInvalidUsage, "fake_nccl: one group's exchanges on two streams (not supported by the fake)");
  auto batch = std::make_unique<Batch>();
  batch->ops = std::move(ops);
  const uint64_t stream = batch->ops[0].stream;
  lock.unlock();
  const int r = fake_cuda_enqueue_host(stream, runQueued, batch.get());  // runs now, or is recorded
  lock.lock();
  if (r > 1) return fail(kUnhandledCuda, "fake_nccl: unknown stream");
  if (r == 1) {  // recorded: the graph replays it for as long as the process lives
    batch->recorded = true;
    state().captured.push_back(std::move(batch));
  }
  return 0;
}

ncclResult_t checkOp(const char* what, Comm* c, const void* buf, size_t bytes, int peer) {
  std::vector<Comm*>& all = state().comms;
  bool known = false;
  for (Comm* x : all) known = known || x == c;
  if (!known || !c->live) return fail(kInvalidArgument, std::string(what) + ": not a live communicator");
  if (c->world->aborted) return fail(kInternal, std::string(what) + ": the communicator's world was aborted");
  if (peer < 0 || peer >= c->world->nranks) return fail(kInvalidArgument, std::string(what) + ": peer out of range");
  if (bytes && !fake_cuda_is_device_range(reinterpret_cast<uint64_t>(buf), bytes))
    return fail(kInvalidArgument, std::string(what) + ": [buffer, +" + std::to_string(bytes) +
                                      ") is not inside one live device allocation");
  if (fake_cuda_current_device() != c->device)
    return fail(kInvalidUsage, std::string(what) + ": called with device " + std::to_string(fake_cuda_current_device()) +
                                   " current, the communicator is on device " + std::to_string(c->device));
  return 0;
}

// A rank's exchange failed (an armed failure): its peers would wait for it forever on a GPU; here
// they give up (their received bytes stay as they were), as after ncclCommAbort.
void poison(ncclComm_t comm) {
  auto* c = reinterpret_cast<Comm*>(comm);
  for (Comm* x : state().comms)
    if (x == c) {
      std::lock_guard<std::mutex> lock(c->world->mu);
      c->world->aborted = true;
      c->world->cv.notify_all();
    }
}

ncclResult_t queueOp(Op op, std::unique_lock<std::mutex>& lock) {
  if (group_depth > 0) {
    pending.push_back(op);
    return 0;
  }
  return submit({op}, lock);
}

}  // namespace

extern "C" {

ncclResult_t ncclGetVersion(int* v) {
  FAKE_NCCL_ENTER("ncclGetVersion");
  *v = 22803;
  return 0;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  FAKE_NCCL_ENTER("ncclGetUniqueId");
  std::memset(id->internal, 0, sizeof id->internal);
  std::snprintf(id->internal, sizeof id->internal, "fake-nccl-%llu", static_cast<unsigned long long>(++state().id_counter));
  return 0;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  FAKE_NCCL_ENTER("ncclCommInitRank");
  const int device = fake_cuda_current_device();
  if (device < 0) return fail(kInvalidUsage, "ncclCommInitRank: no current CUDA context on this thread");
  if (nranks < 1 || rank < 0 || rank >= nranks) return fail(kInvalidArgument, "ncclCommInitRank: rank/nranks");
  const std::string key(id.internal, sizeof id.internal);
  auto& w = state().worlds[key];
  if (!w) {
    w = std::make_shared<World>();
    w->nranks = nranks;
  }
  if (w->nranks != nranks) return fail(kInvalidArgument, "ncclCommInitRank: nranks differs between ranks");
  if (w->device_of.count(rank)) return fail(kInvalidUsage, "ncclCommInitRank: rank " + std::to_string(rank) + " joined twice");
  for (const auto& [r, d] : w->device_of)
    if (d == device)
      return fail(kInvalidUsage, "ncclCommInitRank: Duplicate GPU detected: rank " + std::to_string(rank) +
                                     " and rank " + std::to_string(r) + " both on device " + std::to_string(device));
  w->device_of[rank] = device;
  auto* c = new Comm{w, rank, device, true};
  state().comms.push_back(c);
  *comm = reinterpret_cast<ncclComm_t>(c);
  return 0;
}

static ncclResult_t closeComm(ncclComm_t comm, bool abort) {
  auto* c = reinterpret_cast<Comm*>(comm);
  auto& all = state().comms;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] == c) {
      all.erase(all.begin() + static_cast<long>(i));
      if (abort) {
        std::lock_guard<std::mutex> lock(c->world->mu);
        c->world->aborted = true;
        c->world->cv.notify_all();
      }
      c->world->device_of.erase(c->rank);
      delete c;
      return 0;
    }
  return fail(kInvalidArgument, abort ? "ncclCommAbort: not a live communicator" : "ncclCommDestroy: not a live communicator");
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  FAKE_NCCL_ENTER("ncclCommDestroy");
  return closeComm(comm, false);
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  FAKE_NCCL_ENTER("ncclCommAbort");
  return closeComm(comm, true);
}

const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case 0: return "no error";
    case 1: return "unhandled cuda error";
    case 2: return "unhandled system error";
    case 3: return "internal error";
    case 4: return "invalid argument";
    case 5: return "invalid usage";
    case 6: return "remote process exited or there was a network error";
    default: return "unknown result code";
  }
}

const char* ncclGetLastError(ncclComm_t) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().last_error.c_str();
}

ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, int dtype, ncclComm_t comm, CUstream stream) {
  std::unique_lock<std::mutex> lock_(state().mu);
  if (ncclResult_t r_ = enter("ncclAllGather")) return poison(comm), r_;
  if (dtype != kNcclUint8) return fail(kInvalidArgument, "ncclAllGather: the fake moves ncclUint8 only");
  auto* c = reinterpret_cast<Comm*>(comm);
  if (ncclResult_t r = checkOp("ncclAllGather send", c, send, count, 0)) return r;
  if (ncclResult_t r = checkOp("ncclAllGather recv", c, recv, count * static_cast<size_t>(c->world->nranks), 0)) return r;
  Op op;
  op.kind = Op::AllGather;
  op.comm = c;
  op.send = static_cast<const uint8_t*>(send);
  op.recv = static_cast<uint8_t*>(recv);
  op.bytes = count;
  op.stream = reinterpret_cast<uint64_t>(stream);
  return queueOp(op, lock_);
}

ncclResult_t ncclSend(const void* send, size_t count, int dtype, int peer, ncclComm_t comm, CUstream stream) {
  std::unique_lock<std::mutex> lock_(state().mu);
  if (ncclResult_t r_ = enter("ncclSend")) return poison(comm), r_;
  if (dtype != kNcclUint8) return fail(kInvalidArgument, "ncclSend: the fake moves ncclUint8 only");
  auto* c = reinterpret_cast<Comm*>(comm);
  if (ncclResult_t r = checkOp("ncclSend", c, send, count, peer)) return r;
  Op op;
  op.kind = Op::Send;
  op.comm = c;
  op.send = static_cast<const uint8_t*>(send);
  op.bytes = count;
  op.peer = peer;
  op.stream = reinterpret_cast<uint64_t>(stream);
  return queueOp(op, lock_);
}

ncclResult_t ncclRecv(void* recv, size_t count, int dtype, int peer, ncclComm_t comm, CUstream stream) {
  std::unique_lock<std::mutex> lock_(state().mu);
  if (ncclResult_t r_ = enter("ncclRecv")) return poison(comm), r_;
  if (dtype != kNcclUint8) return fail(kInvalidArgument, "ncclRecv: the fake moves ncclUint8 only");
  auto* c = reinterpret_cast<Comm*>(comm);
  if (ncclResult_t r = checkOp("ncclRecv", c, recv, count, peer)) return r;
  Op op;
  op.kind = Op::Recv;
  op.comm = c;
  op.recv = static_cast<uint8_t*>(recv);
  op.bytes = count;
  op.peer = peer;
  op.stream = reinterpret_cast<uint64_t>(stream);
  return queueOp(op, lock_);
}

ncclResult_t ncclGroupStart() {
  FAKE_NCCL_ENTER("ncclGroupStart");
  ++group_depth;
  return 0;
}

ncclResult_t ncclGroupEnd() {
  FAKE_NCCL_ENTER("ncclGroupEnd");
  if (group_depth <= 0) return fail(kInvalidUsage, "ncclGroupEnd without ncclGroupStart");
  if (--group_depth > 0) return 0;
  std::vector<Op> ops = std::move(pending);
  pending.clear();
  return submit(std::move(ops), lock_);
}

void fake_nccl_reset(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  state().calls.clear();
  state().failures.clear();
  state().moved = 0;
  state().replayed = 0;
  state().last_error.clear();
}

size_t fake_nccl_call_count(const char* symbol) {
  std::lock_guard<std::mutex> lock(state().mu);
  auto it = state().calls.find(symbol ? symbol : "");
  return it == state().calls.end() ? 0 : it->second;
}

uint64_t fake_nccl_bytes_moved(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().moved;
}

size_t fake_nccl_replayed_batches(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().replayed;
}

int fake_nccl_live_comms(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return static_cast<int>(state().comms.size());
}

void fake_nccl_fail(const char* symbol, int nth, int result) {
  std::lock_guard<std::mutex> lock(state().mu);
  const size_t done = state().calls[symbol];
  state().failures[symbol] = {done + static_cast<size_t>(nth), result};
}

const char* fake_nccl_last_error(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().last_error.c_str();
}

}  // extern "C"

// ModelRunner: the plan decoded once, one RankExecutor per tensor-parallel rank (each with a
// device of its own), batch validation, and the step's logits view.
#include "exec/model_runner.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "artifact/artifact_info.h"
#include "artifact/artifact_reader.h"
#include "artifact/tensor_parallel.h"
#include "comm/communicator.h"
#include "comm/process_world.h"
#include "exec/rank_executor.h"
#include "exec/rank_workers.h"
#include "exec/step_message.h"
#include "hal/cpu/cpu_device.h"
#include "hal/cpu/generated_kernels.h"
#include "hal/cuda/cuda_code_select.h"
#include "hal/cuda/cuda_device.h"

namespace ds {

namespace {

// The targets an artifact names: Target.name, comma-separated for a fat artifact ("host,sm_90a").
std::vector<std::string> artifactTargets(const artifact::Artifact& artifact) {
  const fb::Target* target = artifact.meta()->target();
  const std::string name = target && target->name() ? target->name()->str() : "host";
  std::vector<std::string> out;
  for (size_t start = 0;;) {
    const size_t comma = name.find(',', start);
    out.push_back(name.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// Why a GPU artifact has no device here, in one line with what to do.
Status noGpu(const artifact::Artifact& artifact, const std::string& gpu, const Status& why) {
  if (why.code() != DS_UNAVAILABLE) return Status(why.code(), artifact.path() + ": " + why.message());
  return Status(DS_UNAVAILABLE, artifact.path() + ": " + why.message() +
                                    ": compile it with --target host to run on the CPU");
}

// The device for an artifact's target (docs/adding_a_backend.md): the CPU for host, the CUDA
// device for sm_80/sm_86/sm_89/sm_90a/sm_100a; a fat artifact takes its GPU target when this
// machine has the GPU, else its host part.
StatusOr<std::unique_ptr<hal::Device>> createDevice(const artifact::Artifact& artifact,
                                                    const hal::DeviceOptions& options) {
  const std::vector<std::string> targets = artifactTargets(artifact);
  bool host = false;
  std::string gpu, other;
  for (const std::string& t : targets) {
    if (t == "host") host = true;
    else if (hal::cuda::isCudaTarget(t) && gpu.empty()) gpu = t;
    else if (!hal::cuda::isCudaTarget(t) && other.empty()) other = t;
  }
  if (!gpu.empty()) {
    StatusOr<std::unique_ptr<hal::Device>> cuda = hal::createCudaDevice(gpu, options);
    if (cuda.isOk()) return cuda;
    if (!host) return noGpu(artifact, gpu, cuda.status());
  }
  if (host) return hal::createCpuDevice(options);
  return unsupported(artifact.path() + ": the artifact is for target '" + other +
                     "', and this runtime has no device for it (it runs 'host', sm_80, sm_86, "
                     "sm_89, sm_90a and sm_100a)");
}
}  // namespace

Status ModelRunner::checkRunsHere(const artifact::Artifact& artifact) {
  const std::vector<std::string> targets = artifactTargets(artifact);
  bool host = false;
  for (const std::string& t : targets) host = host || t == "host";
  if (!host) {
    // A GPU artifact runs here when there is a driver and a GPU (which code object fits the GPU
    // is decided when its modules load); anything else has no device.
    const std::string& t = targets.front();
    if (!hal::cuda::isCudaTarget(t))
      return unsupported(artifact.path() + ": the artifact is for target '" + t +
                         "', and this runtime has no device for it (it runs 'host', sm_80, sm_86, "
                         "sm_89, sm_90a and sm_100a)");
    StatusOr<std::unique_ptr<hal::Device>> cuda = hal::createCudaDevice(t, {});
    return cuda.isOk() ? Status::ok() : noGpu(artifact, t, cuda.status());
  }
  // One host code object this CPU runs (the best of a fat host artifact's levels); GPU code
  // objects of a fat artifact are the CUDA device's business.
  StatusOr<int> chosen = chooseHostCodeObject(artifact);
  return chosen.isOk() ? Status::ok() : chosen.status();
}

struct ModelRunner::Impl {
  const artifact::Artifact* artifact = nullptr;
  hal::StepPlan plan;
  std::vector<std::unique_ptr<RankExecutor>> ranks;
  std::unique_ptr<CommGroup> group;        // tp > 1
  std::unique_ptr<RankWorkers> workers;    // last: joined before the ranks it runs are freed
  int64_t num_blocks = 0;
  // Multi-process runs (docs/tensor_parallel.md "Multi-node"): this process drives ranks
  // [first_rank, first_rank + ranks.size()); the leader (process 0) sends every step to the others.
  std::unique_ptr<ProcessWorld> world;
  int first_rank = 0;
  Status broken;  // set when a multi-process step failed: every later step returns it

  ~Impl();
  Status checkBatch(const StepBatch& b) const;
  // Every local rank's step (in parallel on the workers when there are several).
  Status runLocal(const StepBatch& b);
  // A follower process's life: the leader's steps until it stops.
  Status follow();
};

ModelRunner::Impl::~Impl() {
  if (world && world->rank() == 0) world->tellEveryone(encodeStopMessage());
}

Status ModelRunner::Impl::runLocal(const StepBatch& b) {
  if (!workers) return ranks[0]->runStep(b);
  // The first rank to fail aborts the group so peers waiting in a collective return too;
  // its error (not the peers' "aborted") is the step's.
  const size_t n = ranks.size();
  std::vector<Status> status(n);
  std::atomic<int> first_failure{-1};
  workers->run([&](int r) {
    status[r] = ranks[r]->runStep(b);
    if (status[r].isOk()) return;
    int none = -1;
    if (first_failure.compare_exchange_strong(none, r)) group->abort();
  });
  if (const int r = first_failure.load(); r >= 0) {
    const Status reset = group->reset();
    // Recorded steps (CUDA graphs) captured the old communicators' exchanges: record anew.
    for (auto& rank : ranks) rank->device().dropCaptures();
    return Status(status[r].code(), "tensor-parallel rank " + std::to_string(first_rank + r) + ": " +
                                        status[r].message() +
                                        (reset.isOk() ? "" : " (and the group cannot go on: " + reset.message() + ")"));
  }
  return Status::ok();
}

Status ModelRunner::Impl::follow() {
  std::vector<uint8_t> message;
  for (;;) {
    DS_RETURN_IF_ERROR(world->broadcast(&message, /*idle=*/true));  // a server's leader may idle for hours
    StepBatch b;
    int64_t blocks = 0;
    StatusOr<StepMessage> what = decodeStepMessage(message, &b, &blocks);
    if (!what.isOk()) return what.status();
    if (*what == StepMessage::Stop) return Status::ok();
    if (*what != StepMessage::Step) return dataLoss("leader message: a step or stop expected");
    DS_RETURN_IF_ERROR(checkBatch(b));
    DS_RETURN_IF_ERROR(runLocal(b));
  }
}

Status ModelRunner::Impl::checkBatch(const StepBatch& b) const {
  const size_t T = b.token_ids.size();
  const int64_t vocab = plan.vocab, block_size = plan.kv.block_size;
  if (T == 0) return invalidArgument("a step needs at least one token");
  if (b.positions.size() != T || b.token_seq.size() != T)
    return invalidArgument("token_ids, positions and token_seq must have the same length");
  if (b.num_seqs < 0 || b.max_blocks_per_seq < 0 ||
      b.block_table.size() != static_cast<size_t>(b.num_seqs * b.max_blocks_per_seq))
    return invalidArgument("block_table must hold num_seqs x max_blocks_per_seq entries");
  for (size_t t = 0; t < T; ++t) {
    if (b.token_ids[t] < 0 || b.token_ids[t] >= vocab)
      return invalidArgument("token id " + std::to_string(b.token_ids[t]) +
                             " outside the vocabulary [0, " + std::to_string(vocab) + ")");
    if (b.token_seq[t] < 0 || b.token_seq[t] >= b.num_seqs)
      return invalidArgument("token " + std::to_string(t) + " names sequence " +
                             std::to_string(b.token_seq[t]));
    int64_t pos = b.positions[t];
    int64_t blk = block_size > 0 ? pos / block_size : 0;
    if (pos < 0 || blk >= b.max_blocks_per_seq)
      return invalidArgument("position " + std::to_string(pos) + " is not covered by the block table");
    int32_t id = b.block_table[b.token_seq[t] * b.max_blocks_per_seq + blk];
    if (id < 0 || id >= num_blocks)
      return invalidArgument("position " + std::to_string(pos) + " maps to KV block " +
                             std::to_string(id) + " of " + std::to_string(num_blocks));
  }
  for (int32_t r : b.logit_rows)
    if (r < 0 || static_cast<size_t>(r) >= T)
      return invalidArgument("logit row " + std::to_string(r) + " outside the step's " +
                             std::to_string(T) + " tokens");
  return Status::ok();
}

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelRunner::~ModelRunner() = default;

StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::create(const artifact::Artifact& artifact,
                                                           const RunnerOptions& options) {
  DS_RETURN_IF_ERROR(checkTensorParallel(artifact));
  auto impl = std::make_unique<Impl>();
  impl->artifact = &artifact;
  StatusOr<hal::StepPlan> plan = hal::StepPlan::decode(artifact);
  if (!plan.isOk()) return plan.status();
  impl->plan = std::move(plan).value();
  impl->num_blocks = options.num_kv_blocks;
  const int tp = impl->plan.tp_size;
  hal::applyCpuThreadPolicy({options.num_threads, options.single_thread_below_bytes},
                            impl->plan.weight_bytes);
  // A launcher may have started several processes (mpirun, torchrun, srun): this one drives
  // ranks [first, first + local) of the tp, on its node's GPUs local_rank * local + i.
  // Only a tensor-parallel artifact looks: a tp 1 run inside someone else's job (an sbatch script,
  // an mpirun wrapper) stays one process whatever the launcher's variables say.
  StatusOr<WorldConfig> world = tp > 1 ? worldConfigFromEnvironment() : StatusOr<WorldConfig>(WorldConfig{});
  if (!world.isOk()) return world.status();
  int local = tp, node_slot = 0;
  if (world->size > 1) {
    if (tp % world->size != 0)
      return invalidArgument(artifact.path() + ": " + std::to_string(tp) + " tensor-parallel ranks do not divide over " +
                             std::to_string(world->size) + " processes (compile with a --tp that is a multiple of the "
                             "process count)");
    StatusOr<std::unique_ptr<ProcessWorld>> joined = ProcessWorld::connect(*world);
    if (!joined.isOk()) return joined.status();
    impl->world = std::move(joined).value();
    local = tp / world->size;
    impl->first_rank = world->rank * local;
    node_slot = world->local_rank * local;
    // Every process must run the same file: checked before anything collective (a different
    // --tp would otherwise meet NCCL's initialization with another rank count). The leader sends
    // its artifact's metadata checksum; each follower answers 1 (same) or 0 and stops.
    const uint64_t mine = artifact.header().metadata_xxh64;
    std::vector<uint8_t> id(sizeof mine);
    std::memcpy(id.data(), &mine, sizeof mine);
    DS_RETURN_IF_ERROR(impl->world->broadcast(&id));
    if (world->rank > 0) {
      uint64_t leaders = 0;
      if (id.size() == sizeof leaders) std::memcpy(&leaders, id.data(), sizeof leaders);
      const uint8_t same = leaders == mine ? 1 : 0;
      DS_RETURN_IF_ERROR(impl->world->send(0, &same, 1));
      if (!same)
        return invalidArgument(artifact.path() + ": the leader (process 0) runs another artifact: every process "
                               "of a multi-process run needs the same .dsa file");
    } else {
      for (int p = 1; p < world->size; ++p) {
        uint8_t same = 0;
        const Status st = impl->world->recv(p, &same, 1, /*idle=*/true);
        if (!st.isOk() || same != 1)
          return invalidArgument(artifact.path() + ": follower process " + std::to_string(p) +
                                 " runs another artifact (or could not check it: " + st.message() + ")");
      }
    }
  }
  // Every local rank's device first, then the group joining them (the device kind decides:
  // in-process or between processes on the CPU, NCCL on GPUs).
  std::vector<std::unique_ptr<hal::Device>> devices;
  for (int r = 0; r < local; ++r) {
    hal::DeviceOptions device_options;
    device_options.allow_native_code = options.allow_native_code;
    device_options.gpu_memory_fraction = options.gpu_memory_fraction;
    device_options.device_ordinal = options.device_ordinal + node_slot + r;
    StatusOr<std::unique_ptr<hal::Device>> device = createDevice(artifact, device_options);
    if (!device.isOk()) return device.status();
    if (r > 0 && (*device)->info().target != devices[0]->info().target)
      return unsupported(artifact.path() + ": tensor-parallel rank " + std::to_string(r) + " runs on " +
                         (*device)->info().name + " but rank 0 on " + devices[0]->info().name +
                         ": every rank needs the same kind of device");
    devices.push_back(std::move(device).value());
  }
  if (tp > 1) {
    std::vector<hal::Device*> ranks;
    for (auto& d : devices) ranks.push_back(d.get());
    CommPlacement where;
    where.world = impl->world.get();
    where.first_rank = impl->first_rank;
    where.world_ranks = tp;
    StatusOr<std::unique_ptr<CommGroup>> group = devices[0]->createCommGroup(ranks, where);
    if (!group.isOk())
      return Status(group.status().code(), artifact.path() + ": tensor parallelism over " +
                                               std::to_string(tp) + " ranks: " + group.status().message());
    impl->group = std::move(group).value();
  }
  // Rank 0 sizes an automatic cache (its device's budget); the other ranks hold as many blocks
  // (the engine hands out one block table for all ranks): followers learn it from the leader.
  const bool follower = impl->world && impl->world->rank() > 0;
  if (follower) {
    std::vector<uint8_t> message;
    DS_RETURN_IF_ERROR(impl->world->broadcast(&message));
    StepBatch unused;
    uint64_t leader_artifact = 0;
    StatusOr<StepMessage> what = decodeStepMessage(message, &unused, &impl->num_blocks, &leader_artifact);
    if (!what.isOk()) return what.status();
    if (*what != StepMessage::Blocks) return dataLoss("leader message: the KV block count expected first");
    if (leader_artifact != artifact.header().metadata_xxh64)
      return invalidArgument(artifact.path() + ": the leader (process 0) runs another artifact: every process "
                             "of a multi-process run needs the same .dsa file");
  }
  std::shared_ptr<const hal::Executable> exe;  // rank 0's, offered to the others
  for (int r = 0; r < local; ++r) {
    std::unique_ptr<hal::Device> device = std::move(devices[static_cast<size_t>(r)]);
    RankExecutor::Config config;
    config.rank = impl->first_rank + r;
    config.tp = tp;
    config.comm = impl->group ? impl->group->rank(r) : nullptr;
    config.num_kv_blocks = config.rank == 0 ? options.num_kv_blocks : impl->num_blocks;
    config.kv_fallback_bytes = options.kv_fallback_bytes / static_cast<uint64_t>(tp);
    config.max_step_tokens = options.max_step_tokens;
    if (!options.enforce_eager && impl->plan.kv.block_size > 0) {
      const int64_t context = options.max_model_len > 0
                                  ? options.max_model_len
                                  : (artifact.meta()->model() ? artifact.meta()->model()->max_position_embeddings() : 0);
      config.max_graph_batch = std::min<int64_t>(options.max_step_tokens, 256);
      config.graph_max_blocks = (context + impl->plan.kv.block_size - 1) / impl->plan.kv.block_size;
      // The budget keeps room for every bucket's graph (captured lazily, as batches come).
      config.num_graph_buckets = device->captureBuckets(config.max_graph_batch).size();
    }
    StatusOr<std::unique_ptr<RankExecutor>> rank =
        RankExecutor::create(artifact, impl->plan, std::move(device), config, exe);
    if (!rank.isOk()) return rank.status();
    if (config.rank == 0) impl->num_blocks = (*rank)->numKvBlocks();
    exe = (*rank)->executable();
    impl->ranks.push_back(std::move(rank).value());
  }
  if (impl->world && impl->world->rank() == 0) {
    std::vector<uint8_t> blocks = encodeBlocksMessage(impl->num_blocks, artifact.header().metadata_xxh64);
    DS_RETURN_IF_ERROR(impl->world->broadcast(&blocks));
  }
  if (local > 1) {
    // One kernel thread per rank: the ranks are the parallelism.
    StatusOr<std::unique_ptr<RankWorkers>> workers = RankWorkers::create(local, 1);
    if (!workers.isOk()) return workers.status();
    impl->workers = std::move(workers).value();
  }
  if (impl->world) {
    // Every process ready before the first step: a follower that could not start (out of
    // memory for its ranks) would otherwise leave the leader's first collective waiting.
    const uint8_t ready = 1;
    if (follower) {
      DS_RETURN_IF_ERROR(impl->world->send(0, &ready, 1));
    } else {
      for (int p = 1; p < impl->world->size(); ++p) {
        uint8_t got = 0;
        // No time limit while the follower's connection stays open: loading its weights may take long.
        const Status st = impl->world->recv(p, &got, 1, /*idle=*/true);
        if (!st.isOk() || got != ready)
          return Status(DS_UNAVAILABLE, artifact.path() + ": follower process " + std::to_string(p) +
                                            " did not start (its own output says why): " + st.message());
      }
    }
  }
  if (follower) {
    // A follower process never returns to its tool: it runs the leader's steps, then exits.
    const Status done = impl->follow();
    if (!done.isOk())
      std::fprintf(stderr, "ds: error: follower process %d (ranks %d..%d): %s\n", impl->world->rank(),
                   impl->first_rank, impl->first_rank + local - 1, done.message().c_str());
    std::fflush(nullptr);
    impl.reset();
    std::exit(done.isOk() ? 0 : 1);
  }
  return std::unique_ptr<ModelRunner>(new ModelRunner(std::move(impl)));
}

StatusOr<LogitsView> ModelRunner::step(const StepBatch& b) {
  Impl& m = *impl_;
  DS_RETURN_IF_ERROR(m.checkBatch(b));
  if (!m.broken.isOk()) return m.broken;
  if (m.world) {  // the followers run the same step (they check it too)
    std::vector<uint8_t> message = encodeStepMessage(b);
    Status sent = m.world->broadcast(&message);
    if (!sent.isOk()) return m.broken = sent;
  }
  if (Status ran = m.runLocal(b); !ran.isOk()) {
    // Between processes a failed step leaves the followers somewhere inside it: the channel's
    // order is lost, so the run cannot go on (restart every process).
    if (m.world)
      m.broken = Status(ran.code(), ran.message() + " (the multi-process run stops here: restart every process)");
    return m.world ? m.broken : ran;
  }
  LogitsView view;
  view.data = static_cast<const float*>(m.ranks[0]->buffer(m.plan.logits));
  view.rows = static_cast<int64_t>(b.logit_rows.size());
  view.vocab = m.plan.vocab;
  view.device = &m.ranks[0]->device();
  return view;
}

StatusOr<const float*> LogitsView::host(std::vector<float>* staging) const {
  if (!device || device->info().host_visible) return data;
  staging->resize(static_cast<size_t>(rows * vocab));
  DS_RETURN_IF_ERROR(device->stream().copyToHost(staging->data(), data,
                                                 staging->size() * sizeof(float)));
  DS_RETURN_IF_ERROR(device->stream().synchronize());
  return static_cast<const float*>(staging->data());
}

StatusOr<bool> LogitsView::argmax(std::vector<int32_t>* ids) const {
  if (!device || device->info().host_visible) return false;
  ids->resize(static_cast<size_t>(rows));
  Status st = device->argmaxRows(data, rows, vocab, ids->data());
  if (st.code() == DS_UNSUPPORTED) return false;
  if (!st.isOk()) return st;
  for (int32_t id : *ids)
    if (id < 0 || id >= vocab)
      return internalError("the device's argmax returned token " + std::to_string(id) +
                           " outside the vocabulary of " + std::to_string(vocab));
  return true;
}

Status stepToHost(ModelRunner& runner, const StepBatch& batch, std::vector<float>* logits) {
  StatusOr<LogitsView> view = runner.step(batch);
  if (!view.isOk()) return view.status();
  std::vector<float> staging;
  StatusOr<const float*> rows = view->host(&staging);
  if (!rows.isOk()) return rows.status();
  logits->assign(*rows, *rows + view->rows * view->vocab);
  return Status::ok();
}

int64_t ModelRunner::vocabSize() const { return impl_->plan.vocab; }
int64_t ModelRunner::blockSize() const { return impl_->plan.kv.block_size; }
int64_t ModelRunner::numBlocks() const { return impl_->num_blocks; }
size_t ModelRunner::numLaunches() const { return impl_->plan.launches.size(); }
size_t ModelRunner::numGeneratedLaunches() const {
  return impl_->ranks[0]->executable()->numGenerated();
}
int ModelRunner::tpSize() const { return impl_->plan.tp_size; }

StatusOr<uint64_t> ModelRunner::kvBytesPerBlock(const artifact::Artifact& artifact) {
  const fb::Plan* plan = artifact.meta()->plan();
  if (!plan || !plan->kv_cache()) return dataLoss(artifact.path() + ": artifact has no KV cache spec");
  const int tp = plan->tp_size();
  if (tp < 1 || tp > kMaxTensorParallel)
    return dataLoss(artifact.path() + ": plan.tp_size " + std::to_string(tp) + " is outside [1, " +
                    std::to_string(kMaxTensorParallel) + "]");
  // kv_cache is one rank's cache and every rank lives in this process.
  return artifact::kvBytesPerBlock(*plan->kv_cache()) * static_cast<uint64_t>(tp);
}

}  // namespace ds

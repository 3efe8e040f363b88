// RankExecutor: buffers from the memory plan, the KV pool, inputs uploaded, the launch loop.
#include "exec/rank_executor.h"

#include <algorithm>
#include <cstring>

#include "artifact/artifact_reader.h"
#include "exec/model_runner.h"
#include "hal/decode_steps.h"

namespace ds {

RankExecutor::~RankExecutor() = default;

StatusOr<std::unique_ptr<RankExecutor>> RankExecutor::create(
    const artifact::Artifact& artifact, const hal::StepPlan& plan,
    std::unique_ptr<hal::Device> device, const Config& config,
    std::shared_ptr<const hal::Executable> peer) {
  std::unique_ptr<RankExecutor> r(new RankExecutor());
  r->plan_ = &plan;
  r->config_ = config;
  r->device_ = std::move(device);
  StatusOr<std::unique_ptr<hal::Weights>> w =
      r->device_->loadWeights(artifact, plan, config.rank);
  if (!w.isOk()) return w.status();
  r->weights_ = std::move(w).value();
  StatusOr<std::shared_ptr<const hal::Executable>> exe =
      r->device_->loadExecutable(artifact, plan, std::move(peer));
  if (!exe.isOk()) return exe.status();
  r->exe_ = std::move(exe).value();

  const hal::KVDesc& kv = plan.kv;
  if (config.num_kv_blocks == 0) {
    // Sized here, after the weights and code: a GPU's budget knows what they took.
    const uint64_t per_block = kv.bytes_per_slot * static_cast<uint64_t>(kv.block_size) *
                               static_cast<uint64_t>(std::max<int64_t>(kv.num_layers, 0));
    StatusOr<int64_t> blocks = r->device_->kvBlocksInBudget(plan, config.max_step_tokens, per_block,
                                                            config.num_graph_buckets);
    if (!blocks.isOk()) return blocks.status();
    r->config_.num_kv_blocks = *blocks;
    if (*blocks == 0 && per_block > 0)
      r->config_.num_kv_blocks = static_cast<int64_t>(
          std::min<uint64_t>(config.kv_fallback_bytes / per_block, uint64_t{1} << 30));
    if (r->config_.num_kv_blocks == 0)
      return invalidArgument("a KV cache of " + std::to_string(config.kv_fallback_bytes) +
                             " bytes holds no block of " + std::to_string(per_block) + " bytes");
  }
  if (r->config_.num_kv_blocks <= 0) return invalidArgument("the KV cache needs at least one block");
  if (config.max_graph_batch > 0 && config.graph_max_blocks > 0 && kv.kind != hal::KVKind::None)
    r->buckets_ = r->device_->captureBuckets(config.max_graph_batch);
  // Recorded steps pad with sequences whose K/V land in a block the engine never hands out.
  const int64_t num_kv_blocks = r->config_.num_kv_blocks + (r->buckets_.empty() ? 0 : 1);
  r->kv_blocks_allocated_ = num_kv_blocks;
  if (kv.kind != hal::KVKind::None) {
    const uint64_t block = kv.bytes_per_slot * static_cast<uint64_t>(kv.block_size);
    if (block != 0 && static_cast<uint64_t>(num_kv_blocks) > (uint64_t{1} << 50) / block)
      return Status(DS_OUT_OF_MEMORY, "a KV cache of " + std::to_string(num_kv_blocks) +
                                          " blocks of " + std::to_string(block) +
                                          " bytes per layer is beyond any device");
    r->kv_layers_.resize(static_cast<size_t>(kv.num_layers));
    for (hal::DeviceBuffer& layer : r->kv_layers_) {
      DS_RETURN_IF_ERROR(layer.reserve(r->device_->allocator(),
                                       static_cast<uint64_t>(num_kv_blocks) * block,
                                       hal::MemoryKind::KVCache));
      r->kv_ptrs_.push_back(layer.data());
    }
  }
  r->eager_.own.resize(plan.buffers.size());
  r->recorded_.own.resize(plan.buffers.size());
  r->base_.assign(plan.buffers.size(), nullptr);
  return r;
}

int64_t RankExecutor::rowsOf(const hal::BufferDesc& b) const {
  return b.rows == hal::RowSpace::Tokens ? T_ : b.rows == hal::RowSpace::LogitRows ? R_ : b.fixed_rows;
}

Status RankExecutor::layoutBuffers(int64_t T, int64_t R, Arenas& arenas) {
  T_ = T;
  R_ = R;
  hal::Allocator& alloc = device_->allocator();
  const auto kAct = hal::MemoryKind::Activations;
  DS_RETURN_IF_ERROR(arenas.token.reserve(
      alloc, static_cast<uint64_t>(T) * plan_->arena_bytes_per_token, kAct));
  DS_RETURN_IF_ERROR(arenas.row.reserve(
      alloc, static_cast<uint64_t>(R) * plan_->arena_bytes_per_logit_row, kAct));
  for (size_t id = 0; id < plan_->buffers.size(); ++id) {
    const hal::BufferDesc& b = plan_->buffers[id];
    if (b.alias_of >= 0) continue;
    const int64_t rows = rowsOf(b);
    if (b.arena_offset >= 0) {
      auto* arena = static_cast<uint8_t*>(b.rows == hal::RowSpace::LogitRows ? arenas.row.data()
                                                                             : arenas.token.data());
      base_[id] = arena + rows * b.arena_offset;
      continue;
    }
    DS_RETURN_IF_ERROR(arenas.own[id].reserve(alloc, static_cast<uint64_t>(rows) * b.row_bytes, kAct));
    base_[id] = arenas.own[id].data();
  }
  for (size_t id = 0; id < plan_->buffers.size(); ++id)
    if (plan_->buffers[id].alias_of >= 0) base_[id] = base_[plan_->buffers[id].alias_of];
  return Status::ok();
}

Status RankExecutor::uploadInputs(const StepBatch& b, Arenas& a, hal::StepArgs* step) {
  const int64_t T = static_cast<int64_t>(b.token_ids.size());
  const int64_t R = static_cast<int64_t>(b.logit_rows.size());
  hal::Stream& stream = device_->stream();
  hal::Allocator& alloc = device_->allocator();
  DS_RETURN_IF_ERROR(stream.copyToDevice(buffer(plan_->token_ids), b.token_ids.data(), T * 4));
  DS_RETURN_IF_ERROR(stream.copyToDevice(buffer(plan_->positions), b.positions.data(), T * 4));
  if (R) DS_RETURN_IF_ERROR(stream.copyToDevice(buffer(plan_->logit_rows), b.logit_rows.data(), R * 4));
  const uint64_t table_bytes = b.block_table.size() * 4;
  DS_RETURN_IF_ERROR(a.token_seq.reserve(alloc, T * 4, hal::MemoryKind::Staging));
  DS_RETURN_IF_ERROR(a.block_table.reserve(alloc, table_bytes, hal::MemoryKind::Staging));
  DS_RETURN_IF_ERROR(stream.copyToDevice(a.token_seq.data(), b.token_seq.data(), T * 4));
  DS_RETURN_IF_ERROR(stream.copyToDevice(a.block_table.data(), b.block_table.data(), table_bytes));

  step->step_id = ++steps_;
  step->T = T;
  step->R = R;
  step->positions = static_cast<const int32_t*>(buffer(plan_->positions));
  step->host_positions = b.positions.data();
  step->host_token_seq = b.token_seq.data();
  step->token_seq = static_cast<const int32_t*>(a.token_seq.data());
  step->block_table = static_cast<const int32_t*>(a.block_table.data());
  step->num_seqs = b.num_seqs;
  step->max_blocks_per_seq = b.max_blocks_per_seq;
  step->kv = &plan_->kv;
  step->num_kv_blocks = kv_blocks_allocated_;
  step->kv_layers = kv_ptrs_.data();
  step->comm = config_.comm;
  step->rank = config_.rank;
  step->tp = config_.tp;
  return Status::ok();
}

Status RankExecutor::launchAll(const hal::StepArgs& step) {
  hal::LaunchArgs args;
  args.step = &step;
  args.weights = weights_.get();
  for (size_t i = 0; i < plan_->launches.size(); ++i) {
    const hal::LaunchDesc& l = plan_->launches[i];
    args.index = i;
    args.launch = &l;
    for (size_t k = 0; k < l.inputs.size(); ++k) {
      const hal::BufferDesc& d = plan_->buffers[l.inputs[k]];
      args.in[k] = {buffer(l.inputs[k]), &d, rowsOf(d)};
    }
    for (size_t k = 0; k < l.outputs.size(); ++k) {
      const hal::BufferDesc& d = plan_->buffers[l.outputs[k]];
      args.out[k] = {buffer(l.outputs[k]), &d, rowsOf(d)};
    }
    DS_RETURN_IF_ERROR(exe_->launch(*device_, args));
  }
  return Status::ok();
}

StatusOr<StepBatch> RankExecutor::paddedToBucket(const StepBatch& b, int64_t bucket) const {
  hal::DecodeInputs in{b.token_ids, b.positions, b.token_seq, b.logit_rows,
                       b.num_seqs, b.max_blocks_per_seq, b.block_table};
  // Pad sequences write their K/V into the scratch block after the engine's blocks.
  DS_RETURN_IF_ERROR(hal::padDecodeStep(&in, bucket, config_.graph_max_blocks,
                                        static_cast<int32_t>(config_.num_kv_blocks)));
  StepBatch padded;
  padded.token_ids = std::move(in.token_ids);
  padded.positions = std::move(in.positions);
  padded.token_seq = std::move(in.token_seq);
  padded.logit_rows = std::move(in.logit_rows);
  padded.num_seqs = in.num_seqs;
  padded.max_blocks_per_seq = in.max_blocks_per_seq;
  padded.block_table = std::move(in.block_table);
  return padded;
}

Status RankExecutor::runRecorded(const StepBatch& b, int64_t bucket) {
  StatusOr<StepBatch> padded_or = paddedToBucket(b, bucket);
  if (!padded_or.isOk()) return padded_or.status();
  const StepBatch& padded = *padded_or;
  // Attention is planned for the widest table a record replays with, not this step's.
  const int64_t plan_context = config_.graph_max_blocks * plan_->kv.block_size;
  // Sized once for the largest bucket (and the widest table): nothing a record names moves.
  if (!recorded_.token.data()) {
    const int64_t most = buckets_.back();
    DS_RETURN_IF_ERROR(layoutBuffers(most, most, recorded_));
    hal::Allocator& alloc = device_->allocator();
    DS_RETURN_IF_ERROR(recorded_.token_seq.reserve(alloc, most * 4, hal::MemoryKind::Staging));
    DS_RETURN_IF_ERROR(recorded_.block_table.reserve(
        alloc, static_cast<uint64_t>(most * config_.graph_max_blocks) * 4, hal::MemoryKind::Staging));
    // The executable's scratch for the largest bucket at the widest table, sized before any
    // record exists: a later, larger bucket then grows nothing, and the records of the buckets
    // before it stay valid (a grown workspace would drop them all).
    StatusOr<StepBatch> largest = paddedToBucket(b, most);
    if (!largest.isOk()) return largest.status();
    hal::StepArgs sizing;
    DS_RETURN_IF_ERROR(uploadInputs(*largest, recorded_, &sizing));
    sizing.plan_context = plan_context;
    DS_RETURN_IF_ERROR(exe_->reserveFor(*device_, [&] { return launchAll(sizing); }));
  }
  DS_RETURN_IF_ERROR(layoutBuffers(bucket, bucket, recorded_));
  hal::StepArgs step;
  DS_RETURN_IF_ERROR(uploadInputs(padded, recorded_, &step));
  step.plan_context = plan_context;
  if (device_->hasCapture(bucket) && exe_->bufferEpoch() == capture_epoch_) {
    DS_RETURN_IF_ERROR(device_->replay(bucket));
    ++replayed_;
    return Status::ok();
  }
  // The bucket's first step (or the first since the executable's buffers moved, which left the
  // records naming freed memory) runs eagerly: lazily sized buffers, rope tables and library
  // handles come into being. Then the same launches are recorded for the next ones.
  DS_RETURN_IF_ERROR(launchAll(step));
  if (exe_->bufferEpoch() != capture_epoch_) {
    device_->dropCaptures();
    capture_epoch_ = exe_->bufferEpoch();
  }
  return device_->capture(bucket, [&] { return launchAll(step); });
}

Status RankExecutor::runStep(const StepBatch& b) {
  if (!buckets_.empty() && b.max_blocks_per_seq <= config_.graph_max_blocks) {
    if (hal::isPureDecode(b.token_seq, b.logit_rows, b.num_seqs)) {
      const int64_t bucket = hal::chooseBucket(buckets_, b.num_seqs);
      if (bucket >= 0) return runRecorded(b, bucket);
    }
  }
  const int64_t T = static_cast<int64_t>(b.token_ids.size());
  const int64_t R = static_cast<int64_t>(b.logit_rows.size());
  DS_RETURN_IF_ERROR(layoutBuffers(T, R, eager_));
  hal::StepArgs step;
  DS_RETURN_IF_ERROR(uploadInputs(b, eager_, &step));
  if (T > sized_tokens_ || R > sized_rows_) {
    // A larger step than any before: its launches' scratch is sized once, up front.
    DS_RETURN_IF_ERROR(exe_->reserveFor(*device_, [&] { return launchAll(step); }));
    sized_tokens_ = std::max(sized_tokens_, T);
    sized_rows_ = std::max(sized_rows_, R);
  }
  return launchAll(step);
}

}  // namespace ds

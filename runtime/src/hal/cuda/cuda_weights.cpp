// CudaDevice's weight upload: a rank's shards and their scales in one device allocation, copied
// through double-buffered pinned staging (int4 rows repacked into the GPU storage on the way),
// synthetic weights filled on the device. Not yet run on a GPU (docs/cuda.md "Weight upload").
#include <algorithm>
#include <cstring>
#include <set>

#include "artifact/artifact_reader.h"
#include "artifact/synthetic.h"
#include "artifact/tensor_parallel.h"
#include "hal/cuda/cuda_device.h"
#include "hal/cuda/cuda_synthetic.h"

namespace ds::hal::cuda {
namespace {

// Pinned host memory (cuMemHostAlloc): DMA reads it directly, so copies from it overlap host work.
struct PinnedBuffer {
  const CudaDriver* driver = nullptr;
  void* data = nullptr;
  ~PinnedBuffer() {
    if (data) driver->cuMemFreeHost(data);
  }
};

}  // namespace

StatusOr<std::unique_ptr<Weights>> CudaDevice::loadWeights(const artifact::Artifact& artifact,
                                                           const StepPlan&, int rank) {
  if (artifact.meta()->int8_activations() || artifact.meta()->bf16_activations())
    return unsupported(artifact.path() + ": built with --quant-act " +
                       (artifact.meta()->int8_activations() ? "int8" : "bf16") +
                       ", which only the host kernels implement; rebuild without it for the GPU");
  const auto* tensors = artifact.meta()->tensors();
  const uint32_t n = tensors ? tensors->size() : 0;
  auto w = std::unique_ptr<CudaWeights>(new CudaWeights());
  w->shard_of_.resize(n);
  // This rank's shards and the scale tensors they name: everything its kernels may read.
  // Other ranks' shard records (and their parts' scales) are reached through their rank-0 entry
  // only: this rank uploads its own shards, never the whole model.
  auto extras = [&](uint32_t j, std::set<uint32_t>& into) {
    const fb::Tensor* t = tensors->Get(j);
    for (int32_t extra : {t->scale(), t->qscale(), t->qzero()})
      if (extra >= 0 && static_cast<uint32_t>(extra) < n) into.insert(static_cast<uint32_t>(extra));
  };
  std::set<uint32_t> foreign, mine;
  for (uint32_t i = 0; i < n; ++i) {
    const fb::Tensor* t = tensors->Get(i);
    if (!t->shards()) continue;
    for (uint32_t r = 0; r < t->shards()->size(); ++r) {
      const uint32_t s = t->shards()->Get(r);
      std::set<uint32_t>& into = static_cast<int>(r) == rank ? mine : foreign;
      into.insert(s);
      extras(s, into);
    }
  }
  std::set<uint32_t> wanted;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t j = shardIndex(artifact, i, rank);
    w->shard_of_[i] = static_cast<int32_t>(j);
    if (foreign.count(j) && !mine.count(j)) continue;
    wanted.insert(j);
    extras(j, wanted);
  }
  std::vector<uint32_t> order(wanted.begin(), wanted.end());
  std::vector<uint64_t> sizes;
  std::vector<const uint8_t*> sources;
  std::vector<bool> copied;  // false: synthetic, filled on the device after the upload
  std::vector<int8_t> int4(order.size(), -1);
  w->quant_.assign(n, {});
  for (uint32_t j : order) {
    const fb::Tensor* t = tensors->Get(j);
    if (t->dtype() == fb::DType_I6)
      return unsupported(artifact.path() + ": tensor '" + t->name()->str() + "' is I6 (6-bit groups, " +
                         "the host's output-layer encoding); the GPU kernels do not read it: compile " +
                         "for the GPU with --quant-lm-head w8 or none");
    if (t->quant() == fb::QuantKind_Int4Group) {
      // The GPU int4 storage is made as the rows are staged (whole 32-bit words: cols % 8 == 0).
      const int64_t cols = t->shape() && t->shape()->size() ? t->shape()->Get(t->shape()->size() - 1) : 0;
      if (cols % 8 != 0 || t->nbytes() % 4 != 0)
        return unsupported(artifact.path() + ": tensor '" + t->name()->str() + "' has int4 rows of " +
                           std::to_string(cols) + " columns; the GPU kernels need a multiple of 8");
      int4[sources.size()] = t->qzero() < 0 ? 1 : 0;
    }
    const bool synthetic = artifact::isSynthetic(*t);
    const uint8_t* data = synthetic ? nullptr : artifact.tensorData(*t);
    if (!synthetic && !data && t->nbytes() > 0)
      return dataLoss(artifact.path() + ": tensor '" + t->name()->str() + "' has no data in the artifact");
    sizes.push_back(t->nbytes());
    sources.push_back(data);
    copied.push_back(!synthetic);
  }
  StatusOr<UploadPlan> plan = planWeightUpload(sizes, kStagingBytes, 2, 256, copied);
  if (!plan.isOk()) return plan.status();
  // Synthetic tensors (--weights random): their place in the layout, then ds_synthetic_fill.
  std::vector<SyntheticFillTensor> synthetic;
  for (size_t k = 0; k < order.size(); ++k) {
    if (copied[k]) continue;
    const fb::Tensor* t = tensors->Get(order[k]);
    SyntheticFillTensor s;
    s.tensor = order[k];
    s.name = t->name()->str();
    if (t->shape()) s.shape.assign(t->shape()->begin(), t->shape()->end());
    s.nbytes = t->nbytes();
    s.spec = artifact::syntheticSpec(*t);
    s.offset = plan->offsets[k];
    synthetic.push_back(std::move(s));
  }
  const ds_cuda_device_limits limits = {props_.sm_count, 48 << 10};
  StatusOr<SyntheticFillPlan> fill =
      planSyntheticFill(synthetic, artifact.meta()->synthetic_seed(), limits);
  if (!fill.isOk()) return Status(fill.status().code(), artifact.path() + ": " + fill.status().message());
  DS_RETURN_IF_ERROR(w->storage_.reserve(allocator(), std::max<uint64_t>(plan->total_bytes, 1),
                                         MemoryKind::Weights));
  const CUdeviceptr base = reinterpret_cast<uintptr_t>(w->storage_.data());
  w->by_index_.assign(n, 0);
  for (size_t k = 0; k < order.size(); ++k) w->by_index_[order[k]] = base + plan->offsets[k];
  uint64_t copy_bytes = 0;
  for (const UploadChunk& c : plan->chunks) copy_bytes += c.bytes;
  const uint64_t progress_total = copy_bytes + fill->total_bytes;
  // Quantization scales (and zero points) must cover the codes the kernels will index: rows x
  // groups per expert (per-channel: one group), as the CPU loader checks (a short tensor would
  // be read past its end on the device).
  auto checkScales = [&](const fb::Tensor* t, int32_t ref, const char* what) -> Status {
    if (ref < 0) return Status::ok();
    const size_t rank = t->shape() ? t->shape()->size() : 0;
    const int64_t rows = rank >= 2 ? t->shape()->Get(rank - 2) : 1, cols = rank ? t->shape()->Get(rank - 1) : 0;
    const int64_t groups = t->quant() == fb::QuantKind_Int4Group && t->group_size() > 0
                               ? (cols + t->group_size() - 1) / t->group_size() : 1;
    const uint64_t need = static_cast<uint64_t>(std::max<int64_t>(t->experts(), 1) * rows * groups) * 4;
    const uint64_t have = tensors->Get(static_cast<uint32_t>(ref))->nbytes();
    if (have != need)
      return dataLoss(artifact.path() + ": tensor '" + t->name()->str() + "' has " + what + " of " +
                      std::to_string(have) + " bytes, its " + fb::EnumNameQuantKind(t->quant()) +
                      " codes need " + std::to_string(need));
    return Status::ok();
  };
  for (uint32_t j : order) {
    const fb::Tensor* t = tensors->Get(j);
    if (t->quant() != fb::QuantKind_None) {
      DS_RETURN_IF_ERROR(checkScales(t, t->qscale(), "scales"));
      DS_RETURN_IF_ERROR(checkScales(t, t->qzero(), "zero points"));
      if (t->qscale() < 0) return dataLoss(artifact.path() + ": tensor '" + t->name()->str() + "' is quantized without scales");
    }
    if (t->scale() >= 0 && t->block() && t->block()->size() == 2) {  // FP8 block scales
      CudaWeights::QuantScales& q = w->quant_[j];
      q.block_scale = w->by_index_[static_cast<size_t>(t->scale())];
      q.block_rows = t->block()->Get(0);
      q.block_cols = t->block()->Get(1);
    }
    if (t->quant() == fb::QuantKind_Int8PerChannel || t->quant() == fb::QuantKind_Fp8PerChannel) {
      // --quant w8 / fp8: one f32 scale per output row (group_size 0 marks per-channel).
      w->quant_[j].scale = t->qscale() >= 0 ? w->by_index_[static_cast<size_t>(t->qscale())] : 0;
      continue;
    }
    if (t->quant() != fb::QuantKind_Int4Group) continue;
    CudaWeights::QuantScales& q = w->quant_[j];
    q.scale = t->qscale() >= 0 ? w->by_index_[static_cast<size_t>(t->qscale())] : 0;
    q.zero = t->qzero() >= 0 ? w->by_index_[static_cast<size_t>(t->qzero())] : 0;
    q.group_size = t->group_size();
  }
  DS_RETURN_IF_ERROR(uploadWeights(*plan, sources, int4, base, progress_total));
  if (!fill->calls.empty()) {
    // The kernel library (the artifact's, docs/cuda.md) is loaded here if no executable has yet.
    StatusOr<const CudaLibrary*> lib = kernelLibrary(artifact, artifact.path() + ": the synthetic weights");
    if (!lib.isOk()) return lib.status();
    auto fn = (*lib)->functions.find("ds_synthetic_fill");
    if (fn == (*lib)->functions.end()) return internalError("the CUDA kernel library has no ds_synthetic_fill");
    uint64_t done = copy_bytes;
    for (const SyntheticFillCall& c : fill->calls) {
      ds_cuda_synthetic_fill_params params = c.params;
      params.dst = base + c.offset;
      void* args[] = {&params};
      const ds_cuda_launch& l = c.launch;
      DS_RETURN_IF_ERROR(driver_->check(
          driver_->cuLaunchKernel(fn->second, l.grid[0], l.grid[1], l.grid[2], l.block[0], l.block[1],
                                  l.block[2], l.shared_bytes, cuStream(), args, nullptr),
          "cuLaunchKernel(ds_synthetic_fill) for tensor " + std::to_string(c.tensor)));
      // Synchronized per call (at most 256 MiB, milliseconds) so the progress is what is done.
      DS_RETURN_IF_ERROR(driver_->check(driver_->cuStreamSynchronize(cuStream()),
                                        "cuStreamSynchronize(synthetic weights)"));
      done += c.bytes;
      if (progress_) progress_(done, progress_total);
    }
    // Synthetic int4 rows are filled in the host's storage: repacked in place like uploads.
    auto repack = (*lib)->functions.find("ds_i4_to_gpu");
    bool repacked = false;
    for (const SyntheticFillTensor& s : synthetic) {
      const fb::Tensor* t = tensors->Get(s.tensor);
      if (t->quant() != fb::QuantKind_Int4Group) continue;
      if (repack == (*lib)->functions.end()) return internalError("the CUDA kernel library has no ds_i4_to_gpu");
      ds_cuda_i4_to_gpu_params params{};
      params.data = base + s.offset;
      params.words = s.nbytes / 4;
      params.symmetric = t->qzero() < 0 ? 1 : 0;
      ds_cuda_plan rp;
      if (const char* e = ds_cuda_plan_i4_to_gpu(&params, &limits, &rp))
        return invalidArgument(artifact.path() + ": tensor '" + s.name + "': " + e);
      void* args[] = {&params};
      const ds_cuda_launch& l = rp.launches[0];
      DS_RETURN_IF_ERROR(driver_->check(
          driver_->cuLaunchKernel(repack->second, l.grid[0], l.grid[1], l.grid[2], l.block[0],
                                  l.block[1], l.block[2], l.shared_bytes, cuStream(), args, nullptr),
          "cuLaunchKernel(ds_i4_to_gpu) for tensor '" + s.name + "'"));
      repacked = true;
    }
    if (repacked)  // the fills above were synchronized one by one already
      DS_RETURN_IF_ERROR(driver_->check(driver_->cuStreamSynchronize(cuStream()),
                                        "cuStreamSynchronize(int4 repack)"));
  }
  return std::unique_ptr<Weights>(std::move(w));
}

Status CudaDevice::uploadWeights(const UploadPlan& plan, const std::vector<const uint8_t*>& sources,
                                 const std::vector<int8_t>& int4_symmetric, CUdeviceptr base,
                                 uint64_t progress_total) {
  DS_RETURN_IF_ERROR(bind());
  const CudaDriver& d = *driver_;
  const int slots = std::min<int>(plan.num_slots, static_cast<int>(plan.chunks.size()));
  std::vector<PinnedBuffer> staging(static_cast<size_t>(slots));
  std::vector<CUevent> done(static_cast<size_t>(slots), nullptr);
  struct Events {  // destroyed on every path
    const CudaDriver& d;
    std::vector<CUevent>& e;
    ~Events() {
      for (CUevent x : e)
        if (x) d.cuEventDestroy(x);
    }
  } guard{d, done};
  for (int s = 0; s < slots; ++s) {
    staging[s].driver = &d;
    DS_RETURN_IF_ERROR(d.check(d.cuMemHostAlloc(&staging[s].data, plan.staging_bytes, CU_MEMHOSTALLOC_PORTABLE),
                               "cuMemHostAlloc(" + std::to_string(plan.staging_bytes) + " bytes of staging)"));
    DS_RETURN_IF_ERROR(d.check(d.cuEventCreate(&done[s], CU_EVENT_DISABLE_TIMING), "cuEventCreate"));
  }
  std::vector<bool> in_flight(static_cast<size_t>(slots), false);
  uint64_t copied = 0;
  for (const UploadChunk& c : plan.chunks) {
    // The slot's previous DMA must be done before the host overwrites it; meanwhile the other
    // slot's copy runs, so the memcpy below overlaps it.
    if (in_flight[c.slot])
      DS_RETURN_IF_ERROR(d.check(d.cuEventSynchronize(done[c.slot]), "cuEventSynchronize"));
    auto* dst = static_cast<uint8_t*>(staging[c.slot].data);
    uint64_t filled = 0;
    for (const UploadPiece& p : c.pieces) {
      if (p.staging_offset > filled) std::memset(dst + filled, 0, p.staging_offset - filled);
      std::memcpy(dst + p.staging_offset, sources[p.tensor] + p.src_offset, p.bytes);
      if (p.tensor < int4_symmetric.size() && int4_symmetric[p.tensor] >= 0) {
        // Word-local permutation: any 4-byte-aligned piece repacks on its own.
        if (p.src_offset % 4 != 0 || p.bytes % 4 != 0)
          return internalError("int4 upload piece not on a 32-bit word boundary");
        ds_cuda_i4_to_gpu(dst + p.staging_offset, p.bytes, int4_symmetric[p.tensor]);
      }
      filled = p.staging_offset + p.bytes;
    }
    if (c.bytes > filled) std::memset(dst + filled, 0, c.bytes - filled);
    DS_RETURN_IF_ERROR(d.check(d.cuMemcpyHtoDAsync(base + c.device_offset, dst, c.bytes, cuStream()),
                               "cuMemcpyHtoDAsync_v2(weights, " + std::to_string(c.bytes) + " bytes)"));
    DS_RETURN_IF_ERROR(d.check(d.cuEventRecord(done[c.slot], cuStream()), "cuEventRecord"));
    in_flight[c.slot] = true;
    copied += c.bytes;
    if (progress_) progress_(copied, progress_total);
  }
  return d.check(d.cuStreamSynchronize(cuStream()), "cuStreamSynchronize(weights)");
}

}  // namespace ds::hal::cuda

// Launch planning of the tensor-parallel reductions (include/ds_cuda_collective.h): validation
// and geometry, pure functions of the params (no CUDA, no device memory).
#include <cstring>

#include "ds_cuda_kernels.h"
#include "launch_common.h"

using namespace ds_cuda_plan_util;

extern "C" {

const char* ds_cuda_plan_comm_sum(const ds_cuda_comm_sum_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) return "comm_sum: dtype not f32 or bf16";
  if (p->nranks < 1 || p->nranks > DS_CUDA_COMM_MAX_RANKS) return "comm_sum: nranks must be in [1, 64]";
  if (p->count < 1) return "comm_sum: count must be >= 1";
  if (p->self && (p->self_rank < 0 || p->self_rank >= p->nranks))
    return "comm_sum: self_rank must name one of the nranks slots";
  if (p->nranks > 1 && p->slot_stride < p->count)
    return "comm_sum: slot_stride must be >= count (slots may not overlap)";
  if (!p->src || !p->dst) return "comm_sum: src and dst are required";
  const uint32_t e = static_cast<uint32_t>(dtypeBytes(p->dtype));
  if (!aligned(p->src, e) || !aligned(p->dst, e) || !aligned(p->self, e))
    return "comm_sum: a pointer is misaligned for its dtype";
  setLaunch(out->launches[0], symbol("ds_comm_sum_ranks_", dtypeName(p->dtype)), strideBlocks(p->count), 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

}  // extern "C"

/* The tensor-parallel part of the CUDA kernel library's contract (included by ds_cuda_kernels.h;
 * same conventions). NCCL moves bytes only (all-gather, grouped send/receive); the sums are these
 * kernels', so an all-reduce on GPUs is deterministic and batch invariant like the host's
 * in-process group: element i of the result is x_0[i] + x_1[i] + ... + x_{N-1}[i] added in rank
 * order in f32 (bf16 inputs widened, the sum rounded once to the output dtype), whatever the
 * element count, the chunking or the step's batch (docs/tensor_parallel.md "Collectives on GPUs").
 *
 * ds_comm_sum_ranks_<dtype>: dst[i] = sum over p in rank order of x_p[i], i in [0, count), where
 * x_p = src + p * slot_stride elements, except x_self_rank = self when self is not 0 (the rank's
 * own contribution read in place). dst may equal self (element-wise in place). Grid-stride. */
#ifndef DS_CUDA_COLLECTIVE_H
#define DS_CUDA_COLLECTIVE_H

#include <stdint.h>

#include "ds_cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DS_CUDA_COMM_MAX_RANKS 64

typedef struct {
  ds_cuda_ptr src;          /* nranks slots of slot_stride elements */
  ds_cuda_ptr self;         /* 0, or this rank's own slot (read instead of slot self_rank) */
  ds_cuda_ptr dst;
  int64_t slot_stride;      /* elements */
  int64_t count;            /* elements summed */
  int32_t nranks, self_rank;
  int32_t dtype;            /* DS_CUDA_F32 or DS_CUDA_BF16, for src, self and dst */
} ds_cuda_comm_sum_params;
const char* ds_cuda_plan_comm_sum(const ds_cuda_comm_sum_params* p, ds_cuda_plan* out);

#ifdef __cplusplus
}
#endif

#endif /* DS_CUDA_COLLECTIVE_H */

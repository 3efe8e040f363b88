/* The fake NCCL's test interface (libds_fake_nccl.so, docs/tensor_parallel.md "Fake NCCL"). The
 * library exports every entry point of DS_NCCL_SYMBOLS (hal/cuda/nccl_library.h) with the
 * runtime's own signatures, implemented over the fake CUDA driver's memory (host memory): ranks
 * of one process meet in mailboxes, an exchange copies real bytes, captured exchanges replay with
 * their graph (fake_cuda_enqueue_host). It checks what real NCCL needs: a current device at
 * ncclCommInitRank and one device per rank, every buffer inside a live device allocation, calls
 * from a thread whose current device is the communicator's, matching sizes on both sides.
 * A receive waits at most FAKE_NCCL_TIMEOUT_S (20) seconds for its peer, then aborts the process
 * with a message (a hang becomes a failure). */
#ifndef DS_FAKE_NCCL_H
#define DS_FAKE_NCCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Clears the counters and any armed failure (not communicators). */
void fake_nccl_reset(void);
/* Calls of `symbol` ("ncclSend") since the reset. */
size_t fake_nccl_call_count(const char* symbol);
/* Bytes delivered by exchanges since the reset; exchange batches run from a graph replay. */
uint64_t fake_nccl_bytes_moved(void);
size_t fake_nccl_replayed_batches(void);
/* Live communicators (initialized, not destroyed or aborted). */
int fake_nccl_live_comms(void);
/* The nth call (1 = the next) of `symbol` from now returns `result` (an ncclResult_t). */
void fake_nccl_fail(const char* symbol, int nth, int result);
/* Why the last refused call was refused; empty after a reset. */
const char* fake_nccl_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* DS_FAKE_NCCL_H */

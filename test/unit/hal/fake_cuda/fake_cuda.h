/* The fake CUDA driver's test interface (libds_fake_cuda.so, docs/cuda.md "Fake driver").
 * The library exports every entry point of DS_CUDA_DRIVER_SYMBOLS (hal/cuda/cuda_driver.h) under
 * its versioned name, implemented on the host; these accessors let a test read what the runtime
 * did through it. Tests dlopen the library path the runtime loaded (same object) and dlsym these.
 *
 * Configuration, read by every cuInit: FAKE_CUDA_DEVICES (1), FAKE_CUDA_CC ("9.0"),
 * FAKE_CUDA_TOTAL_BYTES (80 GiB), FAKE_CUDA_FREE_BYTES (total - allocated), FAKE_CUDA_SM_COUNT
 * (132), FAKE_CUDA_NAME ("Fake GPU"); FAKE_CUDA_TRACE=1 prints every launch on stderr. */
#ifndef DS_FAKE_CUDA_H
#define DS_FAKE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One kernel launch as the driver saw it. Pointers stay valid until fake_cuda_reset. */
typedef struct {
  const char* name;      /* the kernel's name in its module */
  uint32_t grid[3], block[3];
  uint32_t shared;       /* dynamic shared bytes */
  int from_graph;        /* 1: replayed by cuGraphLaunch (recorded at capture) */
  int num_params;        /* from the module's metadata (cubin .nv.info / PTX .entry); -1 unknown */
  uint32_t param_bytes;  /* size of params: the kernel's parameter buffer, laid out as declared */
  const uint8_t* params; /* kernelParams[i] copied at param i's offset (null when unknown) */
  uint64_t stream;       /* the CUstream it was queued on */
} fake_cuda_launch_t;

/* Clears the launch log, the call counters and any armed failure (not allocations or handles). */
void fake_cuda_reset(void);
size_t fake_cuda_launch_count(void);
/* Launch i of the log (name null when out of range). */
fake_cuda_launch_t fake_cuda_launch(size_t i);

/* Device memory (cuMemAlloc_v2): bytes and count of live allocations. */
uint64_t fake_cuda_allocated_bytes(void);
size_t fake_cuda_live_allocations(void);
/* 1 when [ptr, ptr + bytes) lies inside one live device allocation. */
int fake_cuda_is_device_range(uint64_t ptr, uint64_t bytes);
/* Live handles of the other kinds: "host" (cuMemHostAlloc), "stream", "event", "module",
 * "graph", "graph_exec"; -1 for an unknown kind. */
long fake_cuda_live(const char* kind);
int fake_cuda_primary_ctx_refs(int device);

/* How many times entry point `symbol` ("cuMemcpyHtoDAsync_v2") was called since the reset. */
size_t fake_cuda_call_count(const char* symbol);
/* The nth call (1 = the next) of `symbol` from now returns `result` without doing anything. */
void fake_cuda_fail(const char* symbol, int nth, int result);

/* Bytes copied by cuMemcpyHtoDAsync_v2 since the reset. */
uint64_t fake_cuda_htod_bytes(void);
/* Why the last refused call was refused ("cuLaunchKernel(ds_x): block 512x1x1 (the kernel allows
 * 256 threads)"); empty after a reset. */
const char* fake_cuda_last_error(void);

/* For other fake libraries (the fake NCCL): the device of this thread's current context (-1:
 * none), and fn(arg) in stream order on `stream` (a CUstream): run now (returns 0), or recorded
 * into the stream's capture and run at every replay of its graph (returns 1; arg must live as
 * long as the graph); a CUresult > 1 for an unknown stream. fn runs without the driver's lock. */
int fake_cuda_current_device(void);
int fake_cuda_enqueue_host(uint64_t stream, void (*fn)(void*), void* arg);

#ifdef __cplusplus
}
#endif

#endif /* DS_FAKE_CUDA_H */

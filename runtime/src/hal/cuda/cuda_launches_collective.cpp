// The launch builder's tensor-parallel kinds (docs/tensor_parallel.md "Collectives on GPUs"):
// all_reduce, add_rms_norm's all_reduce_rhs and all_gather as exchanges of the rank's
// communicator (NCCL moves bytes) plus the library's rank-ordered sum (ds_comm_sum_ranks), so
// every element is x_0 + x_1 + ... + x_{N-1} in f32 in rank order, rounded once: the same on
// every rank, every run and whatever the step's batch (batch invariance), as on the host.
//
//   small (<= kOneShotBytes per rank): all-gather every rank's input into the workspace, each
//     rank sums all slots (one exchange, the latency-bound decode case);
//   large: reduce-scatter as an all-to-all (rank p receives chunk p of every rank), rank p sums
//     its chunk, then an all-to-all gathers the summed chunks (ring-like traffic, 2 (N-1)/N).
#include <algorithm>

#include "hal/cuda/cuda_launch_builder.h"

namespace ds::hal::cuda::builder {

namespace {
// One exchange for up to this many bytes per rank (decode: batch x hidden x 2 bytes).
constexpr uint64_t kOneShotBytes = 256 << 10;
}  // namespace

Status Builder::copyCols(uint64_t x, int64_t x_stride, uint64_t y, int64_t y_stride, int64_t rows,
                         int64_t cols, int dt) {
  ds_cuda_copy_cols_params p{};
  p.x = x;
  p.y = y;
  p.rows = static_cast<int32_t>(rows);
  p.cols = static_cast<int32_t>(cols);
  p.x_stride = static_cast<int32_t>(x_stride);
  p.y_stride = static_cast<int32_t>(y_stride);
  p.dtype = dt;
  ds_cuda_plan plan;
  const char* e = ds_cuda_plan_copy_cols(&p, &plan);
  return add(plan, e, bytesOf(p));
}

Status Builder::allReduce(uint64_t in, uint64_t out, int64_t n, int dt) {
  const int N = s_.tp, r = s_.rank;
  const uint64_t es = static_cast<uint64_t>(elemBytes(dt));
  if (n <= 0) return Status::ok();
  if (N <= 1) return in == out ? Status::ok() : copyCols(in, n, out, n, 1, n, dt);
  if (r < 0 || r >= N) return refused("the rank is outside the tensor-parallel group");
  auto sum = [&](uint64_t src, uint64_t self, uint64_t dst, int64_t stride, int64_t count) {
    ds_cuda_comm_sum_params p{};
    p.src = src;
    p.self = self;
    p.dst = dst;
    p.slot_stride = stride;
    p.count = count;
    p.nranks = N;
    p.self_rank = r;
    p.dtype = dt;
    ds_cuda_plan plan;
    const char* e = ds_cuda_plan_comm_sum(&p, &plan);
    return add(plan, e, bytesOf(p));
  };
  const uint64_t bytes = static_cast<uint64_t>(n) * es;
  if (bytes <= kOneShotBytes) {
    setScratch(bytes * static_cast<uint64_t>(N));
    CudaCall g;
    g.kind = CudaCallKind::AllGather;
    g.symbol = "allGather";
    g.exchange.send = in;
    g.exchange.recv = scratch();
    g.exchange.bytes = bytes;
    out_.calls.push_back(std::move(g));
    return sum(scratch(), 0, out, n, n);
  }
  // Chunk p = elements [p c, min(n, (p + 1) c)); slot p of the workspace holds rank p's copy of
  // this rank's chunk (this rank's own is read in place).
  const int64_t c = (n + N - 1) / N;
  auto first = [&](int p) { return std::min<int64_t>(n, int64_t{p} * c); };
  auto len = [&](int p) { return std::min<int64_t>(n, int64_t{p + 1} * c) - first(p); };
  setScratch(static_cast<uint64_t>(c) * es * static_cast<uint64_t>(N));
  CudaCall scatter;
  scatter.kind = CudaCallKind::AllToAllV;
  scatter.symbol = "allToAllV";
  scatter.exchange.send = in;
  scatter.exchange.recv = scratch();
  scatter.exchange.to.resize(static_cast<size_t>(N));
  scatter.exchange.from.resize(static_cast<size_t>(N));
  for (int p = 0; p < N; ++p) {
    if (p == r) continue;
    scatter.exchange.to[static_cast<size_t>(p)] = {static_cast<uint64_t>(first(p)) * es, static_cast<uint64_t>(len(p)) * es};
    scatter.exchange.from[static_cast<size_t>(p)] = {static_cast<uint64_t>(p * c) * es, static_cast<uint64_t>(len(r)) * es};
  }
  CudaCall gather = scatter;
  out_.calls.push_back(std::move(scatter));
  const uint64_t mine = static_cast<uint64_t>(first(r)) * es;
  if (len(r) > 0) DS_RETURN_IF_ERROR(sum(scratch(), in + mine, out + mine, c, len(r)));
  gather.exchange.send = out;
  gather.exchange.recv = out;
  for (int p = 0; p < N; ++p) {
    if (p == r) continue;
    gather.exchange.to[static_cast<size_t>(p)] = {mine, static_cast<uint64_t>(len(r)) * es};
    gather.exchange.from[static_cast<size_t>(p)] = {static_cast<uint64_t>(first(p)) * es, static_cast<uint64_t>(len(p)) * es};
  }
  out_.calls.push_back(std::move(gather));
  return Status::ok();
}

Status Builder::allGatherCols(uint64_t in, int64_t rows, int64_t cols, uint64_t out, int dt) {
  const int N = s_.tp;
  const uint64_t es = static_cast<uint64_t>(elemBytes(dt));
  if (rows <= 0 || cols <= 0) return Status::ok();
  if (N <= 1) return copyCols(in, cols, out, cols, rows, cols, dt);
  const uint64_t bytes = static_cast<uint64_t>(rows * cols) * es;
  CudaCall g;
  g.kind = CudaCallKind::AllGather;
  g.symbol = "allGather";
  g.exchange.send = in;
  g.exchange.bytes = bytes;
  if (rows == 1) {  // [1, cols * N] is the gathered slots themselves
    g.exchange.recv = out;
    out_.calls.push_back(std::move(g));
    return Status::ok();
  }
  setScratch(bytes * static_cast<uint64_t>(N));
  g.exchange.recv = scratch();
  out_.calls.push_back(std::move(g));
  for (int p = 0; p < N; ++p)
    DS_RETURN_IF_ERROR(copyCols(scratch() + bytes * static_cast<uint64_t>(p), cols,
                                out + static_cast<uint64_t>(p * cols) * es, cols * N, rows, cols, dt));
  return Status::ok();
}

}  // namespace ds::hal::cuda::builder

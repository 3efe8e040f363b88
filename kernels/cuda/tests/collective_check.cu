// The tensor-parallel reduction stage of ds_cuda_kernel_check: ds_comm_sum_ranks_<dtype>
// (include/ds_cuda_collective.h) against the definition on the host, bit for bit: element i is
// x_0[i] + x_1[i] + ... added in rank order in f32, rounded once to the dtype. Cases: 2, 3, 8
// ranks; f32 and bf16; the one-shot form (every slot gathered) and the two-phase form (this
// rank's own contribution read in place, dst == self); a count that is not a multiple of the
// block. Inputs span 2^-12 .. 2^4 with both signs, so a different order rounds differently.
#include "check_common.cuh"

namespace dscheck {
namespace {

void checkCommSum(int dt, int nranks, int64_t count, bool in_place) {
  const bool bf = dt == DS_CUDA_BF16;
  const int64_t stride = count + 40;
  std::uniform_real_distribution<float> e(-12.0f, 4.0f), sign(0.0f, 1.0f);
  std::vector<float> slots(size_t(nranks) * stride);
  for (auto& v : slots) {
    v = std::ldexp(1.0f + sign(rng), int(e(rng))) * (sign(rng) < 0.5f ? -1.0f : 1.0f);
    if (bf) v = roundBf16(v);
  }
  const int self_rank = nranks / 2;
  std::vector<float> self(slots.begin() + self_rank * stride, slots.begin() + self_rank * stride + count);
  Buf src(slots, dt), own(self, dt), dst(std::vector<float>(static_cast<size_t>(count)), dt);
  const size_t eb = bf ? 2 : 4;
  if (in_place)  // the rank's own slot in src is not read: NaN there
    CK(cudaMemset(reinterpret_cast<void*>(src.d() + size_t(self_rank * stride) * eb), 0xff, size_t(count) * eb));
  else
    CK(cudaMemset(dst.p, 0xff, size_t(count) * eb));  // NaN until written
  ds_cuda_comm_sum_params p{};
  p.src = src.d();
  p.self = in_place ? own.d() : 0;
  p.dst = in_place ? own.d() : dst.d();
  p.slot_stride = stride;
  p.count = count;
  p.nranks = nranks;
  p.self_rank = self_rank;
  p.dtype = dt;
  ds_cuda_plan plan;
  planOk(ds_cuda_plan_comm_sum(&p, &plan), "comm_sum");
  launch(plan, p);
  std::vector<double> ref(static_cast<size_t>(count)), tol(ref.size(), 0.0);
  for (int64_t i = 0; i < count; ++i) {
    float acc = slots[size_t(i)];
    for (int r = 1; r < nranks; ++r) acc += slots[size_t(r * stride + i)];
    ref[size_t(i)] = bf ? roundBf16(acc) : acc;
  }
  char name[128];
  std::snprintf(name, sizeof name, "comm_sum_ranks %s ranks %d count %lld%s", dn(dt), nranks,
                static_cast<long long>(count), in_place ? " self in place" : "");
  report(name, in_place ? own.get() : dst.get(), ref, tol);
  for (void* q : {src.p, own.p, dst.p}) (void)cudaFree(q);
}

}  // namespace

void collectiveStage() {
  for (int dt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (int n : {2, 3, 8})
      for (bool in_place : {false, true}) {
        checkCommSum(dt, n, 7168, in_place);
        checkCommSum(dt, n, 1000003, in_place);
      }
  CK(cudaDeviceSynchronize());
}

}  // namespace dscheck

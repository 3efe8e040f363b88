// The CPU device's kernel table: one function per launch ABI kind, each a thin adapter from
// LaunchArgs (operands in ABI order, weights by slot, decoded params) to kernels/cpu.
#include "comm/communicator.h"
#include "cpu/composite_kernels.h"
#include "hal/cpu/cpu_executable.h"

#include <algorithm>
#include <cstring>

namespace ds::hal {
namespace {

using K = abi::KernelKind;

float* f(const BufferArg& b) { return static_cast<float*>(b.data); }
const int32_t* i32(const BufferArg& b) { return static_cast<const int32_t*>(b.data); }
int64_t elems(const BufferArg& b) { return b.rows * b.desc->row_elems; }
const CpuWeight& W(const LaunchArgs& a, size_t slot) {
  return static_cast<const CpuWeights&>(*a.weights).at(a.launch->weights[slot]);
}
const CpuWeight* optW(const LaunchArgs& a, size_t slot) {
  return a.launch->hasWeight(slot) ? &W(a, slot) : nullptr;
}
const LaunchParams& P(const LaunchArgs& a) { return a.launch->params; }
cpu::BatchView batchOf(const StepArgs& s) {
  return cpu::BatchView{s.T, s.positions, s.token_seq, s.num_seqs, s.block_table,
                        s.max_blocks_per_seq};
}

Status embed(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  const int64_t per_rank = P(a).rows_per_rank;
  if (per_rank <= 0) {
    cpu::embed(i32(a.in[0]), a.step->T, W(a, 0).views[0], f(a.out[0]));
    return Status::ok();
  }
  // Vocab-parallel: this rank's rows only; the AllReduce that follows fills in the rest.
  cpu::WeightView table = W(a, 0).views[0];
  table.rows = std::min(table.rows, per_rank);
  cpu::embedRange(i32(a.in[0]), a.step->T, table, a.step->rank * per_rank, f(a.out[0]));
  return Status::ok();
}

Status rmsNorm(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  const int64_t h = W(a, 0).views[0].cols;
  cpu::rmsNorm(f(a.in[0]), elems(a.in[0]) / h, h, W(a, 0).views[0], P(a).eps, f(a.out[0]));
  return Status::ok();
}

Status linear(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  const CpuWeight* bias = optW(a, 1);
  cpu::linear(f(a.in[0]), a.step->T, W(a, 0).views[0], bias ? bias->f32.data() : nullptr,
              f(a.out[0]));
  return Status::ok();
}

Status add(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  cpu::add(f(a.in[0]), f(a.in[1]), elems(a.out[0]), f(a.out[0]));
  return Status::ok();
}

Status swiglu(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  cpu::swiglu(f(a.in[0]), f(a.in[1]), elems(a.out[0]), f(a.out[0]));
  return Status::ok();
}

Status slice(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  const int64_t last = a.in[0].desc->cols.back();
  cpu::sliceLastDim(f(a.in[0]), elems(a.in[0]) / last, last, P(a).offset, P(a).size, f(a.out[0]));
  return Status::ok();
}

Status rope(CpuDevice&, const CpuExecutable& exe, const LaunchArgs& a) {
  const std::vector<int64_t>& c = a.out[0].desc->cols;
  if (f(a.out[0]) != f(a.in[0]))
    std::memcpy(f(a.out[0]), f(a.in[0]), elems(a.out[0]) * sizeof(float));
  cpu::Rotary r = exe.rotary(a.index, 0);
  r.fn = nullptr;  // a standalone rope launch has no epilogue (generated ropes serve the launch)
  r.apply(f(a.out[0]), i32(a.in[1]), a.step->T, c[0], c[1]);
  return Status::ok();
}

cpu::PagedKV gqaCache(const CpuExecutable& exe, const StepArgs& s, int64_t layer) {
  const KVDesc& kv = *s.kv;
  cpu::PagedKV c{nullptr, nullptr, s.num_kv_blocks, kv.block_size, kv.kv_heads, kv.head_dim,
                 kv.v_dim};
  c.type = exe.kvType();
  cpu::kvBindBuffer(c, s.kv_layers[layer]);
  return c;
}

Status attention(CpuDevice&, const CpuExecutable& exe, const LaunchArgs& a) {
  const StepArgs& s = *a.step;
  cpu::PagedKV kv = gqaCache(exe, s, P(a).layer);
  const cpu::BatchView batch = batchOf(s);
  cpu::kvWrite(kv, batch, f(a.in[1]), f(a.in[2]));
  cpu::attention(kv, batch, f(a.in[0]), a.in[0].desc->cols[0], P(a).scale, P(a).sliding_window,
                 f(a.out[0]));
  return Status::ok();
}

Status mlaAttention(CpuDevice&, const CpuExecutable& exe, const LaunchArgs& a) {
  const StepArgs& s = *a.step;
  const KVDesc& d = *s.kv;
  cpu::PagedLatentKV kv{nullptr, s.num_kv_blocks, d.block_size, d.rank, d.rope_dim};
  kv.type = exe.kvType();
  cpu::mlaBindBuffer(kv, s.kv_layers[P(a).layer]);
  const cpu::BatchView batch = batchOf(s);
  cpu::mlaKvWrite(kv, batch, f(a.in[2]), f(a.in[3]));
  cpu::mlaAttention(kv, batch, f(a.in[0]), f(a.in[1]), W(a, 0).views[0], P(a).heads,
                    P(a).nope_dim, P(a).v_dim, P(a).scale, f(a.out[0]));
  return Status::ok();
}

Status moeGate(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  const LaunchParams& p = P(a);
  cpu::MoEGateParams g;
  g.top_k = p.top_k;
  g.n_group = p.n_group;
  g.topk_group = p.topk_group;
  g.scoring = p.scoring == 1 ? cpu::MoeScoring::Sigmoid : cpu::MoeScoring::Softmax;
  g.method = static_cast<cpu::MoeTopkMethod>(p.topk_method);
  g.norm_topk_prob = p.norm_topk_prob;
  g.routed_scaling_factor = p.routed_scaling_factor;
  const CpuWeight& gate = W(a, 0);
  const CpuWeight* bias = optW(a, 1);
  cpu::moeGate(f(a.in[0]), a.step->T, gate.views[0].cols, gate.views[0],
               bias ? bias->f32.data() : nullptr, g, f(a.out[0]),
               static_cast<int32_t*>(a.out[1].data));
  return Status::ok();
}

Status moeExperts(CpuDevice& dev, const CpuExecutable&, const LaunchArgs& a) {
  const CpuWeight &g = W(a, 0), &u = W(a, 1), &d = W(a, 2);
  const bool shared = a.launch->hasWeight(3);
  cpu::moeExpertsShared(f(a.in[0]), a.step->T, a.in[0].desc->row_elems, f(a.in[1]), i32(a.in[2]),
                        a.in[1].desc->row_elems, g.views.data(), u.views.data(), d.views.data(),
                        static_cast<int64_t>(g.views.size()),
                        shared ? &W(a, 3).views[0] : nullptr, shared ? &W(a, 4).views[0] : nullptr,
                        shared ? &W(a, 5).views[0] : nullptr, dev.scratch(), f(a.out[0]),
                        a.step->rank * P(a).experts_per_rank);
  return Status::ok();
}

Status logits(CpuDevice& dev, const CpuExecutable&, const LaunchArgs& a) {
  cpu::logitsRows(f(a.in[0]), a.in[0].desc->row_elems, i32(a.in[1]), a.step->R, W(a, 0).views[0],
                  dev.scratch(), f(a.out[0]));
  return Status::ok();
}

Status addRmsNorm(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  const int64_t h = W(a, 0).views[0].cols;
  // Tensor parallelism: b is this rank's partial sum, dead after this launch, so it is reduced
  // over the ranks in place first.
  if (a.step->comm && P(a).all_reduce_rhs)
    DS_RETURN_IF_ERROR(a.step->comm->allReduceSum(f(a.in[1]), elems(a.in[1])));
  cpu::addRmsNorm(f(a.in[0]), f(a.in[1]), elems(a.in[0]) / h, h, W(a, 0).f32.data(), P(a).eps,
                  f(a.out[0]), f(a.out[1]));
  return Status::ok();
}

Status swigluLinear(CpuDevice& dev, const CpuExecutable& exe, const LaunchArgs& a) {
  const bool merged = a.launch->weights[0] == a.launch->weights[1];
  cpu::swigluLinear(f(a.in[0]), a.step->T, W(a, 0).views[0], W(a, 1).views[0], merged,
                    a.out[0].desc->row_elems, exe.epilogue(a.index, 0), dev.scratch(),
                    f(a.out[0]));
  return Status::ok();
}

Status qkvRope(CpuDevice& dev, const CpuExecutable& exe, const LaunchArgs& a) {
  const LaunchDesc& l = *a.launch;
  const bool merged = l.weights[0] == l.weights[1] && l.weights[1] == l.weights[2];
  const bool bias = l.hasWeight(3);
  const std::vector<int64_t>&q = a.out[0].desc->cols, &k = a.out[1].desc->cols;
  cpu::QkvRopeShape shape{q[0], q[1], k[0], k[1], a.out[2].desc->row_elems};
  cpu::qkvRope(f(a.in[0]), a.step->T, i32(a.in[1]), W(a, 0).views[0], W(a, 1).views[0],
               W(a, 2).views[0], bias ? W(a, 3).f32.data() : nullptr,
               bias ? W(a, 4).f32.data() : nullptr, bias ? W(a, 5).f32.data() : nullptr, merged,
               shape, exe.rotary(a.index, 0), exe.rotary(a.index, 1), dev.scratch(), f(a.out[0]),
               f(a.out[1]), f(a.out[2]));
  return Status::ok();
}

Status mlaProject(CpuDevice& dev, const CpuExecutable& exe, const LaunchArgs& a) {
  const bool lora = a.launch->hasWeight(0);
  const std::vector<int64_t>& qn = a.out[0].desc->cols;
  cpu::MlaProjectShape shape{qn[0], qn[1], a.out[3].desc->cols[0], a.out[2].desc->cols[0]};
  cpu::mlaProject(f(a.in[0]), a.step->T, i32(a.in[1]), lora ? &W(a, 0).views[0] : nullptr,
                  lora ? &W(a, 1).views[0] : nullptr, W(a, 2).views[0], W(a, 3).views[0],
                  W(a, 4).views[0], P(a).eps, shape, exe.rotary(a.index, 0),
                  exe.rotary(a.index, 1), dev.scratch(), f(a.out[0]), f(a.out[1]), f(a.out[2]),
                  f(a.out[3]));
  return Status::ok();
}

Status allReduce(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  const int64_t n = elems(a.in[0]);
  if (f(a.out[0]) != f(a.in[0])) std::memcpy(f(a.out[0]), f(a.in[0]), n * sizeof(float));
  return a.step->comm ? a.step->comm->allReduceSum(f(a.out[0]), n) : Status::ok();
}

Status allGather(CpuDevice&, const CpuExecutable&, const LaunchArgs& a) {
  const int64_t rows = a.in[0].rows, cols = a.in[0].desc->row_elems;
  if (a.step->comm) return a.step->comm->allGather(f(a.in[0]), rows, cols, f(a.out[0]));
  std::memcpy(f(a.out[0]), f(a.in[0]), rows * cols * sizeof(float));
  return Status::ok();
}

}  // namespace

const CpuKernelFn kCpuKernels[abi::kNumKernelKinds] = {
    embed,       rmsNorm,    linear,     add,          swiglu,       slice,
    rope,        attention,  mlaAttention, moeGate,    moeExperts,   logits,
    addRmsNorm,  swigluLinear, qkvRope,  mlaProject,   allReduce,    allGather,
};

}  // namespace ds::hal

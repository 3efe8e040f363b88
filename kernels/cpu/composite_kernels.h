// Composite CPU kernels: the launch kinds that are more than one library call (fused norms, the
// fused projections with their rope epilogues, MoE with shared experts, the logits gather).
// Each implements one row of the launch ABI table (runtime/src/abi/launch_abi.cpp) exactly as
// the CPU device runs it; the arithmetic is the contract the e2e goldens pin (bit-identical to
// the earlier runner-side code). LLVM-free.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/cpu_kernels.h"

namespace ds::cpu {

// A generated host kernel (docs/codegen.md): buffers = operands in ABI order, weights = f32
// vectors, rows = the step's rows of the launch's row space.
using GeneratedFn = void (*)(void* const* buffers, const float* const* weights, int64_t rows);

// Temporaries the composites grow as needed (one set per rank; never shared between threads).
struct Scratch {
  std::vector<float> a, b, c;
};

// Rotates x [T, heads, dim] in place at positions[T]: with the generated epilogue `fn` when
// there is one (called as fn({x, positions, x}, null, T)), else with the library rope table.
struct Rotary {
  const RopeTable* table = nullptr;
  GeneratedFn fn = nullptr;
  void apply(float* x, const int32_t* positions, int64_t T, int64_t heads, int64_t dim) const;
};

// add_rms_norm: sum = a + b, y = sum / sqrt(mean(sum^2) + eps) * w over rows of h (w: h floats).
void addRmsNorm(const float* a, const float* b, int64_t rows, int64_t h, const float* w,
                float eps, float* sum, float* y);

// slice: y[r] = x[r, offset:offset + size) over rows of `last` elements.
void sliceLastDim(const float* x, int64_t rows, int64_t last, int64_t offset, int64_t size,
                  float* y);

// swiglu_linear: y [T, N] = silu(x gate^T) * (x up^T). merged: gate is the [2N, K] stacked
// weight (gate rows first; `up` unused), one GEMM then the epilogue row by row. `epilogue` (may
// be null) is the generated swiglu, called as epilogue({gate, up, y}, null, rows).
void swigluLinear(const float* x, int64_t T, const WeightView& gate, const WeightView& up,
                  bool merged, int64_t n, GeneratedFn epilogue, Scratch& s, float* y);

// qkv_rope: q [T, Hq, D], k [T, Hk, D] (rotated), v [T, Hk, Dv] from x [T, K]. merged: wq is the
// [Nq + Nk + Nv, K] stacked weight (and bq the stacked bias), split per row; else three GEMMs.
// Biases null when the launch has none.
struct QkvRopeShape {
  int64_t q_heads, q_dim, k_heads, k_dim, v_elems;  // v_elems = Hk * Dv
};
void qkvRope(const float* x, int64_t T, const int32_t* positions, const WeightView& wq,
             const WeightView& wk, const WeightView& wv, const float* bq, const float* bk,
             const float* bv, bool merged, const QkvRopeShape& shape, const Rotary& rope_q,
             const Rotary& rope_k, Scratch& s, float* q, float* k, float* v);

// mla_project: q = q_b(rms_norm(q_a(x))) (q_a null: q_b(x)), split into q_nope [T, H, Dn] and a
// rotated q_rope [T, H, Dr]; kv_a(x) split into the normed latent c_kv [T, R] and the rotated
// k_rope [T, Dr].
struct MlaProjectShape {
  int64_t heads, nope_dim, rope_dim, rank;
};
void mlaProject(const float* x, int64_t T, const int32_t* positions, const WeightView* q_a,
                const WeightView* q_a_norm, const WeightView& q_b, const WeightView& kv_a,
                const WeightView& kv_a_norm, float eps, const MlaProjectShape& shape,
                const Rotary& rope_q, const Rotary& rope_k, Scratch& s, float* q_nope,
                float* q_rope, float* c_kv, float* k_rope);

// moe_experts with optional shared experts: the routed sum (moeExperts), plus an unscaled SwiGLU
// MLP of the shared_* weights when shared_gate is not null.
void moeExpertsShared(const float* x, int64_t T, int64_t hidden, const float* weights,
                      const int32_t* ids, int64_t top_k, const WeightView* gate,
                      const WeightView* up, const WeightView* down, int64_t num_experts,
                      const WeightView* shared_gate, const WeightView* shared_up,
                      const WeightView* shared_down, Scratch& s, float* out,
                      int64_t first_expert = 0);

// logits: out [R, V] = x[rows[r]] w^T: the requested token rows gathered, then one GEMM.
void logitsRows(const float* x, int64_t hidden, const int32_t* rows, int64_t R,
                const WeightView& w, Scratch& s, float* out);

}  // namespace ds::cpu

// Composite CPU kernels (composite_kernels.h): sequences of library kernels with their splits.
#include "cpu/composite_kernels.h"

#include <cmath>
#include <cstring>

namespace ds::cpu {

void Rotary::apply(float* x, const int32_t* positions, int64_t T, int64_t heads,
                   int64_t dim) const {
  if (fn) {
    void* bufs[3] = {x, const_cast<int32_t*>(positions), x};  // (x, positions, y)
    fn(bufs, nullptr, T);
  } else {
    table->apply(x, positions, T, heads, dim);
  }
}

void addRmsNorm(const float* a, const float* b, int64_t rows, int64_t h, const float* w,
                float eps, float* sum, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *ar = a + r * h, *br = b + r * h;
    float* sr = sum + r * h;
    float ss = 0.0f;
    for (int64_t i = 0; i < h; ++i) {
      sr[i] = ar[i] + br[i];
      ss += sr[i] * sr[i];
    }
    float inv = 1.0f / std::sqrt(ss / static_cast<float>(h) + eps);
    float* yr = y + r * h;
    for (int64_t i = 0; i < h; ++i) yr[i] = w[i] * (sr[i] * inv);
  }
}

void sliceLastDim(const float* x, int64_t rows, int64_t last, int64_t offset, int64_t size,
                  float* y) {
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(y + r * size, x + r * last + offset, size * sizeof(float));
}

void swigluLinear(const float* x, int64_t T, const WeightView& gate, const WeightView& up,
                  bool merged, int64_t n, GeneratedFn epilogue, Scratch& s, float* y) {
  if (merged) {
    // Merged [2N, K] gate/up weight: one GEMM, then silu(gate) * up per row.
    s.a.resize(T * 2 * n);
    linear(x, T, gate, nullptr, s.a.data());
    for (int64_t t = 0; t < T; ++t) {
      float* g = s.a.data() + t * 2 * n;
      if (epilogue) {  // one row at a time: gate and up rows are interleaved in the merged output
        void* bufs[3] = {g, g + n, y + t * n};
        epilogue(bufs, nullptr, 1);
      } else {
        swiglu(g, g + n, n, y + t * n);
      }
    }
    return;
  }
  s.a.resize(T * n);
  linear(x, T, gate, nullptr, s.a.data());
  linear(x, T, up, nullptr, y);
  if (epilogue) {
    void* bufs[3] = {s.a.data(), y, y};
    epilogue(bufs, nullptr, T);
  } else {
    swiglu(s.a.data(), y, T * n, y);
  }
}

void qkvRope(const float* x, int64_t T, const int32_t* positions, const WeightView& wq,
             const WeightView& wk, const WeightView& wv, const float* bq, const float* bk,
             const float* bv, bool merged, const QkvRopeShape& sh, const Rotary& rope_q,
             const Rotary& rope_k, Scratch& s, float* q, float* k, float* v) {
  const int64_t nq = sh.q_heads * sh.q_dim, nk = sh.k_heads * sh.k_dim, nv = sh.v_elems;
  if (merged) {
    // Merged [Nq + Nk + Nv, K] weight (and bias): one GEMM, rows split into q, k, v.
    const int64_t n = nq + nk + nv;
    s.a.resize(T * n);
    linear(x, T, wq, bq, s.a.data());
    for (int64_t t = 0; t < T; ++t) {
      const float* row = s.a.data() + t * n;
      std::memcpy(q + t * nq, row, nq * sizeof(float));
      std::memcpy(k + t * nk, row + nq, nk * sizeof(float));
      std::memcpy(v + t * nv, row + nq + nk, nv * sizeof(float));
    }
  } else {
    linear(x, T, wq, bq, q);
    linear(x, T, wk, bk, k);
    linear(x, T, wv, bv, v);
  }
  rope_q.apply(q, positions, T, sh.q_heads, sh.q_dim);
  rope_k.apply(k, positions, T, sh.k_heads, sh.k_dim);
}

void mlaProject(const float* x, int64_t T, const int32_t* positions, const WeightView* q_a,
                const WeightView* q_a_norm, const WeightView& q_b, const WeightView& kv_a,
                const WeightView& kv_a_norm, float eps, const MlaProjectShape& sh,
                const Rotary& rope_q, const Rotary& rope_k, Scratch& s, float* q_nope,
                float* q_rope, float* c_kv, float* k_rope) {
  const float* src = x;
  if (q_a) {
    s.a.resize(T * q_a->rows);
    linear(x, T, *q_a, nullptr, s.a.data());
    rmsNorm(s.a.data(), T, q_a->rows, *q_a_norm, eps, s.a.data());
    src = s.a.data();
  }
  s.b.resize(T * q_b.rows);
  linear(src, T, q_b, nullptr, s.b.data());
  const int64_t heads = sh.heads, nope = sh.nope_dim, rdim = sh.rope_dim, rank = sh.rank;
  for (int64_t r = 0; r < T * heads; ++r) {
    const float* row = s.b.data() + r * (nope + rdim);
    std::memcpy(q_nope + r * nope, row, nope * sizeof(float));
    std::memcpy(q_rope + r * rdim, row + nope, rdim * sizeof(float));
  }
  s.c.resize(T * kv_a.rows);
  linear(x, T, kv_a, nullptr, s.c.data());
  for (int64_t t = 0; t < T; ++t) {
    std::memcpy(c_kv + t * rank, s.c.data() + t * (rank + rdim), rank * sizeof(float));
    std::memcpy(k_rope + t * rdim, s.c.data() + t * (rank + rdim) + rank, rdim * sizeof(float));
  }
  rmsNorm(c_kv, T, rank, kv_a_norm, eps, c_kv);
  rope_q.apply(q_rope, positions, T, heads, rdim);
  rope_k.apply(k_rope, positions, T, 1, rdim);
}

void moeExpertsShared(const float* x, int64_t T, int64_t hidden, const float* weights,
                      const int32_t* ids, int64_t top_k, const WeightView* gate,
                      const WeightView* up, const WeightView* down, int64_t num_experts,
                      const WeightView* shared_gate, const WeightView* shared_up,
                      const WeightView* shared_down, Scratch& s, float* out,
                      int64_t first_expert) {
  moeExperts(x, T, hidden, weights, ids, top_k, gate, up, down, num_experts, out, first_expert);
  if (!shared_gate) return;
  // Shared experts: an unscaled SwiGLU MLP added to the routed sum.
  const int64_t inter = shared_gate->rows;
  s.a.resize(T * inter);
  s.b.resize(T * inter);
  s.c.resize(T * hidden);
  linear(x, T, *shared_gate, nullptr, s.a.data());
  linear(x, T, *shared_up, nullptr, s.b.data());
  swiglu(s.a.data(), s.b.data(), T * inter, s.a.data());
  linear(s.a.data(), T, *shared_down, nullptr, s.c.data());
  add(out, s.c.data(), T * hidden, out);
}

void logitsRows(const float* x, int64_t hidden, const int32_t* rows, int64_t R,
                const WeightView& w, Scratch& s, float* out) {
  s.a.resize(R * hidden);
  for (int64_t r = 0; r < R; ++r)
    std::memcpy(s.a.data() + r * hidden, x + rows[r] * hidden, hidden * sizeof(float));
  linear(s.a.data(), R, w, nullptr, out);
}

}  // namespace ds::cpu

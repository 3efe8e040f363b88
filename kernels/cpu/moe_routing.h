// The routed slots of one MoE step grouped by local expert: the bookkeeping the host kernel
// (moe.cpp moeExperts) runs on, and the definition the GPU's ds_moe_permute must reproduce bit
// for bit (kernels/cuda/include/ds_cuda_moe.h; the GPU check compares them).
#pragma once

#include <cstdint>
#include <vector>

namespace ds::cpu {

// Slot (t, j) routes token t to global expert ids[t * top_k + j]; its local expert is
// e = id - first_expert when 0 <= e < num_local, else the slot is skipped (expert parallelism:
// another rank's expert; -1: no expert). Rows of local expert e are [start[e], start[e + 1]),
// in slot order; start[num_local] counts every local row.
struct ExpertRows {
  std::vector<int32_t> start;       // [num_local + 1]
  std::vector<int32_t> active;      // local experts with rows, ascending, then their count
  std::vector<int32_t> row_token;   // [rows]
  std::vector<float> row_weight;    // [rows]
  std::vector<int32_t> slot_row;    // [T * top_k]: the slot's row, or -1
  int32_t rows() const { return start.empty() ? 0 : start.back(); }
};

inline void permuteByExpert(const int32_t* ids, const float* weights, int64_t T, int64_t top_k,
                            int64_t first_expert, int64_t num_local, ExpertRows* out) {
  const int64_t slots = T * top_k;
  auto localOf = [&](int64_t s) {
    const int64_t e = static_cast<int64_t>(ids[s]) - first_expert;
    return e >= 0 && e < num_local ? e : int64_t{-1};
  };
  out->start.assign(num_local + 1, 0);
  for (int64_t s = 0; s < slots; ++s)
    if (int64_t e = localOf(s); e >= 0) ++out->start[e + 1];
  out->active.clear();
  for (int64_t e = 0; e < num_local; ++e) {
    if (out->start[e + 1] > 0) out->active.push_back(static_cast<int32_t>(e));
    out->start[e + 1] += out->start[e];
  }
  out->active.resize(num_local + 1, 0);
  int32_t count = 0;
  for (int64_t e = 0; e < num_local; ++e) count += out->start[e + 1] > out->start[e];
  out->active[num_local] = count;
  const int32_t rows = out->start[num_local];
  out->row_token.assign(rows, 0);
  out->row_weight.assign(rows, 0.0f);
  out->slot_row.assign(slots, -1);
  std::vector<int32_t> next(out->start.begin(), out->start.end() - 1);
  for (int64_t s = 0; s < slots; ++s) {
    const int64_t e = localOf(s);
    if (e < 0) continue;
    const int32_t r = next[e]++;
    out->row_token[r] = static_cast<int32_t>(s / top_k);
    out->row_weight[r] = weights[s];
    out->slot_row[s] = r;
  }
}

}  // namespace ds::cpu

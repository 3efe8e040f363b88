// Shared by the launch builder's tests (cuda_launches_test.cpp, cuda_mla_launches_test.cpp,
// cuda_collectives_test.cpp): buffer descriptors, launches of one kind, and a call's params.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hal/cuda/cuda_launches.h"

namespace ds::hal::cuda::test {

inline BufferDesc buf(std::vector<int64_t> cols, DType dt = DType::F32) {
  BufferDesc b;
  b.cols = cols;
  b.row_elems = 1;
  for (int64_t c : cols) b.row_elems *= c;
  b.dtype = dt;
  return b;
}

// A launch of `kind`: inputs 0, 1, ..., outputs 10, 11, ..., the given weight slots.
inline LaunchDesc launch(abi::KernelKind kind, std::vector<int32_t> weights = {}) {
  LaunchDesc l;
  l.kind = kind;
  l.sig = abi::signature(kind);
  for (size_t i = 0; i < l.sig->num_inputs; ++i) l.inputs.push_back(static_cast<int>(i));
  for (size_t i = 0; i < l.sig->num_outputs; ++i) l.outputs.push_back(static_cast<int>(10 + i));
  l.weights = weights;
  return l;
}

template <typename P>
P params(const CudaCall& c) {
  P p{};
  EXPECT_EQ(c.params.size(), sizeof(P)) << c.symbol;
  if (c.params.size() == sizeof(P)) std::memcpy(&p, c.params.data(), sizeof(P));
  return p;
}

inline std::vector<std::string> symbols(const CudaLaunchPlan& p) {
  std::vector<std::string> s;
  for (const CudaCall& c : p.calls) s.push_back(c.symbol);
  return s;
}

}  // namespace ds::hal::cuda::test

// Which of a fat host artifact's code objects (--codegen-cpu x86-64-v3,x86-64-v4: the same
// kernels per CPU level) runs on this CPU. Pure: the features a machine has come in as a
// predicate, so tests choose over any feature set.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ds {

// One host code object as its metadata describes it.
struct HostCodeCandidate {
  uint32_t index = 0;                  // in Artifact.code
  std::string cpu;                     // the level it was compiled for ("x86-64-v4", "znver4")
  std::vector<std::string> features;   // the CPU features it needs
};

struct HostCodeChoice {
  int index = -1;          // the chosen candidate's Artifact.code index; -1: none runs
  // When none runs: per candidate, the features the machine lacks ("code object 1
  // (x86-64-v4) needs avx512f, avx512bw; ..."). Empty otherwise.
  std::string missing;
};

// The candidate with the most features among those whose features are all present (the first
// of equals); none present: index -1 and what each one lacks.
HostCodeChoice chooseHostCode(const std::vector<HostCodeCandidate>& candidates,
                              const std::function<bool(const std::string&)>& has_feature);

}  // namespace ds

// ds-bench --sweep (see sweep.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/engine.h"

namespace ds::artifact {
class Artifact;
}

namespace ds::bench {

struct SweepOptions {
  std::vector<int64_t> batches{1, 8, 32, 128};   // decode batch sizes
  std::vector<int64_t> prompts{128, 512, 2048};  // prefill prompt lengths
  int64_t context = 128;                          // decode: prompt tokens per sequence
  int64_t decode_steps = 16;                      // decode: timed steps
  bool json = false;
  EngineOptions engine;                           // threads, native code, GPU options
};

// Prints the table (or JSON); rows that cannot run say why (e.g. past the context).
int runSweep(const artifact::Artifact& artifact, const SweepOptions& options);

}  // namespace ds::bench

// CUDA-graph batch-size buckets for decode steps: which sizes are captured, which bucket a step
// replays, and how a decode step is padded up to it. Plain data, testable without a GPU
// (docs/cuda.md "CUDA graphs").
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "hal/decode_steps.h"

namespace ds::hal::cuda {

// vLLM's capture sizes: 1, 2, 4, then every multiple of 8 up to 256, then every multiple of 16,
// capped at max_batch (always included as the last bucket). Empty for max_batch < 1.
std::vector<int64_t> graphBatchBuckets(int64_t max_batch);

// The bucket choice and decode padding are device-independent (hal/decode_steps.h).
using hal::chooseBucket;
using hal::DecodeInputs;
using hal::isPureDecode;
using hal::padDecodeStep;

}  // namespace ds::hal::cuda

// Load-time check of the step plan against the typed launch ABI (abi/launch_abi.h).
#pragma once

#include <string>

#include "artifact_generated.h"
#include "base/status.h"

namespace ds::artifact {

// Every launch matches its kernel's signature: operand counts, operand kinds (i32 indices vs
// float activations) and ranks, weight slots (required ones present, -1 only in optional slots,
// groups all-or-none), the params table the kernel takes, and parameter values in range (a layer
// index inside the KV cache, attention shapes that agree with the cache, slice bounds, rope
// dimensions, expert counts). Also the KV cache spec itself. Assumes checkReferences' index
// checks passed. DATA_LOSS naming `file`, the launch ("plan.launches[12] (Attention)") and what is
// wrong.
Status checkLaunches(const std::string& file, const fb::Artifact& meta);

}  // namespace ds::artifact

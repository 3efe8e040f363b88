// The fake driver's record of one runner step, checked: launch order against the plan and every
// library launch's (and generated kernel's) device ranges inside live allocations.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "hal/launch.h"

namespace ds::test {

// names: the step's launch names (from the fake's log, starting at log index `first`); dtype:
// "bf16" or "f32"; attention: the prefix of the GQA attention kernel after each KV write.
void checkStep(const hal::StepPlan& plan, const std::vector<std::string>& names, size_t first,
               const char* dtype, const char* attention);

}  // namespace ds::test

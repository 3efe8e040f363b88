// The CPU device's choice among host code objects: the best one whose features are all present.
#include "hal/cpu/host_code_choice.h"

namespace ds {

HostCodeChoice chooseHostCode(const std::vector<HostCodeCandidate>& candidates,
                              const std::function<bool(const std::string&)>& has_feature) {
  HostCodeChoice choice;
  size_t best = 0;
  std::string missing;
  for (const HostCodeCandidate& c : candidates) {
    std::string lacks;
    for (const std::string& f : c.features)
      if (!has_feature(f)) lacks += (lacks.empty() ? "" : ", ") + f;
    if (!lacks.empty()) {
      missing += (missing.empty() ? "" : "; ") + std::string("code object ") +
                 std::to_string(c.index) + " (" + c.cpu + ") needs " + lacks;
      continue;
    }
    if (choice.index < 0 || c.features.size() > best) {
      choice.index = static_cast<int>(c.index);
      best = c.features.size();
    }
  }
  if (choice.index < 0) choice.missing = missing;
  return choice;
}

}  // namespace ds

// ds-inspect's summary of an artifact: built once as JSON, printed as JSON or as text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "artifact/artifact_reader.h"

namespace ds::inspect {

struct SummaryOptions {
  bool all_tensors = false;       // else the first kTensorPreview
  bool weights_verified = false;  // whether open() hashed the segments
};
constexpr size_t kTensorPreview = 10;

// Everything ds-inspect reports; missing optional tables become null.
nlohmann::json summarize(const artifact::Artifact& a, const SummaryOptions& options);

// The human-readable rendering of summarize()'s result.
std::string renderText(const nlohmann::json& summary);

}  // namespace ds::inspect

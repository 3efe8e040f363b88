// Checks of the metadata flatbuffer shared by the writer (before it commits) and the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "artifact_generated.h"
#include "base/status.h"

namespace ds::artifact {

// Runs the flatbuffers Verifier and checks the "DSA1" file identifier and schema_version.
// DATA_LOSS naming `file` on failure; on success *out is the root.
Status verifyMetadataBuffer(const std::string& file, const uint8_t* data, size_t size,
                            const fb::Artifact** out);

// Every index the metadata holds points at something that exists, every enum is in range and
// every tensor's nbytes equals its shape times its dtype size and fits its segment, so
// consumers can index without bounds checks. DATA_LOSS naming `file` and the field.
Status checkReferences(const std::string& file, const fb::Artifact& meta);

}  // namespace ds::artifact

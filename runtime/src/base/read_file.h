// Reading a whole small input file (tokenizer.json, config, token lists) safely: opened with
// O_NONBLOCK so a FIFO or device never blocks, refused unless it is a regular file, and refused
// when larger than the caller's limit (so a huge or growing file cannot exhaust memory).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace ds {

// Default limit for the text inputs of the tokenizer and templates.
constexpr uint64_t kMaxInputFileBytes = uint64_t{1} << 30;

Status readRegularFile(const std::string& path, std::string* out,
                       uint64_t max_bytes = kMaxInputFileBytes);

// "a directory", "a FIFO", "a character device", ... for messages about a file that is not
// regular (`mode` from stat).
const char* fileTypeName(unsigned mode);

}  // namespace ds

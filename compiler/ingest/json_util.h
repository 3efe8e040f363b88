// Strict JSON parsing for checkpoint headers and configs: duplicate keys are an error, never "last wins".
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace ds {

// Parses `text` into `out`. Syntax errors and duplicate object keys give DATA_LOSS naming
// `source` (a file name) and, for duplicates, the key. Never throws.
Status parseJsonStrict(std::string_view text, std::string_view source, nlohmann::json* out);

// Short description of a JSON value's type for error messages ("string", "number", ...).
const char* jsonTypeName(const nlohmann::json& value);

// Reads a whole (small) regular file into a string (readRegularFile: a FIFO is an error, not a
// hang); NOT_FOUND if it does not exist.
Status readTextFile(const std::string& path, std::string* out);

}  // namespace ds

// HF tokenizer.json normalizers: NFC/NFD/NFKC/NFKD (ICU), Sequence, Prepend, Replace, Lowercase, Strip.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/json_util.h"

namespace ds::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `text` (valid UTF-8) in place.
  virtual Status apply(std::string* text) const = 0;
};

// Builds the normalizer described by `j` (null -> nullptr, i.e. identity). Unknown types give an
// UNSUPPORTED status naming `where` and the type.
StatusOr<std::unique_ptr<Normalizer>> parseNormalizer(const Json& j, std::string_view where);

class Regex;
// A Replace/Split pattern: {"String": s} (literal) or {"Regex": r}; errors name `where`.pattern.
StatusOr<std::shared_ptr<Regex>> parsePattern(const Json& j, std::string_view where);

}  // namespace ds::tok

// PCRE2 (UTF + UCP, JIT when available) wrapper used by Split pre-tokenizers and normalizers.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ds::tok {

class Regex {
 public:
  // `literal` compiles the pattern as a plain string (HF {"String": ...} patterns).
  // `where` names the JSON field for error messages.
  static StatusOr<std::shared_ptr<Regex>> compile(std::string_view pattern, bool literal,
                                                  std::string_view where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [start, end) byte ranges of all non-overlapping matches in `text`, which must be
  // valid UTF-8. Empty matches are skipped, as the HF pre-tokenizers drop empty pieces.
  Status findAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const;
  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace ds::tok

// HF pre-tokenizers: Split (all behaviours, invert), ByteLevel, Digits, Metaspace, Whitespace,
// WhitespaceSplit, Punctuation and Sequence; pieces stay raw UTF-8 bytes (no byte->char mapping).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_util.h"

namespace ds::tok {

// Owns the text of pieces that a pre-tokenizer rewrote (prefix space, Metaspace); the other
// pieces are views into the caller's text, so splitting allocates nothing per piece.
class PieceArena {
 public:
  std::string_view own(std::string s) {
    owned_.push_back(std::move(s));
    return owned_.back();
  }

 private:
  std::deque<std::string> owned_;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece further. `first_segment` says pieces[0] starts the whole input (Metaspace's
  // prepend_scheme "first").
  virtual Status apply(std::vector<std::string_view>* pieces, bool first_segment, PieceArena* arena) const = 0;
};

struct PreTokenizerInfo {
  // True when the chain ends in ByteLevel: the model then sees raw bytes and its vocabulary is
  // keyed by the bytes its byte-level characters stand for.
  bool byte_level = false;
};

// null -> nullptr (the whole segment is one piece). ByteLevel must be the last step, since later
// steps would see mapped characters; anything else unknown gives UNSUPPORTED naming `where`.
StatusOr<std::unique_ptr<PreTokenizer>> parsePreTokenizer(const Json& j, std::string_view where,
                                                          PreTokenizerInfo* info);

}  // namespace ds::tok

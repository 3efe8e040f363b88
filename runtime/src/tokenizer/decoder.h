// Decoding as a byte stream: every id owns a precomputed byte piece, a few position rules cover
// the context-dependent decoders (Metaspace / SentencePiece leading space, Strip after Fuse).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_util.h"
#include "tokenizer/utf8.h"

namespace ds::tok {

using TokenId = int32_t;

struct DecodeTable {
  enum Flag : uint8_t {
    kSpecial = 1,           // dropped when skip_special_tokens
    kTransparent = 2,       // does not count as the "first token" (SentencePiece control tokens)
    kKeepLeadingSpace = 4,  // never loses its leading space (SentencePiece unk and byte pieces)
  };
  std::vector<std::string> piece;  // raw output bytes of each id
  std::vector<uint8_t> flags;
  int first_token_strip = 0;  // leading spaces removed from the first counted token
  int leading_strip = 0;      // leading `leading_strip_char`s removed from the whole output
  char leading_strip_char = ' ';
  bool join_with_space = false;  // no decoder: HF joins tokens with " "
};

// Fills table->piece from the token strings through tokenizer.json's "decoder" (null allowed).
// Unknown decoder types give UNSUPPORTED naming `where`.
Status buildDecodeTable(const Json& decoder, const std::vector<std::string>& id_to_token,
                        std::string_view where, DecodeTable* table);

// The state of one decode: fed id by id, it emits only complete UTF-8.
class DecodeStream {
 public:
  DecodeStream(const DecodeTable* table, bool skip_special)
      : table_(table), skip_special_(skip_special), leading_left_(table->leading_strip) {}
  // Appends the text that `id` completes; INVALID_ARGUMENT for an id outside the vocabulary.
  Status push(TokenId id, std::string* out);
  // Flushes an unfinished UTF-8 sequence as U+FFFD.
  void finish(std::string* out) { utf8_.finish(out); }

 private:
  const DecodeTable* table_;
  bool skip_special_;
  bool first_ = true;
  int leading_left_;
  Utf8Sanitizer utf8_;
};

}  // namespace ds::tok

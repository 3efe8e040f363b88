// UTF-8 helpers for the tokenizer: validation, a chunk-invariant lossy decoder, the GPT-2 byte map.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ds::tok {

// Byte offset of the first invalid UTF-8 sequence, or npos when `s` is valid.
size_t findInvalidUtf8(std::string_view s);

// Length in bytes of the UTF-8 sequence led by `lead` (1 for stray continuation bytes).
inline size_t utf8SeqLen(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Appends code point `cp` as UTF-8.
void appendUtf8(uint32_t cp, std::string* out);

// Decodes the code point at s[i] (s must be valid UTF-8); advances i.
uint32_t nextCodePoint(std::string_view s, size_t* i);

// Turns a byte stream into valid UTF-8, replacing each maximal invalid subpart with U+FFFD
// (the WHATWG / Unicode "best practice" rule, as Rust's from_utf8_lossy does). Feeding the bytes
// in any chunking yields the same text, which is what lets the streaming detokenizer promise
// that its pieces concatenate to decode(all ids).
class Utf8Sanitizer {
 public:
  // Appends the text completed by `bytes`; an unfinished sequence is held back.
  void feed(std::string_view bytes, std::string* out);
  // Flushes a held-back unfinished sequence as U+FFFD.
  void finish(std::string* out);
  bool hasPending() const { return needed_ != 0; }

 private:
  void feedByte(unsigned char b, std::string* out);
  int needed_ = 0;
  int seen_ = 0;
  unsigned char lower_ = 0x80, upper_ = 0xBF;
  char pending_[4] = {};
};

// GPT-2 byte-level alphabet: each byte maps to one printable code point.
struct ByteLevelAlphabet {
  std::array<uint32_t, 256> byte_to_cp;
  std::array<std::string, 256> byte_to_utf8;
  // Code point -> byte, -1 when the code point is not in the alphabet (all are < 324).
  std::array<int16_t, 324> cp_to_byte;
};
const ByteLevelAlphabet& byteLevelAlphabet();

// Maps a string of alphabet characters back to raw bytes; false when some character is not
// in the alphabet (e.g. "<|endoftext|>"-style added tokens keep their literal text).
bool byteLevelDecode(std::string_view token, std::string* bytes);

}  // namespace ds::tok

// UTF-8 validation, the streaming lossy decoder and the GPT-2 byte-level alphabet.
#include "tokenizer/utf8.h"

namespace ds::tok {

size_t findInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string_view::npos;
}

void appendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t nextCodePoint(std::string_view s, size_t* i) {
  auto c = static_cast<unsigned char>(s[*i]);
  size_t len = utf8SeqLen(c);
  if (*i + len > s.size()) len = 1;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[*i + k]) & 0x3F);
  *i += len;
  return cp;
}

static const char kReplacement[] = "\xEF\xBF\xBD";

void Utf8Sanitizer::feed(std::string_view bytes, std::string* out) {
  // Fast path: ASCII runs with nothing pending go straight through.
  size_t i = 0;
  while (i < bytes.size()) {
    if (needed_ == 0) {
      size_t j = i;
      while (j < bytes.size() && static_cast<unsigned char>(bytes[j]) < 0x80) ++j;
      out->append(bytes.data() + i, j - i);
      i = j;
      if (i == bytes.size()) break;
    }
    feedByte(static_cast<unsigned char>(bytes[i]), out);
    ++i;
  }
}

// WHATWG "UTF-8 decoder" state machine, emitting bytes of valid sequences verbatim.
void Utf8Sanitizer::feedByte(unsigned char b, std::string* out) {
  if (needed_ == 0) {
    if (b < 0x80) {
      out->push_back(static_cast<char>(b));
    } else if (b >= 0xC2 && b <= 0xDF) {
      needed_ = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      if (b == 0xE0) lower_ = 0xA0;
      if (b == 0xED) upper_ = 0x9F;
      needed_ = 2;
    } else if (b >= 0xF0 && b <= 0xF4) {
      if (b == 0xF0) lower_ = 0x90;
      if (b == 0xF4) upper_ = 0x8F;
      needed_ = 3;
    } else {
      out->append(kReplacement);
      return;
    }
    if (needed_) {
      pending_[0] = static_cast<char>(b);
      seen_ = 0;
    }
    return;
  }
  if (b < lower_ || b > upper_) {
    // Invalid continuation: the held-back prefix becomes one U+FFFD and `b` starts afresh.
    needed_ = seen_ = 0;
    lower_ = 0x80;
    upper_ = 0xBF;
    out->append(kReplacement);
    feedByte(b, out);
    return;
  }
  lower_ = 0x80;
  upper_ = 0xBF;
  pending_[++seen_] = static_cast<char>(b);
  if (seen_ == needed_) {
    out->append(pending_, static_cast<size_t>(seen_ + 1));
    needed_ = seen_ = 0;
  }
}

void Utf8Sanitizer::finish(std::string* out) {
  if (needed_ != 0) out->append(kReplacement);
  needed_ = seen_ = 0;
  lower_ = 0x80;
  upper_ = 0xBF;
}

static ByteLevelAlphabet buildAlphabet() {
  ByteLevelAlphabet a;
  a.cp_to_byte.fill(-1);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
    a.byte_to_cp[b] = cp;
    a.cp_to_byte[cp] = static_cast<int16_t>(b);
    appendUtf8(cp, &a.byte_to_utf8[b]);
  }
  return a;
}

const ByteLevelAlphabet& byteLevelAlphabet() {
  static const ByteLevelAlphabet alphabet = buildAlphabet();
  return alphabet;
}

bool byteLevelDecode(std::string_view token, std::string* bytes) {
  const ByteLevelAlphabet& a = byteLevelAlphabet();
  bytes->clear();
  if (findInvalidUtf8(token) != std::string_view::npos) return false;
  size_t i = 0;
  while (i < token.size()) {
    uint32_t cp = nextCodePoint(token, &i);
    if (cp >= a.cp_to_byte.size() || a.cp_to_byte[cp] < 0) return false;
    bytes->push_back(static_cast<char>(a.cp_to_byte[cp]));
  }
  return true;
}

}  // namespace ds::tok

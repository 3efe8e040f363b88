// Python str helpers on UTF-8 strings: code points, whitespace, strip/split, case mapping.
#include "jinja/text.h"

#include <algorithm>

#include "jinja/value.h"

namespace ds::tpl::text {
namespace {

// Decodes the code point starting at s[i]; sets len. Invalid sequences decode as one byte.
char32_t decode(const std::string& s, size_t i, size_t* len) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) { *len = 1; return c; }
  char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d >> 6) != 2) { *len = 1; return c; }
    cp = (cp << 6) | (d & 0x3f);
  }
  *len = n;
  return cp;
}


// Byte offsets of code point boundaries that are whitespace runs, for split(None).
std::vector<std::pair<size_t, size_t>> words(const std::string& s) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  size_t start = std::string::npos;
  while (i < s.size()) {
    size_t len;
    bool space = isSpace(decode(s, i, &len));
    if (!space && start == std::string::npos) start = i;
    if (space && start != std::string::npos) { out.emplace_back(start, i); start = std::string::npos; }
    i += len;
  }
  if (start != std::string::npos) out.emplace_back(start, s.size());
  return out;
}

}  // namespace

std::vector<std::string> codepoints(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    decode(s, i, &len);
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

size_t length(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    size_t len;
    decode(s, i, &len);
    i += len;
  }
  return n;
}

bool isSpace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

std::string strip(const std::string& s, const std::string* chars, bool left, bool right) {
  std::vector<std::string> set;
  if (chars) set = codepoints(*chars);
  auto strippable = [&](const std::string& cp) {
    if (!chars) {
      size_t len;
      return isSpace(decode(cp, 0, &len));
    }
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  std::vector<std::string> cps = codepoints(s);
  size_t b = 0, e = cps.size();
  if (left) while (b < e && strippable(cps[b])) ++b;
  if (right) while (e > b && strippable(cps[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

std::vector<std::string> split(const std::string& s, const std::string* sep, long maxsplit) {
  std::vector<std::string> out;
  if (!sep) {
    auto ws = words(s);
    for (size_t i = 0; i < ws.size(); ++i) {
      if (maxsplit >= 0 && static_cast<long>(out.size()) == maxsplit) {
        out.push_back(s.substr(ws[i].first));
        return out;
      }
      out.push_back(s.substr(ws[i].first, ws[i].second - ws[i].first));
    }
    return out;
  }
  if (sep->empty()) fail("empty separator");
  size_t start = 0;
  while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
    size_t p = s.find(*sep, start);
    if (p == std::string::npos) break;
    out.push_back(s.substr(start, p - start));
    start = p + sep->size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::vector<std::string> rsplit(const std::string& s, const std::string* sep, long maxsplit) {
  if (maxsplit < 0) return split(s, sep, maxsplit);
  std::vector<std::string> out;
  if (!sep) {
    auto ws = words(s);
    size_t i = ws.size();
    while (i > 0) {
      --i;
      if (static_cast<long>(out.size()) == maxsplit) {
        out.push_back(s.substr(0, ws[i].second));
        break;
      }
      out.push_back(s.substr(ws[i].first, ws[i].second - ws[i].first));
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  if (sep->empty()) fail("empty separator");
  size_t end = s.size();
  while (static_cast<long>(out.size()) < maxsplit && end >= sep->size()) {
    size_t p = s.rfind(*sep, end - sep->size());
    if (p == std::string::npos) break;
    out.push_back(s.substr(p + sep->size(), end - p - sep->size()));
    end = p;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, long count,
                    size_t max_bytes) {
  std::string out;
  auto append = [&](const std::string& piece, size_t pos, size_t n) {
    if (out.size() + n > max_bytes) fail("string result larger than " + std::to_string(max_bytes) + " bytes");
    out.append(piece, pos, n);
  };
  if (from.empty()) {
    // Python inserts `to` before every code point and at the end.
    long done = 0;
    for (const std::string& cp : codepoints(s)) {
      if (count < 0 || done < count) { append(to, 0, to.size()); ++done; }
      append(cp, 0, cp.size());
    }
    if (count < 0 || done < count) append(to, 0, to.size());
    return out;
  }
  size_t start = 0;
  long done = 0;
  while (count < 0 || done < count) {
    size_t p = s.find(from, start);
    if (p == std::string::npos) break;
    append(s, start, p - start);
    append(to, 0, to.size());
    start = p + from.size();
    ++done;
  }
  append(s, start, s.size() - start);
  return out;
}

namespace {

// Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic (no special casing).
char32_t toUpperCp(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if (c == 0xb5) return 0x39c;
  if (c == 0xff) return 0x178;
  if (c >= 0xe0 && c <= 0xfe && c != 0xf7) return c - 32;
  if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17f) {
    bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
    return (c % 2 == (odd_lower ? 0 : 1)) ? c - 1 : c;
  }
  if (c == 0x3c2) return 0x3a3;
  if (c >= 0x3b1 && c <= 0x3cb) return c - 32;
  if (c >= 0x430 && c <= 0x44f) return c - 32;
  if (c >= 0x450 && c <= 0x45f) return c - 80;
  return c;
}

char32_t toLowerCp(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if (c == 0x178) return 0xff;
  if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;
  if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17f) {
    bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e);
    return (c % 2 == (odd_lower ? 1 : 0)) ? c + 1 : c;
  }
  if (c >= 0x391 && c <= 0x3ab && c != 0x3a2) return c + 32;
  if (c >= 0x410 && c <= 0x42f) return c + 32;
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  return c;
}

bool isCased(char32_t c) { return toUpperCp(c) != c || toLowerCp(c) != c; }

template <typename F>
std::string mapCodepoints(const std::string& s, F f) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len;
    char32_t cp = decode(s, i, &len);
    if (len == 1 && cp >= 0x80) out += s[i];  // invalid byte: keep as is
    else appendUtf8(out, f(cp));
    i += len;
  }
  return out;
}

}  // namespace

void appendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string upper(const std::string& s) { return mapCodepoints(s, toUpperCp); }
std::string lower(const std::string& s) { return mapCodepoints(s, toLowerCp); }

std::string title(const std::string& s) {
  bool prev_cased = false;
  return mapCodepoints(s, [&](char32_t c) {
    char32_t r = prev_cased ? toLowerCp(c) : toUpperCp(c);
    prev_cased = isCased(c);
    return r;
  });
}

std::string capitalize(const std::string& s) {
  bool first = true;
  return mapCodepoints(s, [&](char32_t c) {
    char32_t r = first ? toUpperCp(c) : toLowerCp(c);
    first = false;
    return r;
  });
}

std::string jinjaTitle(const std::string& s) {
  // jinja2's do_title: split on runs of [-\s({[<]; each piece gets its first character upper-cased.
  auto sep = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || isSpace(c); };
  bool at_piece_start = true;
  bool prev_sep = false;
  bool first = true;
  return mapCodepoints(s, [&](char32_t c) {
    bool is_sep = sep(c);
    at_piece_start = first || is_sep != prev_sep;
    first = false;
    prev_sep = is_sep;
    return at_piece_start ? toUpperCp(c) : toLowerCp(c);
  });
}

}  // namespace ds::tpl::text

// Strict parsing of numeric flag values, shared by every ds-* tool (docs/tools.md). A value is
// accepted only when the whole text is a number of the expected kind inside the stated range:
// "2.7" is not a count, "1e30" is not an int, "inf"/"nan" are not sizes, "-5" is not a token
// count. Each parser returns the error to print (naming the flag, the text and the range) or
// the value; tools turn an error into exit code 2. Header-only and LLVM-free.
#pragma once

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace ds::tools {

template <typename T>
struct Parsed {
  std::optional<T> value;
  std::string error;  // set when !value
  static Parsed fail(std::string e) { return Parsed{std::nullopt, std::move(e)}; }
};

inline std::string rangeText(long double lo, long double hi) {
  auto num = [](long double v) {
    if (v == static_cast<long double>(static_cast<int64_t>(v))) return std::to_string(static_cast<int64_t>(v));
    std::string s = std::to_string(static_cast<double>(v));
    while (!s.empty() && s.back() == '0') s.pop_back();
    return s;
  };
  return "[" + num(lo) + ", " + num(hi) + "]";
}

// A decimal integer: optional '-', digits only (no '+', spaces, exponent or fraction).
inline Parsed<int64_t> parseIntFlag(const std::string& flag, const std::string& text, int64_t lo,
                                    int64_t hi) {
  const std::string want = flag + " expects an integer in " + rangeText(lo, hi) + ", got '" + text + "'";
  size_t i = text.size() > 0 && text[0] == '-' ? 1 : 0;
  if (i == text.size()) return Parsed<int64_t>::fail(want);
  for (size_t j = i; j < text.size(); ++j)
    if (text[j] < '0' || text[j] > '9') return Parsed<int64_t>::fail(want);
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno == ERANGE || *end || v < lo || v > hi) return Parsed<int64_t>::fail(want);
  return Parsed<int64_t>{v, ""};
}

// A finite real number (decimal or exponent notation; no inf/nan, no hex floats).
inline Parsed<double> parseRealFlag(const std::string& flag, const std::string& text, double lo,
                                    double hi) {
  const std::string want = flag + " expects a number in " + rangeText(lo, hi) + ", got '" + text + "'";
  if (text.empty() || text.find_first_not_of("0123456789+-.eE") != std::string::npos)
    return Parsed<double>::fail(want);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end || errno == ERANGE || !std::isfinite(v) || v < lo || v > hi)
    return Parsed<double>::fail(want);
  return Parsed<double>{v, ""};
}

// A byte size: a non-negative number with an optional binary suffix K, M, G or T (also KiB,
// MB, ...: all powers of 1024), e.g. 512M, 1.5G, 2T. The result must be in [lo, hi] bytes.
inline Parsed<uint64_t> parseSizeFlag(const std::string& flag, const std::string& text, uint64_t lo,
                                      uint64_t hi) {
  const std::string want = flag + " expects a size in bytes with an optional K/M/G/T suffix (e.g. 512M, 2G) in " +
                           rangeText(lo, hi) + ", got '" + text + "'";
  size_t n = text.size();
  // Strip an optional "B" / "iB" after the unit.
  std::string body = text;
  if (n >= 3 && (text.compare(n - 2, 2, "iB") == 0)) body = text.substr(0, n - 2);
  else if (n >= 2 && text.back() == 'B' && std::isalpha(static_cast<unsigned char>(text[n - 2])))
    body = text.substr(0, n - 1);
  long double scale = 1;
  if (!body.empty()) {
    switch (body.back()) {
      case 'k': case 'K': scale = 1024.0L; break;
      case 'm': case 'M': scale = 1024.0L * 1024; break;
      case 'g': case 'G': scale = 1024.0L * 1024 * 1024; break;
      case 't': case 'T': scale = 1024.0L * 1024 * 1024 * 1024; break;
      default: break;
    }
    if (scale != 1) body.pop_back();
  }
  if (body.empty() || body.find_first_not_of("0123456789.") != std::string::npos)
    return Parsed<uint64_t>::fail(want);
  errno = 0;
  char* end = nullptr;
  const long double v = std::strtold(body.c_str(), &end) * scale;
  if (end == body.c_str() || *end || errno == ERANGE || !std::isfinite(static_cast<double>(v)) ||
      v < static_cast<long double>(lo) || v > static_cast<long double>(hi))
    return Parsed<uint64_t>::fail(want);
  return Parsed<uint64_t>{static_cast<uint64_t>(v), ""};
}

// Comma- or space-separated integers, each in [lo, hi] (token ids).
inline Parsed<std::vector<int32_t>> parseIntListFlag(const std::string& flag, const std::string& text,
                                                     int32_t lo, int32_t hi) {
  std::vector<int32_t> out;
  std::string tok;
  for (char c : text + ",") {
    if (c == ',' || c == ' ' || c == '\t' || c == '\n') {
      if (!tok.empty()) {
        Parsed<int64_t> v = parseIntFlag(flag, tok, lo, hi);
        if (!v.value) return Parsed<std::vector<int32_t>>::fail(v.error);
        out.push_back(static_cast<int32_t>(*v.value));
      }
      tok.clear();
    } else {
      tok += c;
    }
  }
  return Parsed<std::vector<int32_t>>{std::move(out), ""};
}

}  // namespace ds::tools

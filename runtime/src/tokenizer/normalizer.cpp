// Normalizer implementations; Unicode forms go through ICU's unorm2 on UTF-16.
#include "tokenizer/normalizer.h"

#include <vector>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "tokenizer/regex.h"

namespace ds::tok {

namespace {

Status toUtf16(std::string_view s, std::u16string* out) {
  UErrorCode err = U_ZERO_ERROR;
  int32_t len = 0;
  u_strFromUTF8(nullptr, 0, &len, s.data(), static_cast<int32_t>(s.size()), &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return invalidArgument("normalizer: bad UTF-8");
  out->resize(static_cast<size_t>(len));
  err = U_ZERO_ERROR;
  u_strFromUTF8(reinterpret_cast<UChar*>(&(*out)[0]), len, nullptr, s.data(),
                static_cast<int32_t>(s.size()), &err);
  if (U_FAILURE(err)) return invalidArgument("normalizer: bad UTF-8");
  return Status::ok();
}

Status toUtf8(const std::u16string& s, std::string* out) {
  UErrorCode err = U_ZERO_ERROR;
  int32_t len = 0;
  auto src = reinterpret_cast<const UChar*>(s.data());
  u_strToUTF8(nullptr, 0, &len, src, static_cast<int32_t>(s.size()), &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return internalError("normalizer: UTF-16 -> UTF-8 failed");
  out->resize(static_cast<size_t>(len));
  err = U_ZERO_ERROR;
  u_strToUTF8(&(*out)[0], len, nullptr, src, static_cast<int32_t>(s.size()), &err);
  if (U_FAILURE(err)) return internalError("normalizer: UTF-16 -> UTF-8 failed");
  return Status::ok();
}

bool isAscii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

class UnicodeNormalizer : public Normalizer {
 public:
  UnicodeNormalizer(const UNormalizer2* n, bool ascii_is_fixed) : n_(n), ascii_is_fixed_(ascii_is_fixed) {}
  Status apply(std::string* text) const override {
    // Every normalization form leaves ASCII untouched; skip the UTF-16 round trip then.
    if (ascii_is_fixed_ && isAscii(*text)) return Status::ok();
    std::u16string in, out;
    DS_RETURN_IF_ERROR(toUtf16(*text, &in));
    UErrorCode err = U_ZERO_ERROR;
    auto src = reinterpret_cast<const UChar*>(in.data());
    int32_t len = unorm2_normalize(n_, src, static_cast<int32_t>(in.size()), nullptr, 0, &err);
    if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return internalError("unorm2_normalize failed");
    out.resize(static_cast<size_t>(len));
    err = U_ZERO_ERROR;
    unorm2_normalize(n_, src, static_cast<int32_t>(in.size()), reinterpret_cast<UChar*>(&out[0]),
                     len, &err);
    if (U_FAILURE(err)) return internalError("unorm2_normalize failed");
    return toUtf8(out, text);
  }

 private:
  const UNormalizer2* n_;
  bool ascii_is_fixed_;
};

class Lowercase : public Normalizer {
 public:
  Status apply(std::string* text) const override {
    if (isAscii(*text)) {
      for (char& c : *text)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      return Status::ok();
    }
    std::u16string in, out;
    DS_RETURN_IF_ERROR(toUtf16(*text, &in));
    UErrorCode err = U_ZERO_ERROR;
    auto src = reinterpret_cast<const UChar*>(in.data());
    int32_t len = u_strToLower(nullptr, 0, src, static_cast<int32_t>(in.size()), "", &err);
    out.resize(static_cast<size_t>(len));
    err = U_ZERO_ERROR;
    u_strToLower(reinterpret_cast<UChar*>(&out[0]), len, src, static_cast<int32_t>(in.size()), "", &err);
    if (U_FAILURE(err)) return internalError("u_strToLower failed");
    return toUtf8(out, text);
  }
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  Status apply(std::string* text) const override {
    for (const auto& p : parts_) DS_RETURN_IF_ERROR(p->apply(text));
    return Status::ok();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string s) : s_(std::move(s)) {}
  Status apply(std::string* text) const override {
    if (!text->empty()) text->insert(0, s_);  // HF prepends only to non-empty strings
    return Status::ok();
  }

 private:
  std::string s_;
};

class Replace : public Normalizer {
 public:
  Replace(std::shared_ptr<Regex> re, std::string content) : re_(std::move(re)), content_(std::move(content)) {}
  Status apply(std::string* text) const override {
    std::vector<std::pair<size_t, size_t>> m;
    DS_RETURN_IF_ERROR(re_->findAll(*text, &m));
    if (m.empty()) return Status::ok();
    std::string out;
    size_t prev = 0;
    for (auto [s, e] : m) {
      out.append(*text, prev, s - prev);
      out.append(content_);
      prev = e;
    }
    out.append(*text, prev, std::string::npos);
    *text = std::move(out);
    return Status::ok();
  }

 private:
  std::shared_ptr<Regex> re_;
  std::string content_;
};

class StripWhitespace : public Normalizer {
 public:
  StripWhitespace(bool left, bool right) : left_(left), right_(right) {}
  Status apply(std::string* text) const override {
    auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    size_t b = 0, e = text->size();
    if (left_)
      while (b < e && ws((*text)[b])) ++b;
    if (right_)
      while (e > b && ws((*text)[e - 1])) --e;
    *text = text->substr(b, e - b);
    return Status::ok();
  }

 private:
  bool left_, right_;
};

}  // namespace

// Replace/Split patterns are {"String": s} or {"Regex": r}.
StatusOr<std::shared_ptr<Regex>> parsePattern(const Json& j, std::string_view where) {
  std::string w = std::string(where) + ".pattern";
  if (!j.is_object()) return invalidArgument(w + ": expected {\"String\": ...} or {\"Regex\": ...}");
  if (auto it = j.find("String"); it != j.end() && it->is_string())
    return Regex::compile(it->get<std::string>(), /*literal=*/true, w);
  if (auto it = j.find("Regex"); it != j.end() && it->is_string())
    return Regex::compile(it->get<std::string>(), /*literal=*/false, w);
  return invalidArgument(w + ": expected {\"String\": ...} or {\"Regex\": ...}");
}

namespace {

StatusOr<std::unique_ptr<Normalizer>> parseNormalizerAt(const Json& j, std::string_view where, int depth) {
  if (j.is_null()) return std::unique_ptr<Normalizer>();
  if (depth > kMaxTokenizerNesting)
    return invalidArgument(std::string(where.substr(0, 80)) + "...: Sequence normalizers nest more than " +
                           std::to_string(kMaxTokenizerNesting) + " deep (kMaxTokenizerNesting)");
  DS_TOK_ASSIGN_OR_RETURN(std::string type, jsonType(j, where));
  std::string w(where);
  UErrorCode err = U_ZERO_ERROR;
  if (type == "NFC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(unorm2_getNFCInstance(&err), true));
  if (type == "NFD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(unorm2_getNFDInstance(&err), true));
  if (type == "NFKC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(unorm2_getNFKCInstance(&err), true));
  if (type == "NFKD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(unorm2_getNFKDInstance(&err), true));
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new Lowercase());
  if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) return invalidArgument(w + ".normalizers: expected an array");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < it->size(); ++i) {
      DS_TOK_ASSIGN_OR_RETURN(auto p, parseNormalizerAt((*it)[i], w + ".normalizers[" + std::to_string(i) + "]", depth + 1));
      if (p) parts.push_back(std::move(p));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(parts)));
  }
  if (type == "Prepend") {
    DS_TOK_ASSIGN_OR_RETURN(std::string s, jsonString(j, "prepend", w));
    return std::unique_ptr<Normalizer>(new Prepend(std::move(s)));
  }
  if (type == "Replace") {
    auto pit = j.find("pattern");
    if (pit == j.end()) return invalidArgument(w + ".pattern: missing");
    DS_TOK_ASSIGN_OR_RETURN(auto re, parsePattern(*pit, w));
    DS_TOK_ASSIGN_OR_RETURN(std::string content, jsonString(j, "content", w));
    return std::unique_ptr<Normalizer>(new Replace(std::move(re), std::move(content)));
  }
  if (type == "Strip") {
    DS_TOK_ASSIGN_OR_RETURN(bool l, jsonBool(j, "strip_left", true, w));
    DS_TOK_ASSIGN_OR_RETURN(bool r, jsonBool(j, "strip_right", true, w));
    return std::unique_ptr<Normalizer>(new StripWhitespace(l, r));
  }
  return unsupported(w + ".type: unsupported normalizer type '" + type + "'");
}

}  // namespace

StatusOr<std::unique_ptr<Normalizer>> parseNormalizer(const Json& j, std::string_view where) {
  return parseNormalizerAt(j, where, 0);
}

}  // namespace ds::tok

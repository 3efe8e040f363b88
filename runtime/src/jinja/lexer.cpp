// Tokenizer for the Jinja2 subset; mirrors jinja2/lexer.py so whitespace handling is byte-identical.
#include "jinja/lexer.h"

#include <algorithm>
#include <cctype>

#include "jinja/text.h"
#include "jinja/value.h"

namespace ds::tpl {
namespace {

// jinja2 normalizes \r\n and \r to \n, then drops a single trailing newline (keep_trailing_newline=False).
std::string normalize(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool isWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || isDigit(c); }

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t t = findTag(pos_);
      if (t == std::string::npos) {
        emitText(pos_, src_.substr(pos_));
        break;
      }
      char kind = src_[t + 1];
      size_t p = t + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      std::string text = stripBefore(src_.substr(pos_, t - pos_), sign, kind == '{');
      emitText(pos_, text);
      size_t body_end;
      if (kind == '%' && matchRaw(p, "raw", &body_end)) {
        lexRaw(t, body_end);
      } else if (kind == '#') {
        lexComment(t, p);
      } else {
        lexTag(t, p, kind == '%');
      }
    }
    Token eof;
    eof.type = Tok::Eof;
    position(src_.size(), &eof);
    out_.push_back(eof);
    return std::move(out_);
  }

 private:
  [[noreturn]] void error(size_t at, const std::string& msg) {
    TemplateError e{msg, 0, 0};
    Token t;
    position(at, &t);
    e.line = t.line;
    e.col = t.col;
    throw e;
  }

  void position(size_t at, Token* t) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    t->line = static_cast<int>(line);
    t->col = static_cast<int>(at - line_starts_[line - 1] + 1);
  }

  size_t findTag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  // The text before a tag: '-' strips all trailing whitespace; otherwise lstrip_blocks removes spaces
  // between the line start and a block/comment tag (not a variable tag, not with '+').
  std::string stripBefore(std::string text, char sign, bool is_variable) const {
    if (sign == '-') return text::strip(text, nullptr, false, true);
    if (sign == '+' || is_variable) return text;
    size_t l_pos = text.rfind('\n');
    l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
    if (l_pos == 0 && !line_starting_) return text;
    if (l_pos == text.size() || !text::strip(text.substr(l_pos), nullptr, false, true).empty()) return text;
    return text.substr(0, l_pos);
  }

  void emitText(size_t at, const std::string& text) {
    if (text.empty()) return;
    Token t;
    t.type = Tok::Text;
    t.value = text;
    position(at, &t);
    out_.push_back(std::move(t));
  }

  // Skips a block end at p and returns the position after it (npos if none). `raw_begin` follows
  // jinja2's raw_begin rule ("-%}\s*" or "%}", no trim_blocks newline, no "+%}"); otherwise the
  // block_end rule ("+%}", "-%}\s*", "%}\n?").
  size_t matchBlockEnd(size_t p, bool raw_begin = false) {
    if (src_.compare(p, 3, "+%}") == 0) return raw_begin ? std::string::npos : p + 3;
    if (src_.compare(p, 3, "-%}") == 0) {
      p += 3;
      while (p < src_.size() && isWs(src_[p])) ++p;
      return p;
    }
    if (src_.compare(p, 2, "%}") == 0) {
      p += 2;
      if (!raw_begin && p < src_.size() && src_[p] == '\n') ++p;
      return p;
    }
    return std::string::npos;
  }

  // Matches "\s*<word>\s*" and a block end at p (for raw/endraw); sets *end after it.
  bool matchRaw(size_t p, const std::string& word, size_t* end) {
    while (p < src_.size() && isWs(src_[p])) ++p;
    if (src_.compare(p, word.size(), word) != 0) return false;
    p += word.size();
    if (p < src_.size() && isNameChar(src_[p])) return false;
    while (p < src_.size() && isWs(src_[p])) ++p;
    size_t e = matchBlockEnd(p, word == "raw");
    if (e == std::string::npos) return false;
    *end = e;
    return true;
  }

  void lexRaw(size_t tag_start, size_t body_start) {
    line_starting_ = body_start > 0 && src_[body_start - 1] == '\n';
    for (size_t q = body_start; (q = src_.find("{%", q)) != std::string::npos; ++q) {
      size_t p = q + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      size_t end;
      if (!matchRaw(p, "endraw", &end)) continue;
      emitText(body_start, stripBefore(src_.substr(body_start, q - body_start), sign, false));
      pos_ = end;
      line_starting_ = end > 0 && src_[end - 1] == '\n';
      return;
    }
    error(tag_start, "missing end of raw directive");
  }

  void lexComment(size_t tag_start, size_t p) {
    size_t q = src_.find("#}", p);
    if (q == std::string::npos) error(tag_start, "missing end of comment tag");
    size_t end = q + 2;
    if (q > p && src_[q - 1] == '-') {
      while (end < src_.size() && isWs(src_[end])) ++end;
    } else if (!(q > p && src_[q - 1] == '+')) {
      if (end < src_.size() && src_[end] == '\n') ++end;
    }
    pos_ = end;
    line_starting_ = src_[end - 1] == '\n';
  }

  void lexTag(size_t tag_start, size_t p, bool block) {
    Token begin;
    begin.type = block ? Tok::BlockBegin : Tok::VarBegin;
    position(tag_start, &begin);
    out_.push_back(begin);
    std::vector<char> brackets;
    while (true) {
      while (p < src_.size() && isWs(src_[p])) ++p;
      if (p >= src_.size()) error(tag_start, block ? "missing '%}' to close this tag" : "missing '}}' to close this tag");
      if (brackets.empty()) {
        size_t end = std::string::npos;
        if (block) {
          end = matchBlockEnd(p);
        } else if (src_.compare(p, 3, "-}}") == 0) {
          end = p + 3;
          while (end < src_.size() && isWs(src_[end])) ++end;
        } else if (src_.compare(p, 2, "}}") == 0) {
          end = p + 2;
        }
        if (end != std::string::npos) {
          Token t;
          t.type = block ? Tok::BlockEnd : Tok::VarEnd;
          position(p, &t);
          out_.push_back(t);
          pos_ = end;
          line_starting_ = src_[end - 1] == '\n';
          return;
        }
      }
      p = lexToken(p, &brackets);
    }
  }

  size_t lexToken(size_t p, std::vector<char>* brackets) {
    Token t;
    position(p, &t);
    char c = src_[p];
    if (isDigit(c)) return lexNumber(p, &t);
    if (isNameStart(c)) {
      size_t e = p;
      while (e < src_.size() && isNameChar(src_[e])) ++e;
      t.type = Tok::Name;
      t.value = src_.substr(p, e - p);
      out_.push_back(std::move(t));
      return e;
    }
    if (c == '\'' || c == '"') return lexString(p, &t);
    static const char* kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kOps2) {
      if (src_.compare(p, 2, op) == 0) {
        t.type = Tok::Op;
        t.value = op;
        out_.push_back(std::move(t));
        return p + 2;
      }
    }
    if (std::string("+-/*%~[](){}|.,:;=<>").find(c) == std::string::npos)
      error(p, std::string("unexpected char '") + c + "'");
    if (c == '(' || c == '[' || c == '{') brackets->push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    if (c == ')' || c == ']' || c == '}') {
      if (brackets->empty()) error(p, std::string("unexpected '") + c + "'");
      if (brackets->back() != c) error(p, std::string("unexpected '") + c + "', expected '" + brackets->back() + "'");
      brackets->pop_back();
    }
    t.type = Tok::Op;
    t.value = std::string(1, c);
    out_.push_back(std::move(t));
    return p + 1;
  }

  size_t digits(size_t p, std::string* out, bool hex = false) {
    while (p < src_.size()) {
      char c = src_[p];
      if (isDigit(c) || (hex && std::isxdigit(static_cast<unsigned char>(c)))) {
        *out += c;
      } else if (c == '_' && p + 1 < src_.size() &&
                 (isDigit(src_[p + 1]) || (hex && std::isxdigit(static_cast<unsigned char>(src_[p + 1]))))) {
        // underscores separate digits, as in Python literals
      } else {
        break;
      }
      ++p;
    }
    return p;
  }

  size_t lexNumber(size_t p, Token* t) {
    size_t start = p;
    char c1 = p + 1 < src_.size() ? static_cast<char>(std::tolower(static_cast<unsigned char>(src_[p + 1]))) : 0;
    if (src_[p] == '0' && (c1 == 'x' || c1 == 'o' || c1 == 'b')) {
      std::string ds;
      size_t e = digits(p + 2, &ds, c1 == 'x');
      if (ds.empty()) error(p, "invalid integer literal");
      int base = c1 == 'x' ? 16 : c1 == 'o' ? 8 : 2;
      return finishInt(start, e, ds, base, t);
    }
    std::string ds;
    size_t e = digits(p, &ds);
    bool is_float = false;
    bool after_dot = start > 0 && src_[start - 1] == '.';  // jinja2: "x.0.1" is x[0][1], not x[0.1]
    if (!after_dot && e + 1 < src_.size() && src_[e] == '.' && isDigit(src_[e + 1])) {
      ds += '.';
      e = digits(e + 1, &ds);
      is_float = true;
    }
    if (!after_dot && e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t q = e + 1;
      std::string exp = "e";
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) exp += src_[q++];
      std::string ed;
      size_t qe = digits(q, &ed);
      if (!ed.empty()) {
        ds += exp + ed;
        e = qe;
        is_float = true;
      }
    }
    if (is_float) {
      t->type = Tok::Float;
      t->f = std::strtod(ds.c_str(), nullptr);
      t->value = ds;
      out_.push_back(std::move(*t));
      return e;
    }
    return finishInt(start, e, ds, 10, t);
  }

  size_t finishInt(size_t start, size_t e, const std::string& ds, int base, Token* t) {
    uint64_t v = 0;
    for (char c : ds) {
      int d = isDigit(c) ? c - '0' : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
      if (d >= base) error(start, "invalid integer literal");
      if (v > (static_cast<uint64_t>(INT64_MAX) - d) / base) error(start, "integer literal too large");
      v = v * base + d;
    }
    t->type = Tok::Int;
    t->i = static_cast<int64_t>(v);
    t->value = src_.substr(start, e - start);
    out_.push_back(std::move(*t));
    return e;
  }

  int hexValue(size_t p, int n) {
    if (p + n > src_.size()) return -1;
    int v = 0;
    for (int k = 0; k < n; ++k) {
      char c = src_[p + k];
      if (!std::isxdigit(static_cast<unsigned char>(c))) return -1;
      v = v * 16 + (isDigit(c) ? c - '0' : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
    }
    return v;
  }

  // Python string literal escapes (jinja2 decodes with "unicode-escape"); unknown escapes stay verbatim.
  size_t lexString(size_t p, Token* t) {
    char q = src_[p];
    std::string out;
    size_t i = p + 1;
    while (true) {
      if (i >= src_.size()) error(p, "unterminated string literal");
      char c = src_[i];
      if (c == q) break;
      if (c != '\\') { out += c; ++i; continue; }
      if (i + 1 >= src_.size()) error(p, "unterminated string literal");
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': case 'u': case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          if (n == 8) {
            int hi = hexValue(i, 4), lo = hexValue(i + 4, 4);
            if (hi < 0 || lo < 0) error(i - 2, "truncated \\U escape in string literal");
            cp = (static_cast<uint32_t>(hi) << 16) | static_cast<uint32_t>(lo);
          } else {
            int v = hexValue(i, n);
            if (v < 0) error(i - 2, std::string("truncated \\") + e + " escape in string literal");
            cp = static_cast<uint32_t>(v);
          }
          if (cp > 0x10ffff) error(i - 2, "escape out of Unicode range in string literal");
          text::appendUtf8(out, cp);
          i += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k)
              v = v * 8 + static_cast<uint32_t>(src_[i++] - '0');
            text::appendUtf8(out, v);
          } else if (e == 'N') {
            error(i - 2, "\\N{...} escapes are not supported");
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    t->type = Tok::String;
    t->value = std::move(out);
    out_.push_back(std::move(*t));
    return i + 1;
  }

  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(normalize(source)).run(); }

}  // namespace ds::tpl

// Python semantics for template values: truthiness, str()/repr(), ==, <, float repr and json.dumps.
#include "jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace ds::tpl {

void fail(std::string message) { throw TemplateError{std::move(message), 0, 0}; }

namespace {

void checkDepth(int depth) {
  if (depth > kMaxValueDepth) fail("value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
}

// Python's repr() of a str: prefers single quotes, escapes controls; other code points pass through.
std::string reprString(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    char buf[8];
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) { out += '\\'; out += q; }
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) { std::snprintf(buf, sizeof buf, "\\x%02x", c); out += buf; }
    else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
             (static_cast<unsigned char>(s[i + 1]) <= 0xa0 || static_cast<unsigned char>(s[i + 1]) == 0xad)) {
      // U+0080..U+00A0 and U+00AD are not printable for Python, so repr escapes them.
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[i + 1]));
      out += buf;
      ++i;
    } else out += static_cast<char>(c);
  }
  out += q;
  return out;
}

std::string reprImpl(const Value& v, int depth);

std::string containerRepr(const Value& v, int depth) {
  checkDepth(depth);
  std::string out;
  if (v.kind() == Kind::List) {
    const List& xs = v.items();
    out += v.isTuple() ? "(" : "[";
    for (size_t i = 0; i < xs.size(); ++i) {
      if (i) out += ", ";
      out += reprImpl(xs[i], depth + 1);
    }
    if (v.isTuple() && xs.size() == 1) out += ",";
    out += v.isTuple() ? ")" : "]";
    return out;
  }
  out += "{";
  bool first = true;
  for (const auto& [k, item] : v.mapping().entries) {
    if (!first) out += ", ";
    first = false;
    out += reprString(k) + ": " + reprImpl(item, depth + 1);
  }
  out += "}";
  return v.kind() == Kind::Namespace ? "<Namespace " + out + ">" : out;
}

std::string reprImpl(const Value& v, int depth) {
  switch (v.kind()) {
    case Kind::String: return reprString(v.str());
    case Kind::Undefined: return "Undefined";
    case Kind::List:
    case Kind::Dict:
    case Kind::Namespace: return containerRepr(v, depth);
    default: return v.toString();
  }
}

bool equalsImpl(const Value& a, const Value& b, int depth) {
  checkDepth(depth);
  if (a.isNumber() && b.isNumber()) {
    if (a.kind() == Kind::Float || b.kind() == Kind::Float) return a.number() == b.number();
    return a.integer() == b.integer();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.str() == b.str();
    case Kind::List: {
      if (a.isTuple() != b.isTuple() || a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i)
        if (!equalsImpl(a.items()[i], b.items()[i], depth + 1)) return false;
      return true;
    }
    case Kind::Dict: {
      const Dict& x = a.mapping();
      const Dict& y = b.mapping();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, item] : x.entries) {
        const Value* other = y.find(k);
        if (!other || !equalsImpl(item, *other, depth + 1)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

bool lessImpl(const Value& a, const Value& b, int depth) {
  checkDepth(depth);
  if (a.isNumber() && b.isNumber()) {
    if (a.kind() == Kind::Float || b.kind() == Kind::Float) return a.number() < b.number();
    return a.integer() < b.integer();
  }
  if (a.isString() && b.isString()) return a.str() < b.str();  // UTF-8 byte order == code point order
  if (a.isList() && b.isList() && a.isTuple() == b.isTuple()) {
    const List& x = a.items();
    const List& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equalsImpl(x[i], y[i], depth + 1)) continue;
      return lessImpl(x[i], y[i], depth + 1);
    }
    return x.size() < y.size();
  }
  fail("'<' not supported between instances of '" + a.typeName() + "' and '" + b.typeName() + "'");
}

void jsonString(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

struct JsonWriter {
  int indent;
  const std::string& item_sep;
  const std::string& key_sep;
  bool sort_keys;
  std::string out;

  void newline(int level) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent) * level, ' ');
  }

  void write(const Value& v, int level) {
    checkDepth(level);
    switch (v.kind()) {
      case Kind::None: out += "null"; return;
      case Kind::Bool: out += v.boolean() ? "true" : "false"; return;
      case Kind::Int: out += std::to_string(v.integer()); return;
      case Kind::Float: {
        double f = v.number();
        if (std::isnan(f)) out += "NaN";
        else if (std::isinf(f)) out += f > 0 ? "Infinity" : "-Infinity";
        else out += formatFloat(f);
        return;
      }
      case Kind::String: jsonString(v.str(), out); return;
      case Kind::List: {
        const List& xs = v.items();
        if (xs.empty()) { out += "[]"; return; }
        out += '[';
        for (size_t i = 0; i < xs.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          write(xs[i], level + 1);
        }
        newline(level);
        out += ']';
        return;
      }
      case Kind::Dict: {
        std::vector<const std::pair<std::string, Value>*> entries;
        for (const auto& e : v.mapping().entries) entries.push_back(&e);
        if (entries.empty()) { out += "{}"; return; }
        if (sort_keys)
          std::sort(entries.begin(), entries.end(), [](auto* x, auto* y) { return x->first < y->first; });
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          jsonString(entries[i]->first, out);
          out += key_sep;
          write(entries[i]->second, level + 1);
        }
        newline(level);
        out += '}';
        return;
      }
      default: fail("Object of type " + v.typeName() + " is not JSON serializable");
    }
  }
};

}  // namespace

void chargeRenderMemory(int64_t delta) {
  RenderMemory& m = render_memory;
  m.live += delta;
  if (delta > 0 && m.limit >= 0 && m.live - m.start > m.limit) {
    m.live -= delta;
    fail("the render's values need more than the memory budget of " + std::to_string(m.limit) +
         " bytes (max_render_bytes)");
  }
}

Value::Value(const Value& o)
    : kind_(o.kind_), tuple_(o.tuple_), depth_(o.depth_), b_(o.b_), i_(o.i_), f_(o.f_), s_(o.s_),
      list_(o.list_), dict_(o.dict_), fn_(o.fn_) {
  // On failure the members are destroyed and ~Value does not run: nothing stays charged.
  chargeRenderMemory(footprint());
}

Value::Value(Value&& o) noexcept
    : kind_(o.kind_), tuple_(o.tuple_), depth_(o.depth_), b_(o.b_), i_(o.i_), f_(o.f_),
      s_(std::move(o.s_)), list_(std::move(o.list_)), dict_(std::move(o.dict_)), fn_(std::move(o.fn_)) {
  o.s_.clear();  // the string's bytes moved with it
  render_memory.live += static_cast<int64_t>(sizeof(Value));
}

Value& Value::operator=(const Value& o) {
  if (this == &o) return *this;
  chargeRenderMemory(o.footprint() - footprint());  // before any change: a failure leaves *this as it was
  kind_ = o.kind_; tuple_ = o.tuple_; depth_ = o.depth_; b_ = o.b_; i_ = o.i_; f_ = o.f_;
  s_ = o.s_; list_ = o.list_; dict_ = o.dict_; fn_ = o.fn_;
  return *this;
}

Value& Value::operator=(Value&& o) noexcept {
  if (this == &o) return *this;
  render_memory.live -= static_cast<int64_t>(s_.size());  // this string is freed; o's moves over
  kind_ = o.kind_; tuple_ = o.tuple_; depth_ = o.depth_; b_ = o.b_; i_ = o.i_; f_ = o.f_;
  s_ = std::move(o.s_); o.s_.clear();
  list_ = std::move(o.list_); dict_ = std::move(o.dict_); fn_ = std::move(o.fn_);
  return *this;
}

Value Value::undefined(std::string hint) {
  Value v;
  render_memory.live += static_cast<int64_t>(hint.size());
  v.s_ = std::move(hint);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::list(List items, bool tuple) {
  Value v;
  v.kind_ = Kind::List;
  v.tuple_ = tuple;
  v.list_ = std::make_shared<const List>(std::move(items));
  v.computeDepth();
  return v;
}

Value Value::dict(std::shared_ptr<Dict> d) {
  Value v;
  v.kind_ = Kind::Dict;
  v.dict_ = std::move(d);
  v.computeDepth();
  return v;
}

Value Value::dict() { return dict(std::make_shared<Dict>()); }

Value Value::ns(std::shared_ptr<Dict> d) {
  Value v = dict(std::move(d));
  v.kind_ = Kind::Namespace;
  return v;
}

Value Value::callable(std::shared_ptr<const Callable> fn) {
  Value v;
  v.kind_ = Kind::Callable;
  v.fn_ = std::move(fn);
  return v;
}

void Value::computeDepth() {
  int d = 0;
  if (list_)
    for (const Value& x : *list_) d = std::max<int>(d, x.depth_);
  if (dict_)
    for (const auto& kv : dict_->entries) d = std::max<int>(d, kv.second.depth_);
  if (d + 1 > kMaxValueDepth) fail("value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  depth_ = static_cast<uint16_t>(d + 1);
}

const List& Value::items() const {
  static const List kEmpty;
  return list_ ? *list_ : kEmpty;
}

const Dict& Value::mapping() const {
  static const Dict kEmpty;
  return dict_ ? *dict_ : kEmpty;
}

Dict& Value::mutableNamespace() const { return *dict_; }

const void* Value::identity() const {
  if (fn_) return fn_.get();
  if (dict_) return dict_.get();
  return list_.get();
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b_;
    case Kind::Int: return i_ != 0;
    case Kind::Float: return f_ != 0;
    case Kind::String: return !s_.empty();
    case Kind::List: return !items().empty();
    case Kind::Dict: return !mapping().entries.empty();
    default: return true;
  }
}

std::string Value::toString() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return b_ ? "True" : "False";
    case Kind::Int: return std::to_string(i_);
    case Kind::Float:
      if (std::isnan(f_)) return "nan";
      if (std::isinf(f_)) return f_ > 0 ? "inf" : "-inf";
      return formatFloat(f_);
    case Kind::String: return s_;
    case Kind::Callable: return "<function " + fn_->name + ">";
    default: return containerRepr(*this, 0);
  }
}

std::string Value::repr() const { return reprImpl(*this, 0); }

std::string Value::typeName() const {
  switch (kind_) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return tuple_ ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Callable: return "function";
  }
  return "object";
}

const Value* Dict::find(const std::string& key) const {
  auto it = index.find(key);
  return it == index.end() ? nullptr : &entries[it->second].second;
}

void Dict::set(const std::string& key, Value v) {
  auto it = index.find(key);
  if (it != index.end()) {
    entries[it->second].second = std::move(v);
    return;
  }
  index.emplace(key, entries.size());
  entries.emplace_back(key, std::move(v));
}

std::vector<Value> Args::bind(const std::string& fn, const std::vector<const char*>& names,
                              size_t required) const {
  if (pos.size() > names.size())
    fail(fn + "() takes at most " + std::to_string(names.size()) + " arguments (" +
         std::to_string(pos.size()) + " given)");
  std::vector<Value> out(names.size());
  for (size_t i = 0; i < pos.size(); ++i) out[i] = pos[i];
  std::vector<bool> given(names.size(), false);
  for (size_t i = 0; i < pos.size(); ++i) given[i] = true;
  for (const auto& [k, v] : kw) {
    size_t i = 0;
    while (i < names.size() && k != names[i]) ++i;
    if (i == names.size()) fail(fn + "() got an unexpected keyword argument '" + k + "'");
    if (given[i]) fail(fn + "() got multiple values for argument '" + k + "'");
    out[i] = v;
    given[i] = true;
  }
  for (size_t i = 0; i < required; ++i)
    if (!given[i]) fail(fn + "() missing required argument '" + names[i] + "'");
  return out;
}

bool equals(const Value& a, const Value& b) { return equalsImpl(a, b, 0); }
bool lessThan(const Value& a, const Value& b) { return lessImpl(a, b, 0); }

std::string formatFloat(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-d.ddde+XX": shortest round-trip digits
  std::string sign;
  if (sci[0] == '-') { sign = "-"; sci.erase(0, 1); }
  size_t e = sci.find('e');
  int exp10 = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int decpt = exp10 + 1;
  int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return sign + "0." + std::string(-decpt, '0') + digits;
    if (decpt >= n) return sign + digits + std::string(decpt - n, '0') + ".0";
    return sign + digits.substr(0, decpt) + "." + digits.substr(decpt);
  }
  std::string mant = digits.substr(0, 1);
  if (n > 1) mant += "." + digits.substr(1);
  int x = decpt - 1;
  std::string es = std::to_string(x < 0 ? -x : x);
  if (es.size() < 2) es = "0" + es;
  return sign + mant + "e" + (x < 0 ? "-" : "+") + es;
}

std::string toJson(const Value& v, int indent, const std::string& item_sep, const std::string& key_sep,
                   bool sort_keys) {
  JsonWriter w{indent, item_sep, key_sep, sort_keys, {}};
  w.write(v, 0);
  return std::move(w.out);
}

}  // namespace ds::tpl

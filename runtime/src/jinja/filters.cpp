// jinja2's built-in filters, plus transformers' tojson (json.dumps(ensure_ascii=False, indent=...)).
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "jinja/builtins.h"
#include "jinja/text.h"

namespace ds::tpl {
namespace {

using FilterFn = Value (*)(const Value& in, const Args& args, const Limits& limits);

std::string str(const Value& v) { return v.toString(); }

// Dotted attribute path as jinja2's make_attrgetter resolves it ("a.b", "items.0").
Value attrPath(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && part.size() < 10 &&
                   std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric ? getItem(cur, Value(static_cast<int64_t>(std::stol(part)))) : getItem(cur, Value(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Value keyOf(const Value& v, const Value& attribute, bool case_sensitive) {
  Value k = attribute.isUndefined() || attribute.isNone() ? v : attrPath(v, attribute.toString());
  if (!case_sensitive && k.isString()) return Value(text::lower(k.str()));
  return k;
}

// A hashable identity for unique(): Python's set semantics (1 == 1.0 == True).
std::string hashKey(const Value& v) {
  if (v.isNumber()) {
    double d = v.number();
    if (v.kind() != Kind::Float || (std::floor(d) == d && std::fabs(d) < 9e15))
      return "n" + std::to_string(static_cast<int64_t>(v.kind() == Kind::Float ? d : v.integer()));
    return "n" + formatFloat(d);
  }
  if (v.isString()) return "s" + v.str();
  if (v.isNone()) return "N";
  if (v.isTuple()) {
    std::string k = "t";
    for (const Value& x : v.items()) k += hashKey(x) + "\x1f";
    return k;
  }
  fail("unhashable type: '" + v.typeName() + "'");
}

Value fLength(const Value& in, const Args& a, const Limits&) {
  a.bind("length", {}, 0);
  switch (in.kind()) {
    case Kind::Undefined: return Value(0);
    case Kind::String: return Value(static_cast<int64_t>(text::length(in.str())));
    case Kind::List: return Value(static_cast<int64_t>(in.items().size()));
    case Kind::Dict: return Value(static_cast<int64_t>(in.mapping().entries.size()));
    default: fail("object of type '" + in.typeName() + "' has no len()");
  }
}

Value fDefault(const Value& in, const Args& args, const Limits&) {
  auto a = args.bind("default", {"default_value", "boolean"}, 0);
  bool use_default = in.isUndefined() || (a[1].truthy() && !in.truthy());
  if (!use_default) return in;
  return a[0].isUndefined() ? Value("") : a[0];
}

Value fTrim(const Value& in, const Args& args, const Limits&) {
  auto a = args.bind("trim", {"chars"}, 0);
  std::string chars = a[0].isUndefined() || a[0].isNone() ? "" : str(a[0]);
  return Value(text::strip(str(in), a[0].isUndefined() || a[0].isNone() ? nullptr : &chars, true, true));
}

Value fUpper(const Value& in, const Args& a, const Limits&) { a.bind("upper", {}, 0); return Value(text::upper(str(in))); }
Value fLower(const Value& in, const Args& a, const Limits&) { a.bind("lower", {}, 0); return Value(text::lower(str(in))); }
Value fTitle(const Value& in, const Args& a, const Limits&) { a.bind("title", {}, 0); return Value(text::jinjaTitle(str(in))); }
Value fCapitalize(const Value& in, const Args& a, const Limits&) {
  a.bind("capitalize", {}, 0);
  return Value(text::capitalize(str(in)));
}
Value fString(const Value& in, const Args& a, const Limits&) { a.bind("string", {}, 0); return Value(str(in)); }
// Markup(value): the result is a string, so `0|safe` is the truthy "0".
Value fSafe(const Value& in, const Args& a, const Limits&) { a.bind("safe", {}, 0); return Value(str(in)); }

Value fEscape(const Value& in, const Args& a, const Limits& limits) {
  a.bind("escape", {}, 0);
  std::string out;
  for (char c : str(in)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  checkStringSize(out.size(), limits);
  return Value(out);
}

Value fReplace(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("replace", {"old", "new", "count"}, 2);
  long count = a[2].isUndefined() || a[2].isNone() ? -1 : static_cast<long>(a[2].integer());
  return Value(text::replace(str(in), str(a[0]), str(a[1]), count, limits.max_output_bytes));
}

Value fInt(const Value& in, const Args& args, const Limits&) {
  auto a = args.bind("int", {"default", "base"}, 0);
  if (in.isUndefined()) fail(in.undefinedHint());  // int(Undefined) raises in jinja2
  Value def = a[0].isUndefined() ? Value(0) : a[0];
  if (in.isInt()) return Value(in.integer());
  if (in.kind() == Kind::Float) {
    double d = in.number();
    if (std::isnan(d) || std::fabs(d) >= 9.2e18) return def;
    return Value(static_cast<int64_t>(d));
  }
  if (!in.isString()) return def;
  int base = a[1].isInt() ? static_cast<int>(a[1].integer()) : 10;
  if (base < 2 || base > 36) return def;
  std::string s = text::strip(in.str(), nullptr, true, true);
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, base);
  if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return Value(static_cast<int64_t>(v));
  char* fend = nullptr;
  double d = std::strtod(s.c_str(), &fend);  // jinja2 falls back to int(float(value))
  if (!s.empty() && fend == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18)
    return Value(static_cast<int64_t>(d));
  return def;
}

Value fFloat(const Value& in, const Args& args, const Limits&) {
  auto a = args.bind("float", {"default"}, 0);
  if (in.isUndefined()) fail(in.undefinedHint());  // float(Undefined) raises in jinja2
  Value def = a[0].isUndefined() ? Value(0.0) : a[0];
  if (in.isNumber()) return Value(in.number());
  if (!in.isString()) return def;
  std::string s = text::strip(in.str(), nullptr, true, true);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) return def;
  return Value(d);
}

Value fList(const Value& in, const Args& a, const Limits& limits) {
  a.bind("list", {}, 0);
  return Value::list(iterate(in, limits));
}

Value fItems(const Value& in, const Args& a, const Limits&) {
  a.bind("items", {}, 0);
  if (in.isUndefined()) return Value::list({});
  if (!in.isMapping()) fail("Can only get item pairs from a mapping.");
  List xs;
  for (const auto& [k, v] : in.mapping().entries) xs.push_back(Value::list({Value(k), v}, true));
  return Value::list(std::move(xs));
}

Value fFirst(const Value& in, const Args& a, const Limits& limits) {
  a.bind("first", {}, 0);
  List xs = iterate(in, limits);
  return xs.empty() ? Value::undefined("No first item, sequence was empty.") : xs.front();
}

Value fLast(const Value& in, const Args& a, const Limits& limits) {
  a.bind("last", {}, 0);
  List xs = iterate(in, limits);
  return xs.empty() ? Value::undefined("No last item, sequence was empty.") : xs.back();
}

Value fJoin(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("join", {"d", "attribute"}, 0);
  std::string sep = a[0].isUndefined() ? "" : str(a[0]);
  std::string out;
  bool first = true;
  for (const Value& v : iterate(in, limits)) {
    if (!first) out += sep;
    first = false;
    out += str(a[1].isUndefined() || a[1].isNone() ? v : attrPath(v, str(a[1])));
    checkStringSize(out.size(), limits);
  }
  return Value(out);
}

Value fReverse(const Value& in, const Args& a, const Limits& limits) {
  a.bind("reverse", {}, 0);
  if (in.isString()) {
    std::vector<std::string> cps = text::codepoints(in.str());
    std::string out;
    for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
    return Value(out);
  }
  List xs = iterate(in, limits);
  std::reverse(xs.begin(), xs.end());
  return Value::list(std::move(xs));
}

// Python's ensure_ascii: non-ASCII code points become \uXXXX (surrogate pairs above the BMP).
std::string asciiEscape(const std::string& s) {
  std::string out;
  for (const std::string& cp : text::codepoints(s)) {
    unsigned char c = static_cast<unsigned char>(cp[0]);
    if (c < 0x80 || cp.size() == 1) { out += cp; continue; }
    uint32_t v = cp.size() == 2 ? (c & 0x1f) : cp.size() == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < cp.size(); ++k) v = (v << 6) | (static_cast<unsigned char>(cp[k]) & 0x3f);
    char buf[16];
    if (v >= 0x10000) {
      v -= 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", v);
    }
    out += buf;
  }
  return out;
}

Value fTojson(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}, 0);
  int indent = -1;
  if (a[1].isInt()) indent = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(a[1].integer(), 64)));
  else if (!a[1].isUndefined() && !a[1].isNone()) fail("tojson indent must be an integer");
  std::string item_sep = indent >= 0 ? "," : ", ";
  std::string key_sep = ": ";
  if (!a[2].isUndefined() && !a[2].isNone()) {
    if (!a[2].isList() || a[2].items().size() != 2) fail("tojson separators must be a (item, key) pair");
    item_sep = str(a[2].items()[0]);
    key_sep = str(a[2].items()[1]);
  }
  std::string out = toJson(in, indent, item_sep, key_sep, a[3].truthy());
  if (a[0].truthy()) out = asciiEscape(out);
  checkStringSize(out.size(), limits);
  return Value(out);
}

Value fMap(const Value& in, const Args& args, const Limits& limits) {
  List out;
  auto attr = std::find_if(args.kw.begin(), args.kw.end(), [](const auto& kv) { return kv.first == "attribute"; });
  if (attr != args.kw.end()) {
    auto a = args.bind("map", {"attribute", "default"}, 1);
    for (const Value& v : iterate(in, limits)) {
      Value x = attrPath(v, str(a[0]));
      out.push_back(x.isUndefined() && !a[1].isUndefined() ? a[1] : x);
    }
    return Value::list(std::move(out));
  }
  if (args.pos.empty() || !args.pos[0].isString()) fail("map() needs a filter name or attribute=");
  std::string name = args.pos[0].str();
  if (!hasFilter(name)) fail("no filter named '" + name + "'");
  Args rest{List(args.pos.begin() + 1, args.pos.end()), args.kw};
  for (const Value& v : iterate(in, limits)) out.push_back(applyFilter(name, v, rest, limits));
  return Value::list(std::move(out));
}

// select/reject/selectattr/rejectattr share jinja2's select_or_reject.
Value selectOrReject(const Value& in, const Args& args, const Limits& limits, bool attr, bool keep) {
  size_t k = 0;
  std::string attribute;
  if (attr) {
    if (args.pos.empty()) fail("selectattr/rejectattr need an attribute name");
    attribute = str(args.pos[k++]);
  }
  std::string test;
  if (k < args.pos.size()) test = str(args.pos[k++]);
  if (!test.empty() && !hasTest(test)) fail("no test named '" + test + "'");
  Args rest{List(args.pos.begin() + static_cast<long>(k), args.pos.end()), args.kw};
  List out;
  for (const Value& v : iterate(in, limits)) {
    Value x = attr ? attrPath(v, attribute) : v;
    bool ok = test.empty() ? x.truthy() : applyTest(test, x, rest);
    if (ok == keep) out.push_back(v);
  }
  return Value::list(std::move(out));
}
Value fSelect(const Value& in, const Args& a, const Limits& l) { return selectOrReject(in, a, l, false, true); }
Value fReject(const Value& in, const Args& a, const Limits& l) { return selectOrReject(in, a, l, false, false); }
Value fSelectattr(const Value& in, const Args& a, const Limits& l) { return selectOrReject(in, a, l, true, true); }
Value fRejectattr(const Value& in, const Args& a, const Limits& l) { return selectOrReject(in, a, l, true, false); }

Value fSort(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("sort", {"reverse", "case_sensitive", "attribute"}, 0);
  List xs = iterate(in, limits);
  bool cs = a[1].truthy();
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& v : xs) keyed.emplace_back(keyOf(v, a[2], cs), v);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return a[0].truthy() ? lessThan(y.first, x.first) : lessThan(x.first, y.first);
  });
  List out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value fDictsort(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("dictsort", {"case_sensitive", "by", "reverse"}, 0);
  if (!in.isMapping()) fail("dictsort expects a mapping");
  bool by_value = a[1].isString() && a[1].str() == "value";
  List pairs;
  for (const auto& [k, v] : in.mapping().entries) pairs.push_back(Value::list({Value(k), v}, true));
  Value none;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    Value kx = keyOf(x.items()[by_value ? 1 : 0], none, a[0].truthy());
    Value ky = keyOf(y.items()[by_value ? 1 : 0], none, a[0].truthy());
    return a[2].truthy() ? lessThan(ky, kx) : lessThan(kx, ky);
  });
  return Value::list(std::move(pairs));
}

Value fUnique(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("unique", {"case_sensitive", "attribute"}, 0);
  std::unordered_set<std::string> seen;
  List out;
  for (const Value& v : iterate(in, limits))
    if (seen.insert(hashKey(keyOf(v, a[1], a[0].truthy()))).second) out.push_back(v);
  return Value::list(std::move(out));
}

Value minMax(const Value& in, const Args& args, const Limits& limits, bool max) {
  auto a = args.bind(max ? "max" : "min", {"case_sensitive", "attribute"}, 0);
  List xs = iterate(in, limits);
  if (xs.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  size_t best = 0;
  for (size_t i = 1; i < xs.size(); ++i) {
    Value ki = keyOf(xs[i], a[1], a[0].truthy());
    Value kb = keyOf(xs[best], a[1], a[0].truthy());
    if (max ? lessThan(kb, ki) : lessThan(ki, kb)) best = i;
  }
  return xs[best];
}
Value fMin(const Value& in, const Args& a, const Limits& l) { return minMax(in, a, l, false); }
Value fMax(const Value& in, const Args& a, const Limits& l) { return minMax(in, a, l, true); }

Value fSum(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("sum", {"attribute", "start"}, 0);
  bool is_float = a[1].kind() == Kind::Float;
  int64_t i = a[1].isInt() ? a[1].integer() : 0;
  double f = a[1].isNumber() ? a[1].number() : 0;
  for (const Value& v : iterate(in, limits)) {
    Value x = a[0].isUndefined() || a[0].isNone() ? v : attrPath(v, str(a[0]));
    if (!x.isNumber()) fail("unsupported operand type(s) for +: 'int' and '" + x.typeName() + "'");
    if (x.kind() == Kind::Float) is_float = true;
    f += x.number();
    if (!is_float && __builtin_add_overflow(i, x.integer(), &i)) fail("integer overflow in sum");
  }
  return is_float ? Value(f) : Value(i);
}

Value fAbs(const Value& in, const Args& a, const Limits&) {
  a.bind("abs", {}, 0);
  if (in.kind() == Kind::Float) return Value(std::fabs(in.number()));
  if (!in.isInt()) fail("bad operand type for abs(): '" + in.typeName() + "'");
  if (in.integer() == INT64_MIN) fail("integer overflow in abs");
  return Value(in.integer() < 0 ? -in.integer() : in.integer());
}

Value fRound(const Value& in, const Args& args, const Limits&) {
  auto a = args.bind("round", {"precision", "method"}, 0);
  if (!in.isNumber()) fail("round() needs a number, got " + in.typeName());
  int64_t p = a[0].isInt() ? std::max<int64_t>(-20, std::min<int64_t>(20, a[0].integer())) : 0;
  std::string method = a[1].isString() ? a[1].str() : "common";
  if (method == "common" && in.isInt() && p >= 0) return Value(in.integer());  // Python: round(int, n) is the int
  double scale = std::pow(10.0, static_cast<double>(p));
  double x = in.number() * scale;
  double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);  // Python's round() is half-to-even
  if (method != "common" && method != "ceil" && method != "floor") fail("method must be common, ceil or floor");
  return Value(r / scale);
}

Value fCenter(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("center", {"width"}, 0);
  std::string s = str(in);
  int64_t width = a[0].isInt() ? a[0].integer() : 80;
  int64_t len = static_cast<int64_t>(text::length(s));
  if (width <= len) return Value(s);
  checkStringSize(static_cast<size_t>(width - len) + s.size(), limits);
  int64_t total = width - len;
  int64_t left = total / 2 + (total & width & 1);  // CPython's str.center rounding
  return Value(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(total - left), ' '));
}

Value fIndent(const Value& in, const Args& args, const Limits& limits) {
  auto a = args.bind("indent", {"width", "first", "blank"}, 0);
  if (!in.isString()) fail("indent needs a string, got " + in.typeName());
  std::string pad;
  if (a[0].isString()) pad = a[0].str();
  else {
    int64_t w = a[0].isInt() ? a[0].integer() : 4;
    if (w > 1024) fail("indent width larger than 1024");
    pad = std::string(static_cast<size_t>(std::max<int64_t>(0, w)), ' ');
  }
  // jinja2 appends "\n" before splitlines() so a trailing newline survives.
  std::vector<std::string> lines;
  std::string s = str(in) + "\n";
  size_t start = 0;
  for (size_t p; (p = s.find('\n', start)) != std::string::npos; start = p + 1) lines.push_back(s.substr(start, p - start));
  std::string out = lines.empty() ? "" : lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    out += "\n";
    if (a[2].truthy() || !lines[i].empty()) out += pad;
    out += lines[i];
    checkStringSize(out.size(), limits);
  }
  if (a[1].truthy()) out = pad + out;
  return Value(out);
}

Value fWordcount(const Value& in, const Args& a, const Limits&) {
  a.bind("wordcount", {}, 0);
  return Value(static_cast<int64_t>(text::split(str(in), nullptr, -1).size()));
}

Value fFormat(const Value& in, const Args& args, const Limits& limits) {
  if (!args.kw.empty() && !args.pos.empty()) fail("can't handle positional and keyword arguments at the same time");
  return Value(percentFormat(str(in), Value::list(args.pos, true), limits));
}

Value fAttr(const Value& in, const Args& args, const Limits&) {
  auto a = args.bind("attr", {"name"}, 1);
  return getAttribute(in, str(a[0]));
}

struct FilterEntry {
  const char* name;
  FilterFn fn;
};

const FilterEntry kFilters[] = {
    {"abs", fAbs}, {"attr", fAttr}, {"capitalize", fCapitalize}, {"center", fCenter},
    {"count", fLength}, {"d", fDefault}, {"default", fDefault}, {"dictsort", fDictsort},
    {"e", fEscape}, {"escape", fEscape}, {"first", fFirst}, {"float", fFloat},
    {"forceescape", fEscape}, {"format", fFormat}, {"indent", fIndent}, {"int", fInt},
    {"items", fItems}, {"join", fJoin}, {"last", fLast}, {"length", fLength}, {"list", fList},
    {"lower", fLower}, {"map", fMap}, {"max", fMax}, {"min", fMin}, {"reject", fReject},
    {"rejectattr", fRejectattr}, {"replace", fReplace}, {"reverse", fReverse}, {"round", fRound},
    {"safe", fSafe}, {"select", fSelect}, {"selectattr", fSelectattr}, {"sort", fSort},
    {"string", fString}, {"sum", fSum}, {"title", fTitle}, {"tojson", fTojson}, {"trim", fTrim},
    {"unique", fUnique}, {"upper", fUpper}, {"wordcount", fWordcount},
};

FilterFn findFilter(const std::string& name) {
  for (const auto& f : kFilters)
    if (name == f.name) return f.fn;
  return nullptr;
}

}  // namespace

bool hasFilter(const std::string& name) { return findFilter(name) != nullptr; }

Value applyFilter(const std::string& name, const Value& input, const Args& args, const Limits& limits) {
  FilterFn fn = findFilter(name);
  if (!fn) fail("no filter named '" + name + "'");
  return fn(input, args, limits);
}

}  // namespace ds::tpl

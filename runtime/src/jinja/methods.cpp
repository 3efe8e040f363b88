// Attribute/item/slice lookup with jinja2 semantics, iteration, and the Python str/dict/list methods.
#include <algorithm>
#include <cctype>

#include "jinja/builtins.h"
#include "jinja/text.h"

namespace ds::tpl {
namespace {

std::string objectTypeRepr(const Value& v) {
  if (v.isNone()) return "None";
  return v.typeName() + " object";
}

void requireDefined(const Value& v) {
  if (v.isUndefined()) fail(v.undefinedHint().empty() ? "value is undefined" : v.undefinedHint());
}

const std::string& strArg(const Value& v, const std::string& fn) {
  if (!v.isString()) fail(fn + "() argument must be str, not " + v.typeName());
  return v.str();
}

long intArg(const Value& v, long def, const std::string& fn) {
  if (v.isUndefined() || v.isNone()) return def;
  if (!v.isInt()) fail(fn + "() argument must be int, not " + v.typeName());
  return static_cast<long>(v.integer());
}

Value stringList(const std::vector<std::string>& parts) {
  List out;
  out.reserve(parts.size());
  for (const auto& p : parts) out.emplace_back(p);
  return Value::list(std::move(out));
}

// startswith/endswith take a str or a tuple of str.
bool affix(const std::string& s, const Value& arg, bool prefix, const std::string& fn) {
  auto test = [&](const std::string& a) {
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (arg.isList()) {
    for (const Value& a : arg.items())
      if (test(strArg(a, fn))) return true;
    return false;
  }
  return test(strArg(arg, fn));
}

// Python str.format with "{}", "{0}", "{name}" and "{{"/"}}"; format specs are not supported.
std::string strFormat(const std::string& fmt, const Args& args, const Limits& limits) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}' ) {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') { out += '}'; ++i; continue; }
      fail("Single '}' encountered in format string");
    }
    if (c != '{') { out += c; continue; }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') { out += '{'; ++i; continue; }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) fail("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!") != std::string::npos) fail("format specs in str.format are not supported");
    Value v;
    if (field.empty()) {
      if (auto_index >= args.pos.size()) fail("Replacement index " + std::to_string(auto_index) + " out of range");
      v = args.pos[auto_index++];
    } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t k = field.size() > 6 ? args.pos.size() : std::stoul(field);
      if (k >= args.pos.size()) fail("Replacement index " + field + " out of range");
      v = args.pos[k];
    } else {
      auto it = std::find_if(args.kw.begin(), args.kw.end(), [&](const auto& kv) { return kv.first == field; });
      if (it == args.kw.end()) fail("KeyError: '" + field + "'");
      v = it->second;
    }
    out += v.toString();
    checkStringSize(out.size(), limits);
    i = close;
  }
  return out;
}

bool stringMethod(const std::string& s, const std::string& name, const Args& args, const Limits& limits, Value* out) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto a = args.bind(name, {"chars"}, 0);
    const std::string* chars = (a[0].isUndefined() || a[0].isNone()) ? nullptr : &strArg(a[0], name);
    *out = text::strip(s, chars, name != "rstrip", name != "lstrip");
  } else if (name == "split" || name == "rsplit") {
    auto a = args.bind(name, {"sep", "maxsplit"}, 0);
    const std::string* sep = (a[0].isUndefined() || a[0].isNone()) ? nullptr : &strArg(a[0], name);
    long maxsplit = intArg(a[1], -1, name);
    *out = stringList(name == "split" ? text::split(s, sep, maxsplit) : text::rsplit(s, sep, maxsplit));
  } else if (name == "splitlines") {
    args.bind(name, {}, 0);
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        lines.push_back(s.substr(start, i - start));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) lines.push_back(s.substr(start));
    *out = stringList(lines);
  } else if (name == "startswith" || name == "endswith") {
    auto a = args.bind(name, {"prefix"}, 1);
    *out = Value(affix(s, a[0], name == "startswith", name));
  } else if (name == "replace") {
    auto a = args.bind(name, {"old", "new", "count"}, 2);
    *out = text::replace(s, strArg(a[0], name), strArg(a[1], name), intArg(a[2], -1, name), limits.max_output_bytes);
  } else if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    args.bind(name, {}, 0);
    *out = name == "upper" ? text::upper(s) : name == "lower" ? text::lower(s)
         : name == "title" ? text::title(s) : text::capitalize(s);
  } else if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    auto a = args.bind(name, {"sub"}, 1);
    const std::string& sub = strArg(a[0], name);
    if (name == "count") {
      if (sub.empty()) { *out = Value(static_cast<int64_t>(text::length(s) + 1)); return true; }
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      *out = Value(n);
      return true;
    }
    size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
    if (p == std::string::npos) {
      if (name == "index" || name == "rindex") fail("substring not found");
      *out = Value(static_cast<int64_t>(-1));
    } else {
      *out = Value(static_cast<int64_t>(text::length(s.substr(0, p))));
    }
  } else if (name == "removeprefix" || name == "removesuffix") {
    auto a = args.bind(name, {"affix"}, 1);
    const std::string& x = strArg(a[0], name);
    bool pre = name == "removeprefix";
    *out = affix(s, Value(x), pre, name) ? (pre ? s.substr(x.size()) : s.substr(0, s.size() - x.size())) : s;
  } else if (name == "join") {
    auto a = args.bind(name, {"iterable"}, 1);
    std::string r;
    bool first = true;
    for (const Value& v : iterate(a[0], limits)) {
      if (!first) r += s;
      first = false;
      r += strArg(v, name);
      checkStringSize(r.size(), limits);
    }
    *out = r;
  } else if (name == "format") {
    *out = strFormat(s, args, limits);
  } else if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
             name == "islower" || name == "isupper") {
    args.bind(name, {}, 0);
    bool ok = !s.empty();
    bool cased = false;
    for (char c : s) {
      unsigned char u = static_cast<unsigned char>(c);
      bool r = name == "isdigit" ? std::isdigit(u) : name == "isalpha" ? std::isalpha(u)
             : name == "isalnum" ? std::isalnum(u) : name == "isspace" ? std::isspace(u)
             : name == "islower" ? !std::isupper(u) : !std::islower(u);
      cased = cased || std::isalpha(u);
      ok = ok && r;
    }
    if (name == "islower" || name == "isupper") ok = ok && cased;
    *out = Value(ok);
  } else {
    return false;
  }
  return true;
}

bool dictMethod(const Value& d, const std::string& name, const Args& args, Value* out) {
  const Dict& m = d.mapping();
  if (name == "get") {
    auto a = args.bind(name, {"key", "default"}, 1);
    const Value* v = a[0].isString() ? m.find(a[0].str()) : nullptr;
    *out = v ? *v : (a[1].isUndefined() ? Value::none() : a[1]);
  } else if (name == "items" || name == "keys" || name == "values") {
    args.bind(name, {}, 0);
    List xs;
    for (const auto& [k, v] : m.entries) {
      if (name == "items") xs.push_back(Value::list({Value(k), v}, true));
      else xs.push_back(name == "keys" ? Value(k) : v);
    }
    *out = Value::list(std::move(xs));
  } else if (name == "update" || name == "pop" || name == "popitem" || name == "setdefault" || name == "clear") {
    fail("access to attribute '" + name + "' of 'dict' object is unsafe.");
  } else {
    return false;
  }
  return true;
}

bool listMethod(const Value& l, const std::string& name, const Args& args, Value* out) {
  const List& xs = l.items();
  if (name == "index" || name == "count") {
    auto a = args.bind(name, {"value"}, 1);
    int64_t n = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!equals(xs[i], a[0])) continue;
      if (name == "index") { *out = Value(static_cast<int64_t>(i)); return true; }
      ++n;
    }
    if (name == "index") fail(a[0].repr() + " is not in list");
    *out = Value(n);
    return true;
  }
  static const char* kMutating[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"};
  for (const char* m : kMutating)
    if (name == m) fail("access to attribute '" + name + "' of '" + l.typeName() + "' object is unsafe.");
  return false;
}

int64_t normIndex(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

}  // namespace

Value getAttribute(const Value& obj, const std::string& name) {
  requireDefined(obj);
  if (obj.isMapping()) {
    if (const Value* v = obj.mapping().find(name)) return *v;
  }
  return Value::undefined("'" + objectTypeRepr(obj) + "' has no attribute '" + name + "'");
}

Value getItem(const Value& obj, const Value& key) {
  requireDefined(obj);
  if (obj.isMapping()) {
    if (key.isString()) {
      if (const Value* v = obj.mapping().find(key.str())) return *v;
    }
  } else if ((obj.isList() || obj.isString()) && key.isInt()) {
    if (obj.isList()) {
      int64_t n = static_cast<int64_t>(obj.items().size());
      int64_t i = normIndex(key.integer(), n);
      if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
    } else {
      std::vector<std::string> cps = text::codepoints(obj.str());
      int64_t n = static_cast<int64_t>(cps.size());
      int64_t i = normIndex(key.integer(), n);
      if (i >= 0 && i < n) return Value(cps[static_cast<size_t>(i)]);
    }
  } else if (key.isString()) {
    return getAttribute(obj, key.str());
  }
  if (key.isString()) return Value::undefined("'" + objectTypeRepr(obj) + "' has no attribute '" + key.str() + "'");
  return Value::undefined("'" + objectTypeRepr(obj) + "' has no element " + key.repr());
}

Value getSlice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  requireDefined(obj);
  auto bound = [](const Value& v) -> const Value& {
    if (!v.isUndefined() && !v.isNone() && !v.isInt()) fail("slice indices must be integers or None");
    return v;
  };
  bound(start);
  bound(stop);
  bound(step);
  int64_t st = (step.isUndefined() || step.isNone()) ? 1 : step.integer();
  if (st == 0) fail("slice step cannot be zero");
  std::vector<std::string> cps;
  if (obj.isString()) cps = text::codepoints(obj.str());
  else if (!obj.isList()) fail("'" + obj.typeName() + "' object is not subscriptable");
  int64_t n = static_cast<int64_t>(obj.isString() ? cps.size() : obj.items().size());
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](const Value& v, int64_t def) {
    if (v.isUndefined() || v.isNone()) return def;
    int64_t i = v.integer();
    if (i < 0) { i += n; if (i < 0) i = st < 0 ? -1 : 0; }
    else if (i >= n) i = st < 0 ? n - 1 : n;
    return i;
  };
  int64_t b = adjust(start, st < 0 ? n - 1 : 0);
  int64_t e = adjust(stop, st < 0 ? -1 : n);
  std::string s;
  List xs;
  for (int64_t i = b; st > 0 ? i < e : i > e;) {
    if (obj.isString()) s += cps[static_cast<size_t>(i)];
    else xs.push_back(obj.items()[static_cast<size_t>(i)]);
    if (__builtin_add_overflow(i, st, &i)) break;  // a step like 2**63-1 jumps past the end
  }
  if (obj.isString()) return Value(s);
  return Value::list(std::move(xs), obj.isTuple());
}

List iterate(const Value& v, const Limits& limits) {
  limits.spend(v.isList() ? v.items().size() : v.isString() ? v.str().size() : v.isMapping() ? v.mapping().entries.size() : 0);
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::List: return v.items();
    case Kind::Dict: {
      List keys;
      for (const auto& kv : v.mapping().entries) keys.emplace_back(kv.first);
      return keys;
    }
    case Kind::String: {
      List out;
      for (auto& cp : text::codepoints(v.str())) out.emplace_back(std::move(cp));
      return out;
    }
    default: fail("'" + v.typeName() + "' object is not iterable");
  }
}

bool callMethod(const Value& obj, const std::string& name, const Args& args, const Limits& limits, Value* out) {
  requireDefined(obj);
  if (obj.isString()) return stringMethod(obj.str(), name, args, limits, out);
  if (obj.isDict()) return dictMethod(obj, name, args, out);
  if (obj.isList()) return listMethod(obj, name, args, out);
  return false;
}

void Limits::startRender() const {
  loop_iterations = 0;
  work_items = 0;
  auto budget = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(max_render_seconds));
  deadline = std::chrono::steady_clock::now() + budget;
}

void Limits::spend(size_t n) const {
  work_items += static_cast<int64_t>(n);
  if (work_items > max_work_items)
    fail("more than " + std::to_string(max_work_items) + " items processed (loop iterations and filter items)");
  // Reading the clock every 4096 items keeps the check cheap.
  if (((work_items - static_cast<int64_t>(n)) >> 12) != (work_items >> 12) || n == 0) {
    if (std::chrono::steady_clock::now() > deadline) fail("render took longer than the time limit");
  }
}

void Limits::loopIteration() const {
  if (++loop_iterations > max_loop_iterations)
    fail("more than " + std::to_string(max_loop_iterations) + " loop iterations");
  spend(1);
}

void checkStringSize(size_t bytes, const Limits& limits) {
  if (bytes > limits.max_output_bytes)
    fail("string larger than the limit of " + std::to_string(limits.max_output_bytes) + " bytes");
}

void checkListSize(size_t items, const Limits& limits) {
  if (items > limits.max_list_items)
    fail("list longer than the limit of " + std::to_string(limits.max_list_items) + " items");
}

}  // namespace ds::tpl

// jinja2 tests ("is defined", ...), printf-style formatting and the global functions templates may call.
#include <cmath>
#include <cstdio>
#include <ctime>

#include "jinja/builtins.h"
#include "jinja/text.h"

namespace ds::tpl {
namespace {

Value callableOf(const std::string& name, std::function<Value(const Args&)> fn) {
  auto c = std::make_shared<Callable>();
  c->name = name;
  c->call = std::move(fn);
  return Value::callable(std::move(c));
}

bool caseTest(const std::string& s, bool upper) {
  bool cased = false;
  for (char c : s) {
    if (upper ? (c >= 'a' && c <= 'z') : (c >= 'A' && c <= 'Z')) return false;
    cased = cased || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  }
  return cased;
}

}  // namespace

bool hasTest(const std::string& n) {
  static const char* kTests[] = {"defined", "undefined", "none", "boolean", "false", "true", "integer",
                                 "float", "number", "string", "mapping", "iterable", "sequence",
                                 "callable", "sameas", "eq", "equalto", "==", "ne", "!=", "lt",
                                 "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=",
                                 "in", "odd", "even", "divisibleby", "lower", "upper", "escaped",
                                 "filter", "test"};
  for (const char* t : kTests)
    if (n == t) return true;
  return false;
}

bool applyTest(const std::string& n, const Value& v, const Args& args) {
  auto one = [&]() { return args.bind(n, {"other"}, 1)[0]; };
  static const char* kWithArgument[] = {"sameas", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le",
                                        "<=", "gt", "greaterthan", ">", "ge", ">=", "in", "divisibleby"};
  bool takes_argument = false;
  for (const char* t : kWithArgument) takes_argument = takes_argument || n == t;
  if (!takes_argument) args.bind("test_" + n, {}, 0);
  if (n == "defined") return !v.isUndefined();
  if (n == "undefined") return v.isUndefined();
  if (n == "none") return v.isNone();
  if (n == "boolean") return v.kind() == Kind::Bool;
  if (n == "false") return v.kind() == Kind::Bool && !v.boolean();
  if (n == "true") return v.kind() == Kind::Bool && v.boolean();
  if (n == "integer") return v.kind() == Kind::Int;
  if (n == "float") return v.kind() == Kind::Float;
  if (n == "number") return v.isNumber();
  if (n == "string") return v.isString();
  if (n == "mapping") return v.isDict();
  if (n == "iterable") return v.isUndefined() || v.isList() || v.isDict() || v.isString();
  if (n == "sequence") return v.isUndefined() || v.isList() || v.isDict() || v.isString();
  if (n == "callable") return v.kind() == Kind::Callable || v.isUndefined();  // jinja2's Undefined has __call__
  if (n == "escaped") return false;
  if (n == "sameas") {
    Value o = one();
    if (v.kind() != o.kind()) return false;
    if (v.isList() || v.isMapping() || v.kind() == Kind::Callable) return v.identity() == o.identity();
    return equals(v, o);  // None/True/False and small ints are singletons in CPython
  }
  if (n == "eq" || n == "equalto" || n == "==") return equals(v, one());
  if (n == "ne" || n == "!=") return !equals(v, one());
  if (n == "lt" || n == "lessthan" || n == "<") return lessThan(v, one());
  if (n == "le" || n == "<=") { Value o = one(); return lessThan(v, o) || equals(v, o); }
  if (n == "gt" || n == "greaterthan" || n == ">") return lessThan(one(), v);
  if (n == "ge" || n == ">=") { Value o = one(); return lessThan(o, v) || equals(v, o); }
  if (n == "in") {
    Value o = one();
    if (o.isString()) {
      if (!v.isString()) fail("'in <string>' requires string as left operand, not " + v.typeName());
      return o.str().find(v.str()) != std::string::npos;
    }
    if (o.isMapping()) return v.isString() && o.mapping().find(v.str()) != nullptr;
    if (o.isList()) {
      for (const Value& x : o.items())
        if (equals(x, v)) return true;
      return false;
    }
    if (o.isUndefined()) return false;
    fail("argument of type '" + o.typeName() + "' is not iterable");
  }
  if (n == "odd" || n == "even" || n == "divisibleby") {
    if (v.kind() == Kind::Float && n != "divisibleby") {
      // jinja2 computes value % 2 == 0 / == 1 with Python's float modulo, so 2.5 is neither.
      double r = std::fmod(v.number(), 2.0);
      if (r < 0) r += 2.0;
      return n == "even" ? r == 0 : r == 1;
    }
    if (!v.isInt()) fail("test '" + n + "' needs an integer, got " + v.typeName());
    int64_t d = 2;
    if (n == "divisibleby") {
      Value o = args.bind(n, {"num"}, 1)[0];
      if (!o.isInt()) fail("divisibleby needs an integer argument");
      d = o.integer();
      if (d == 0) fail("integer division or modulo by zero");
      if (d == -1) return true;
      return v.integer() % d == 0;
    }
    bool even = v.integer() % 2 == 0;
    return n == "even" ? even : !even;
  }
  if (n == "lower" || n == "upper") return caseTest(v.toString(), n == "upper");
  if (n == "filter") return v.isString() && hasFilter(v.str());
  if (n == "test") return v.isString() && hasTest(v.str());
  fail("no test named '" + n + "'");
}

std::string percentFormat(const std::string& fmt, const Value& args, const Limits& limits) {
  List xs = args.isTuple() ? args.items() : List{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') { out += fmt[i]; continue; }
    if (++i >= fmt.size()) fail("incomplete format");
    std::string spec = "%";
    while (i < fmt.size() && std::string("-+ #0123456789.").find(fmt[i]) != std::string::npos && spec.size() < 12)
      spec += fmt[i++];
    if (i >= fmt.size()) fail("incomplete format");
    char conv = fmt[i];
    if (conv == '%') { out += '%'; continue; }
    if (next >= xs.size()) fail("not enough arguments for format string");
    const Value& v = xs[next++];
    char buf[512];
    // snprintf reports the full length; a field wider than buf (e.g. "%999999d") is refused, not cut.
    auto emit = [&](int n) {
      if (n < 0 || static_cast<size_t>(n) >= sizeof buf) fail("format field wider than " + std::to_string(sizeof buf - 1) + " characters");
      out.append(buf, static_cast<size_t>(n));
    };
    if (conv == 's' || conv == 'r') {
      std::string s = conv == 's' ? v.toString() : v.repr();
      out += s;
    } else if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o') {
      if (!v.isNumber()) fail("%" + std::string(1, conv) + " format: a real number is required, not " + v.typeName());
      long long n = v.kind() == Kind::Float ? static_cast<long long>(v.number()) : v.integer();
      std::string f = spec + "ll" + std::string(1, conv == 'i' ? 'd' : conv);
      emit(std::snprintf(buf, sizeof buf, f.c_str(), n));
    } else if (conv == 'f' || conv == 'F' || conv == 'e' || conv == 'E' || conv == 'g' || conv == 'G') {
      if (!v.isNumber()) fail("must be real number, not " + v.typeName());
      emit(std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.number()));
    } else {
      fail(std::string("unsupported format character '") + conv + "'");
    }
    checkStringSize(out.size(), limits);
  }
  // CPython: an unused tuple item or scalar argument is an error; lists and dicts count as mappings.
  bool mapping_like = !args.isTuple() && (args.isList() || args.isMapping());
  if (next < xs.size() && !mapping_like) fail("not all arguments converted during string formatting");
  return out;
}

std::shared_ptr<Dict> makeGlobals(const Limits& limits) {
  auto g = std::make_shared<Dict>();
  g->set("range", callableOf("range", [](const Args& args) {
    auto a = args.bind("range", {"start", "stop", "step"}, 1);
    for (const Value& v : a)
      if (!v.isUndefined() && !v.isInt()) fail("'" + v.typeName() + "' object cannot be interpreted as an integer");
    int64_t start = 0, stop, step = 1;
    if (a[1].isUndefined()) {
      stop = a[0].integer();
    } else {
      start = a[0].integer();
      stop = a[1].integer();
      if (!a[2].isUndefined()) step = a[2].integer();
    }
    if (step == 0) fail("range() arg 3 must not be zero");
    // jinja2's sandbox: MAX_RANGE = 100000.
    long double len = step > 0 ? (static_cast<long double>(stop) - start) / step
                               : (static_cast<long double>(start) - stop) / -step;
    if (len > 100000) fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    List xs;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) xs.emplace_back(i);
    return Value::list(std::move(xs));
  }));
  g->set("dict", callableOf("dict", [](const Args& args) {
    auto d = std::make_shared<Dict>();
    if (args.pos.size() > 1) fail("dict expected at most 1 argument");
    if (!args.pos.empty()) {
      if (!args.pos[0].isDict()) fail("dict() argument must be a mapping");
      *d = args.pos[0].mapping();
    }
    for (const auto& [k, v] : args.kw) d->set(k, v);
    return Value::dict(std::move(d));
  }));
  g->set("namespace", callableOf("namespace", [](const Args& args) {
    auto d = std::make_shared<Dict>();
    if (args.pos.size() > 1) fail("namespace expected at most 1 positional argument");
    if (!args.pos.empty()) {
      if (!args.pos[0].isMapping()) fail("namespace() argument must be a mapping");
      *d = args.pos[0].mapping();
    }
    for (const auto& [k, v] : args.kw) d->set(k, v);
    return Value::ns(std::move(d));
  }));
  g->set("raise_exception", callableOf("raise_exception", [](const Args& args) -> Value {
    auto a = args.bind("raise_exception", {"message"}, 1);
    fail(a[0].toString());
  }));
  g->set("strftime_now", callableOf("strftime_now", [&limits](const Args& args) {
    auto a = args.bind("strftime_now", {"format"}, 1);
    if (!a[0].isString()) fail("strftime_now() argument must be str");
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    std::string fmt = a[0].str();
    if (fmt.size() > 256) fail("strftime_now() format longer than 256 bytes");
    std::string buf(4096, '\0');
    size_t n = fmt.empty() ? 0 : std::strftime(&buf[0], buf.size(), fmt.c_str(), &tm);
    buf.resize(n);
    checkStringSize(n, limits);
    return Value(buf);
  }));
  return g;
}

}  // namespace ds::tpl

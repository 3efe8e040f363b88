// Tree-walking evaluator with jinja2 scoping: loop bodies get a fresh scope per iteration, `if` does not
// scope, macros see the template's top-level names; Python semantics for every operator.
#include "jinja/eval.h"

#include <cmath>

namespace ds::tpl {
namespace {

[[noreturn]] void failUndefined(const Value& v) {
  fail(v.undefinedHint().empty() ? "value is undefined" : v.undefinedHint());
}

void requireDefined(const Value& v) {
  if (v.isUndefined()) failUndefined(v);
}

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for " + op + ": '" + a.typeName() + "' and '" + b.typeName() + "'");
}

void checkOverflow(bool overflow) {
  if (overflow) fail("integer overflow (values are limited to 64 bits)");
}

Value repeat(const Value& seq, int64_t n, const Limits& limits) {
  if (n < 0) n = 0;
  // An empty sequence stays empty however large n is; don't loop n times to find out.
  if ((seq.isString() && seq.str().empty()) || (seq.isList() && seq.items().empty())) n = 0;
  if (seq.isString()) {
    if (n > 0 && seq.str().size() > limits.max_output_bytes / static_cast<uint64_t>(n)) checkStringSize(limits.max_output_bytes + 1, limits);
    // Doubling: 'x' * 20000000 is a few memcpys, not 20 million appends.
    const size_t total = seq.str().size() * static_cast<size_t>(n);
    std::string out;
    out.reserve(total);
    if (total > 0) out = seq.str();
    while (out.size() < total) out.append(out, 0, std::min(out.size(), total - out.size()));
    return Value(std::move(out));
  }
  if (n > 0 && seq.items().size() > limits.max_list_items / static_cast<uint64_t>(n)) checkListSize(limits.max_list_items + 1, limits);
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::list(std::move(out), seq.isTuple());
}

Value intPow(int64_t base, int64_t exp) {
  if (exp < 0) return Value(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) checkOverflow(__builtin_mul_overflow(result, base, &result));
    exp >>= 1;
    if (exp > 0) checkOverflow(__builtin_mul_overflow(base, base, &base));
  }
  return Value(result);
}

}  // namespace

Value binaryOp(const std::string& op, const Value& a, const Value& b, const Limits& limits) {
  if (op == "~") {
    std::string s = a.toString() + b.toString();
    checkStringSize(s.size(), limits);
    return Value(s);
  }
  requireDefined(a);
  requireDefined(b);
  bool ints = a.isInt() && b.isInt();
  bool nums = a.isNumber() && b.isNumber();
  int64_t x = a.integer(), y = b.integer(), r = 0;
  if (op == "+") {
    if (ints) { checkOverflow(__builtin_add_overflow(x, y, &r)); return Value(r); }
    if (nums) return Value(a.number() + b.number());
    if (a.isString() && b.isString()) {
      checkStringSize(a.str().size() + b.str().size(), limits);
      return Value(a.str() + b.str());
    }
    if (a.isList() && b.isList() && a.isTuple() == b.isTuple()) {
      checkListSize(a.items().size() + b.items().size(), limits);
      List out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(out), a.isTuple());
    }
    if (a.isString() || a.isList())
      fail("can only concatenate " + a.typeName() + " (not \"" + b.typeName() + "\") to " + a.typeName());
    unsupported(op, a, b);
  }
  if (op == "-") {
    if (ints) { checkOverflow(__builtin_sub_overflow(x, y, &r)); return Value(r); }
    if (nums) return Value(a.number() - b.number());
    unsupported(op, a, b);
  }
  if (op == "*") {
    if (ints) { checkOverflow(__builtin_mul_overflow(x, y, &r)); return Value(r); }
    if (nums) return Value(a.number() * b.number());
    if ((a.isString() || a.isList()) && b.isInt()) return repeat(a, y, limits);
    if (a.isInt() && (b.isString() || b.isList())) return repeat(b, x, limits);
    if (a.isString() || b.isString() || a.isList() || b.isList())
      fail("can't multiply sequence by non-int of type '" + (a.isNumber() ? a : b).typeName() + "'");
    unsupported(op, a, b);
  }
  if (op == "/") {
    if (!nums) unsupported(op, a, b);
    if (b.number() == 0) fail("division by zero");
    return Value(a.number() / b.number());
  }
  if (op == "//" || op == "%") {
    if (op == "%" && a.isString()) return Value(percentFormat(a.str(), b, limits));
    if (!nums) unsupported(op, a, b);
    if (ints) {
      if (y == 0) fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) fail("integer overflow (values are limited to 64 bits)");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) { --q; m += y; }
      return op == "//" ? Value(q) : Value(m);
    }
    double fx = a.number(), fy = b.number();
    if (fy == 0) fail("float division by zero");
    double m = std::fmod(fx, fy);
    if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
    if (op == "%") return Value(m);
    // CPython's float_floor_div: floor of the exact quotient, corrected for rounding.
    double div = (fx - m) / fy;
    double fl = std::floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return Value(fl);
  }
  if (op == "**") {
    if (ints) return intPow(x, y);
    if (nums) {
      if (a.number() == 0 && b.number() < 0) fail("0.0 cannot be raised to a negative power");
      return Value(std::pow(a.number(), b.number()));
    }
    unsupported(op, a, b);
  }
  fail("unknown operator '" + op + "'");
}

class Evaluator::DepthGuard {
 public:
  DepthGuard(int* depth, int limit) : depth_(depth) {
    if (++*depth_ > limit) {
      --*depth_;
      fail("template nested or recursed deeper than " + std::to_string(limit) + " levels");
    }
  }
  ~DepthGuard() { --*depth_; }

 private:
  int* depth_;
};

Evaluator::Evaluator(const Limits& limits, std::shared_ptr<Dict> context)
    : limits_(limits), context_(std::move(context)), globals_(makeGlobals(limits)) {}

Evaluator::~Evaluator() {
  for (auto& [id, ns] : mutated_namespaces_) {
    Dict& d = ns.mutableNamespace();
    d.index.clear();
    std::vector<std::pair<std::string, Value>> entries;
    entries.swap(d.entries);  // destroyed here, after d no longer refers to them
  }
}

std::string Evaluator::render(const TemplateAst& ast) {
  limits_.startRender();
  // The memory budget covers this render's values; restored on every exit (errors throw).
  struct BudgetScope {
    RenderMemory saved = render_memory;
    explicit BudgetScope(size_t limit) {
      render_memory.start = render_memory.live;
      render_memory.limit = static_cast<int64_t>(std::min<size_t>(limit, size_t{1} << 62));
    }
    ~BudgetScope() {
      render_memory.start = saved.start;
      render_memory.limit = saved.limit;
    }
  } budget(limits_.max_render_bytes);
  std::string out;
  out_ = &out;
  execBody(ast.body, root_);
  return out;
}

void Evaluator::emit(const std::string& s) {
  if (out_->size() + s.size() > limits_.max_output_bytes)
    fail("output larger than the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
  out_->append(s);
}

Value Evaluator::lookup(const std::string& name, Scope& scope) const {
  for (const Scope* s = &scope; s; s = s->parent) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  if (const Value* v = context_->find(name)) return *v;
  if (const Value* v = globals_->find(name)) return *v;
  return Value::undefined("'" + name + "' is undefined");
}

Evaluator::Flow Evaluator::execBody(const Body& body, Scope& scope) {
  for (const StmtPtr& s : body) {
    Flow f = exec(*s, scope);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

std::string Evaluator::capture(const Body& body, Scope& scope) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  try {
    execBody(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buf;
}

Evaluator::Flow Evaluator::exec(const Stmt& s, Scope& scope) {
  DepthGuard guard(&depth_, limits_.max_eval_depth);
  if ((++statements_ & 255) == 0) limits_.spend(0);  // a deadline check now and then
  try {
    switch (s.kind) {
      case StmtKind::Text: emit(s.text); return Flow::Normal;
      case StmtKind::Output: emit(eval(*s.expr, scope).toString()); return Flow::Normal;
      case StmtKind::If:
        for (const auto& [cond, body] : s.branches)
          if (eval(*cond, scope).truthy()) return execBody(body, scope);
        return execBody(s.else_body, scope);
      case StmtKind::For: return execFor(s, scope);
      case StmtKind::Set: execSet(s, scope); return Flow::Normal;
      case StmtKind::SetBlock: {
        Value v(capture(s.body, scope));
        if (s.expr) v = applyFilterChain(*s.expr, v, scope);
        assign(*s.target, v, scope);
        return Flow::Normal;
      }
      case StmtKind::Macro: defineMacro(s, scope); return Flow::Normal;
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
      case StmtKind::FilterBlock: {
        Scope inner{{}, &scope};
        emit(applyFilterChain(*s.expr, Value(capture(s.body, inner)), scope).toString());
        return Flow::Normal;
      }
      case StmtKind::With: {
        Scope inner{{}, &scope};
        for (size_t i = 0; i < s.names.size(); ++i) inner.vars[s.names[i]] = eval(*s.defaults[i], scope);
        return execBody(s.body, inner);
      }
    }
  } catch (TemplateError& e) {
    if (e.line == 0) { e.line = s.line; e.col = s.col; }
    throw;
  }
  return Flow::Normal;
}

Evaluator::Flow Evaluator::execFor(const Stmt& s, Scope& scope) {
  List items = iterate(eval(*s.expr, scope), limits_);
  auto bind = [&](Scope& target, const Value& item) {
    if (s.names.size() == 1) { target.vars[s.names[0]] = item; return; }
    List parts = iterate(item, limits_);
    if (parts.size() != s.names.size())
      fail("cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(s.names.size()) + " loop variables");
    for (size_t i = 0; i < parts.size(); ++i) target.vars[s.names[i]] = parts[i];
  };
  if (s.cond) {
    List kept;
    for (const Value& item : items) {
      limits_.loopIteration();
      Scope probe{{}, &scope};
      bind(probe, item);
      if (eval(*s.cond, probe).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  const size_t n = items.size();
  for (size_t i = 0; i < n; ++i) {
    limits_.loopIteration();
    Scope iter{{}, &scope};
    bind(iter, items[i]);
    if (s.uses_loop) iter.vars["loop"] = loopObject(items, i);
    if (execBody(s.body, iter) == Flow::Break) break;
  }
  if (n == 0) return execBody(s.else_body, scope);
  return Flow::Normal;
}

Value Evaluator::loopObject(const List& items, size_t i) {
  const size_t n = items.size();
  auto loop = std::make_shared<Dict>();
  int64_t idx = static_cast<int64_t>(i), len = static_cast<int64_t>(n);
  loop->set("index", Value(idx + 1));
  loop->set("index0", Value(idx));
  loop->set("revindex", Value(len - idx));
  loop->set("revindex0", Value(len - idx - 1));
  loop->set("first", Value(i == 0));
  loop->set("last", Value(i + 1 == n));
  loop->set("length", Value(len));
  loop->set("depth", Value(1));
  loop->set("depth0", Value(0));
  loop->set("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
  loop->set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
  auto cycle = std::make_shared<Callable>();
  cycle->name = "loop.cycle";
  cycle->call = [i](const Args& args) {
    if (args.pos.empty()) fail("no items for cycling given");
    return args.pos[i % args.pos.size()];
  };
  loop->set("cycle", Value::callable(std::move(cycle)));
  return Value::dict(std::move(loop));
}

void Evaluator::assign(const Expr& target, const Value& v, Scope& scope) {
  if (target.kind == ExprKind::Name) {
    scope.vars[target.name] = v;
  } else if (target.kind == ExprKind::Attr) {
    Value ns = lookup(target.args[0]->name, scope);
    if (ns.kind() != Kind::Namespace) fail("cannot assign attribute on non-namespace object");
    ns.mutableNamespace().set(target.name, v);
    mutated_namespaces_.emplace(ns.identity(), ns);
  } else {
    List parts = iterate(v, limits_);
    if (parts.size() != target.args.size())
      fail("cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(target.args.size()) + " names");
    for (size_t i = 0; i < parts.size(); ++i) scope.vars[target.args[i]->name] = parts[i];
  }
}

void Evaluator::execSet(const Stmt& s, Scope& scope) { assign(*s.target, eval(*s.expr, scope), scope); }

void Evaluator::defineMacro(const Stmt& s, Scope& scope) {
  auto fn = std::make_shared<Callable>();
  fn->name = s.text;
  const Stmt* def = &s;
  fn->call = [this, def](const Args& args) { return callMacro(*def, args); };
  scope.vars[s.text] = Value::callable(std::move(fn));
}

Value Evaluator::callMacro(const Stmt& s, const Args& args) {
  if (macro_depth_ >= limits_.max_macro_depth)
    fail("macro calls nested deeper than " + std::to_string(limits_.max_macro_depth) + " levels");
  ++macro_depth_;
  struct Exit { int* d; ~Exit() { --*d; } } exit_guard{&macro_depth_};
  std::vector<const char*> names;
  for (const auto& n : s.names) names.push_back(n.c_str());
  std::vector<Value> bound = args.bind(s.text, names, 0);
  Scope frame{{}, &root_};
  for (size_t i = 0; i < s.names.size(); ++i) {
    bool given = i < args.pos.size();
    for (const auto& kv : args.kw) given = given || kv.first == s.names[i];
    if (given) frame.vars[s.names[i]] = bound[i];
    else if (s.defaults[i]) frame.vars[s.names[i]] = eval(*s.defaults[i], frame);
    else frame.vars[s.names[i]] = Value::undefined("parameter '" + s.names[i] + "' was not provided");
  }
  return Value(capture(s.body, frame));
}

Args Evaluator::evalArgs(const Expr& e, size_t first, Scope& scope) {
  Args a;
  for (size_t i = first; i < e.args.size(); ++i) a.pos.push_back(eval(*e.args[i], scope));
  for (const auto& [k, v] : e.kwargs) a.kw.emplace_back(k, eval(*v, scope));
  return a;
}

Value Evaluator::applyFilterChain(const Expr& chain, Value input, Scope& scope) {
  if (chain.kind != ExprKind::Filter) return input;
  Value inner = applyFilterChain(*chain.args[0], std::move(input), scope);
  return applyFilter(chain.name, inner, evalArgs(chain, 1, scope), limits_);
}

Value Evaluator::eval(const Expr& e, Scope& scope) {
  DepthGuard guard(&depth_, limits_.max_eval_depth);
  try {
    return evalInner(e, scope);
  } catch (TemplateError& err) {
    if (err.line == 0) { err.line = e.line; err.col = e.col; }
    throw;
  }
}

Value Evaluator::evalInner(const Expr& e, Scope& scope) {
  switch (e.kind) {
    case ExprKind::Literal: return e.value;
    case ExprKind::Name: return lookup(e.name, scope);
    case ExprKind::Attr: return getAttribute(eval(*e.args[0], scope), e.name);
    case ExprKind::Item: {
      Value obj = eval(*e.args[0], scope);
      return getItem(obj, eval(*e.args[1], scope));
    }
    case ExprKind::Slice: {
      Value obj = eval(*e.args[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        if (e.args[1 + i]) parts[i] = eval(*e.args[1 + i], scope);
      return getSlice(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::Call: return evalCall(e, scope);
    case ExprKind::Filter: {
      Value in = eval(*e.args[0], scope);
      return applyFilter(e.name, in, evalArgs(e, 1, scope), limits_);
    }
    case ExprKind::Test: {
      Value in = eval(*e.args[0], scope);
      return Value(applyTest(e.name, in, evalArgs(e, 1, scope)) != e.negated);
    }
    case ExprKind::Unary: {
      Value v = eval(*e.args[0], scope);
      if (e.name == "not") return Value(!v.truthy());
      requireDefined(v);
      if (!v.isNumber()) fail("bad operand type for unary " + e.name + ": '" + v.typeName() + "'");
      if (e.name == "+") return v.kind() == Kind::Float ? v : Value(v.integer());
      if (v.kind() == Kind::Float) return Value(-v.number());
      if (v.integer() == INT64_MIN) fail("integer overflow (values are limited to 64 bits)");
      return Value(-v.integer());
    }
    case ExprKind::Binary: return evalBinary(e, scope);
    case ExprKind::Compare: return evalCompare(e, scope);
    case ExprKind::Cond:
      if (eval(*e.args[1], scope).truthy()) return eval(*e.args[0], scope);
      return e.args[2] ? eval(*e.args[2], scope) : Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    case ExprKind::List:
    case ExprKind::Tuple: {
      List xs;
      for (const auto& a : e.args) xs.push_back(eval(*a, scope));
      return Value::list(std::move(xs), e.kind == ExprKind::Tuple);
    }
    case ExprKind::Dict: {
      auto d = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], scope);
        if (!k.isString()) fail("dict keys must be strings in this implementation, got " + k.typeName());
        d->set(k.str(), eval(*e.args[i + 1], scope));
      }
      return Value::dict(std::move(d));
    }
  }
  fail("unknown expression");
}

Value Evaluator::evalCall(const Expr& e, Scope& scope) {
  const Expr& callee = *e.args[0];
  Value fn;
  if (callee.kind == ExprKind::Attr) {
    Value obj = eval(*callee.args[0], scope);
    Args args = evalArgs(e, 1, scope);
    Value result;
    if (callMethod(obj, callee.name, args, limits_, &result)) return result;
    fn = getAttribute(obj, callee.name);
    if (fn.kind() == Kind::Callable) return fn.fn().call(args);
  } else {
    fn = eval(callee, scope);
  }
  if (fn.isUndefined()) failUndefined(fn);
  if (fn.kind() != Kind::Callable) fail("'" + fn.typeName() + "' object is not callable");
  return fn.fn().call(evalArgs(e, 1, scope));
}

Value Evaluator::evalBinary(const Expr& e, Scope& scope) {
  Value a = eval(*e.args[0], scope);
  if (e.name == "and") return a.truthy() ? eval(*e.args[1], scope) : a;
  if (e.name == "or") return a.truthy() ? a : eval(*e.args[1], scope);
  return binaryOp(e.name, a, eval(*e.args[1], scope), limits_);
}

Value Evaluator::evalCompare(const Expr& e, Scope& scope) {
  Value left = eval(*e.args[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1], scope);
    const std::string& op = e.ops[i];
    bool ok;
    if (op == "==") ok = equals(left, right);
    else if (op == "!=") ok = !equals(left, right);
    else if (op == "in" || op == "not in") {
      Args a;
      a.pos.push_back(right);
      ok = applyTest("in", left, a) == (op == "in");
    } else {
      requireDefined(left);
      requireDefined(right);
      if (op == "<") ok = lessThan(left, right);
      else if (op == ">") ok = lessThan(right, left);
      else if (op == "<=") ok = !lessThan(right, left);
      else ok = !lessThan(left, right);
    }
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

}  // namespace ds::tpl

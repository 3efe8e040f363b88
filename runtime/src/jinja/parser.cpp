// Recursive-descent parser for the Jinja2 subset; the grammar follows jinja2/parser.py function by function.
#include "jinja/parser.h"

#include <algorithm>

#include "jinja/builtins.h"
#include "jinja/lexer.h"

namespace ds::tpl {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  TemplateAst run() {
    TemplateAst ast;
    parseBody(&ast.body, {}, nullptr);
    return ast;
  }

 private:
  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  void next() { if (i_ + 1 < toks_.size()) ++i_; }
  bool isOp(const char* op) const { return cur().type == Tok::Op && cur().value == op; }
  bool isName(const char* name) const { return cur().type == Tok::Name && cur().value == name; }
  bool skipOp(const char* op) { if (!isOp(op)) return false; next(); return true; }
  bool skipName(const char* name) { if (!isName(name)) return false; next(); return true; }

  [[noreturn]] void error(const Token& at, const std::string& msg) const { throw TemplateError{msg, at.line, at.col}; }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Text: return "template text";
      case Tok::VarBegin: return "'{{'";
      case Tok::VarEnd: return "end of print statement '}}'";
      case Tok::BlockBegin: return "'{%'";
      case Tok::BlockEnd: return "end of statement block '%}'";
      case Tok::String: return "string literal";
      case Tok::Int: case Tok::Float: return "number " + t.value;
      case Tok::Eof: return "end of template";
      default: return "'" + t.value + "'";
    }
  }

  void expectOp(const char* op) {
    if (!skipOp(op)) error(cur(), std::string("expected '") + op + "', got " + describe(cur()));
  }
  void expectBlockEnd() {
    if (cur().type != Tok::BlockEnd) error(cur(), "expected end of statement block '%}', got " + describe(cur()));
    next();
  }
  std::string expectName(const char* what) {
    if (cur().type != Tok::Name) error(cur(), std::string("expected ") + what + ", got " + describe(cur()));
    std::string n = cur().value;
    next();
    return n;
  }

  ExprPtr node(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->col = at.col;
    return e;
  }

  // Bounds expression trees: evaluation and destruction recurse once per level.
  ExprPtr finish(ExprPtr e) {
    int h = 0;
    for (const auto& a : e->args) if (a) h = std::max(h, heightOf(*a));
    for (const auto& kv : e->kwargs) h = std::max(h, heightOf(*kv.second));
    heights_[e.get()] = h + 1;
    if (h + 1 > kMaxExprHeight)
      throw TemplateError{"expression nested deeper than " + std::to_string(kMaxExprHeight) + " levels", e->line, e->col};
    return e;
  }
  int heightOf(const Expr& e) const {
    auto it = heights_.find(&e);
    return it == heights_.end() ? 1 : it->second;
  }

  // ---- statements -------------------------------------------------------------------------------

  // Parses statements into *out until a block tag named in `ends`; returns that name with the cursor
  // just after it. `opener` names the enclosing block for the "not closed" error.
  std::string parseBody(Body* out, const std::vector<std::string>& ends, const Token* opener) {
    if (++block_depth_ > kMaxBlockNesting) error(cur(), "blocks nested deeper than " + std::to_string(kMaxBlockNesting) + " levels");
    std::string opener_name = opener ? opener->value : "";
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::Eof) {
        if (ends.empty()) { --block_depth_; return ""; }
        error(*opener, "unclosed '" + opener_name + "' block: reached the end of the template looking for 'end" + opener_name + "'");
      }
      if (t.type == Tok::Text) {
        auto s = stmt(StmtKind::Text, t);
        s->text = t.value;
        out->push_back(std::move(s));
        next();
        continue;
      }
      if (t.type == Tok::VarBegin) {
        auto s = stmt(StmtKind::Output, t);
        next();
        s->expr = hard(parseTuple(true, false));
        if (cur().type != Tok::VarEnd) error(cur(), "expected end of print statement '}}', got " + describe(cur()));
        next();
        out->push_back(std::move(s));
        continue;
      }
      if (t.type != Tok::BlockBegin) error(t, "unexpected " + describe(t));
      next();
      const Token& tag = cur();
      if (tag.type != Tok::Name) error(tag, "expected a tag name, got " + describe(tag));
      if (std::find(ends.begin(), ends.end(), tag.value) != ends.end()) {
        next();
        --block_depth_;
        return tag.value;
      }
      static const char* kStructural[] = {"elif", "else", "endif", "endfor", "endset", "endmacro",
                                          "endfilter", "endwith", "endgeneration", "endraw"};
      for (const char* k : kStructural) {
        if (tag.value != k) continue;
        if (!opener) error(tag, "unexpected '" + tag.value + "': no block is open");
        error(tag, "unexpected '" + tag.value + "': the innermost open block is '" + opener_name + "' from line " +
                       std::to_string(opener->line) + ", which needs 'end" + opener_name + "'");
      }
      out->push_back(parseStatement());
    }
  }

  StmtPtr stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->col = at.col;
    return s;
  }

  StmtPtr parseStatement() {
    Token tag = cur();
    const std::string& n = tag.value;
    next();
    if (n == "if") return parseIf(tag);
    if (n == "for") return parseFor(tag);
    if (n == "set") return parseSet(tag);
    if (n == "macro") return parseMacro(tag);
    if (n == "filter") return parseFilterBlock(tag);
    if (n == "with" || n == "generation") return parseWith(tag);
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) error(tag, "'" + n + "' outside of a loop");
      expectBlockEnd();
      return stmt(n == "break" ? StmtKind::Break : StmtKind::Continue, tag);
    }
    error(tag, "unknown tag '" + n + "'");
  }

  // Sets soft_ for the lifetime of a block; jinja2's compiler does the same with frame.soft()/inner().
  struct SoftScope {
    bool* flag;
    bool saved;
    SoftScope(bool* f, bool value) : flag(f), saved(*f) { *f = value; }
    ~SoftScope() { *flag = saved; }
  };

  StmtPtr parseIf(const Token& tag) {
    SoftScope soft(&soft_, true);
    auto s = stmt(StmtKind::If, tag);
    ExprPtr cond = parseTuple(false, false);
    while (true) {
      expectBlockEnd();
      Body body;
      std::string end = parseBody(&body, {"elif", "else", "endif"}, &tag);
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") { cond = parseTuple(false, false); continue; }
      expectBlockEnd();
      if (end == "else") {
        parseBody(&s->else_body, {"endif"}, &tag);
        expectBlockEnd();
      }
      return s;
    }
  }

  std::vector<std::string> parseTargetNames() {
    std::vector<std::string> names;
    bool paren = skipOp("(");
    do {
      names.push_back(expectName("a loop variable name"));
    } while (skipOp(","));
    if (paren) expectOp(")");
    return names;
  }

  StmtPtr parseFor(const Token& tag) {
    auto s = stmt(StmtKind::For, tag);
    s->names = parseTargetNames();
    if (!skipName("in")) error(cur(), "expected 'in' in for loop, got " + describe(cur()));
    s->expr = hard(parseTuple(false, false, "recursive"));
    if (skipName("if")) s->cond = hard(parseExpression(true));
    if (isName("recursive")) error(cur(), "recursive loops are not supported");
    expectBlockEnd();
    SoftScope hard_body(&soft_, false);
    ++loop_depth_;
    int loop_refs = loop_name_refs_;
    std::string end = parseBody(&s->body, {"endfor", "else"}, &tag);
    s->uses_loop = loop_name_refs_ != loop_refs;
    --loop_depth_;
    expectBlockEnd();
    if (end == "else") {
      parseBody(&s->else_body, {"endfor"}, &tag);
      expectBlockEnd();
    }
    return s;
  }

  ExprPtr parseAssignTarget() {
    const Token& at = cur();
    std::string first = expectName("an assignment target");
    if (skipOp(".")) {
      auto ns = node(ExprKind::Name, at);
      ns->name = first;
      auto attr = node(ExprKind::Attr, at);
      attr->args.push_back(std::move(ns));
      attr->name = expectName("an attribute name");
      return attr;
    }
    auto name = node(ExprKind::Name, at);
    name->name = first;
    if (!isOp(",")) return name;
    auto tuple = node(ExprKind::Tuple, at);
    tuple->args.push_back(std::move(name));
    while (skipOp(",")) {
      if (cur().type != Tok::Name) break;
      auto n = node(ExprKind::Name, cur());
      n->name = expectName("an assignment target");
      tuple->args.push_back(std::move(n));
    }
    return tuple;
  }

  StmtPtr parseSet(const Token& tag) {
    auto s = stmt(StmtKind::Set, tag);
    s->target = parseAssignTarget();
    if (skipOp("=")) {
      s->expr = hard(parseTuple(true, false));
      expectBlockEnd();
      return s;
    }
    if (s->target->kind != ExprKind::Name) error(tag, "block set needs a plain variable name");
    s->kind = StmtKind::SetBlock;
    SoftScope hard_body(&soft_, false);
    if (isOp("|")) s->expr = hard(parseFilterChain());
    expectBlockEnd();
    parseBody(&s->body, {"endset"}, &tag);
    expectBlockEnd();
    return s;
  }

  StmtPtr parseMacro(const Token& tag) {
    auto s = stmt(StmtKind::Macro, tag);
    SoftScope hard_body(&soft_, false);
    s->text = expectName("a macro name");
    expectOp("(");
    while (!isOp(")")) {
      if (!s->names.empty()) expectOp(",");
      if (isOp(")")) break;
      s->names.push_back(expectName("a parameter name"));
      s->defaults.push_back(skipOp("=") ? hard(parseExpression(true)) : nullptr);
    }
    next();
    expectBlockEnd();
    int saved = loop_depth_;
    loop_depth_ = 0;
    parseBody(&s->body, {"endmacro"}, &tag);
    loop_depth_ = saved;
    expectBlockEnd();
    return s;
  }

  // "| f(args) | g" applied to a placeholder literal that the evaluator replaces by the block's text.
  ExprPtr parseFilterChain() {
    auto e = node(ExprKind::Literal, cur());
    e->value = Value("");
    e = finish(std::move(e));
    skipOp("|");  // "{% set x | f %}" has a leading pipe, "{% filter f %}" does not
    e = parseFilter(std::move(e));
    while (skipOp("|")) e = parseFilter(std::move(e));
    return e;
  }

  StmtPtr parseFilterBlock(const Token& tag) {
    auto s = stmt(StmtKind::FilterBlock, tag);
    SoftScope hard_body(&soft_, false);
    s->expr = hard(parseFilterChain());
    expectBlockEnd();
    parseBody(&s->body, {"endfilter"}, &tag);
    expectBlockEnd();
    return s;
  }

  StmtPtr parseWith(const Token& tag) {
    auto s = stmt(StmtKind::With, tag);
    std::string end = "end" + tag.value;
    while (cur().type != Tok::BlockEnd) {
      if (!s->names.empty()) expectOp(",");
      s->names.push_back(expectName("a variable name"));
      expectOp("=");
      s->defaults.push_back(hard(parseExpression(true)));
    }
    expectBlockEnd();
    SoftScope hard_body(&soft_, false);
    parseBody(&s->body, {end}, &tag);
    expectBlockEnd();
    return s;
  }

  // ---- expressions ------------------------------------------------------------------------------

  // jinja2 reports an unknown filter/test at compile time, except directly inside `{% if %}` blocks
  // (test and branches, not nested loops/macros/set blocks) and inline if-expressions, where it fails
  // only when evaluated. Expressions in other positions are checked here; the evaluator raises for the rest.
  ExprPtr hard(ExprPtr e) {
    if (!soft_) checkKnown(*e);
    return e;
  }
  void checkKnown(const Expr& e) const {
    if (e.kind == ExprKind::Cond) return;
    if (e.unknown) {
      throw TemplateError{std::string("no ") + (e.kind == ExprKind::Filter ? "filter" : "test") + " named '" + e.name + "'",
                          e.line, e.col};
    }
    for (const auto& a : e.args) if (a) checkKnown(*a);
    for (const auto& kv : e.kwargs) checkKnown(*kv.second);
  }

  bool atTupleEnd(const char* extra_end) const {
    return cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || cur().type == Tok::Eof || isOp(")") ||
           (extra_end && isName(extra_end));
  }

  ExprPtr parseTuple(bool with_condexpr, bool explicit_parens, const char* extra_end = nullptr) {
    const Token& at = cur();
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expectOp(",");
      if (atTupleEnd(extra_end)) break;
      args.push_back(parseExpression(with_condexpr));
      if (isOp(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) error(cur(), "expected an expression, got " + describe(cur()));
    }
    auto t = node(ExprKind::Tuple, at);
    t->args = std::move(args);
    return finish(std::move(t));
  }

  ExprPtr parseExpression(bool with_condexpr) {
    if (!with_condexpr) return parseOr();
    ExprPtr e = parseOr();
    while (isName("if")) {
      auto c = node(ExprKind::Cond, cur());
      next();
      ExprPtr test = parseOr();
      ExprPtr other = skipName("else") ? parseExpression(true) : nullptr;
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(test));
      c->args.push_back(std::move(other));
      e = finish(std::move(c));
    }
    return e;
  }

  ExprPtr binary(const char* op, ExprPtr l, ExprPtr r, const Token& at) {
    auto b = node(ExprKind::Binary, at);
    b->name = op;
    b->args.push_back(std::move(l));
    b->args.push_back(std::move(r));
    return finish(std::move(b));
  }

  ExprPtr parseOr() {
    ExprPtr l = parseAnd();
    while (isName("or")) { Token at = cur(); next(); l = binary("or", std::move(l), parseAnd(), at); }
    return l;
  }

  ExprPtr parseAnd() {
    ExprPtr l = parseNot();
    while (isName("and")) { Token at = cur(); next(); l = binary("and", std::move(l), parseNot(), at); }
    return l;
  }

  ExprPtr parseNot() {
    if (isName("not")) {
      auto u = node(ExprKind::Unary, cur());
      next();
      u->name = "not";
      u->args.push_back(parseNot());
      return finish(std::move(u));
    }
    return parseCompare();
  }

  ExprPtr parseCompare() {
    const Token& at = cur();
    ExprPtr first = parseMath1();
    auto c = node(ExprKind::Compare, at);
    c->args.push_back(std::move(first));
    static const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};
    while (true) {
      std::string op;
      for (const char* o : kOps) if (isOp(o)) op = o;
      if (!op.empty()) next();
      else if (skipName("in")) op = "in";
      else if (isName("not") && peek().type == Tok::Name && peek().value == "in") { next(); next(); op = "not in"; }
      else break;
      c->ops.push_back(op);
      c->args.push_back(parseMath1());
    }
    if (c->ops.empty()) return std::move(c->args[0]);
    return finish(std::move(c));
  }

  ExprPtr parseMath1() {
    ExprPtr l = parseConcat();
    while (isOp("+") || isOp("-")) {
      Token at = cur();
      next();
      l = binary(at.value == "+" ? "+" : "-", std::move(l), parseConcat(), at);
    }
    return l;
  }

  ExprPtr parseConcat() {
    ExprPtr l = parseMath2();
    while (isOp("~")) { Token at = cur(); next(); l = binary("~", std::move(l), parseMath2(), at); }
    return l;
  }

  ExprPtr parseMath2() {
    ExprPtr l = parsePow();
    while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
      Token at = cur();
      next();
      std::string op = at.value;
      l = binary(op == "*" ? "*" : op == "/" ? "/" : op == "//" ? "//" : "%", std::move(l), parsePow(), at);
    }
    return l;
  }

  ExprPtr parsePow() {
    ExprPtr l = parseUnary(true);
    while (isOp("**")) { Token at = cur(); next(); l = binary("**", std::move(l), parseUnary(true), at); }
    return l;
  }

  ExprPtr parseUnary(bool with_filter) {
    if (++expr_depth_ > kMaxExprHeight) error(cur(), "expression nested deeper than " + std::to_string(kMaxExprHeight) + " levels");
    ExprPtr e;
    if (isOp("-") || isOp("+")) {
      auto u = node(ExprKind::Unary, cur());
      u->name = cur().value;
      next();
      u->args.push_back(parseUnary(false));
      e = finish(std::move(u));
    } else {
      e = parsePrimary();
    }
    e = parsePostfix(std::move(e));
    if (with_filter) e = parseFilterExpr(std::move(e));
    --expr_depth_;
    return e;
  }

  ExprPtr literal(Value v, const Token& at) {
    auto e = node(ExprKind::Literal, at);
    e->value = std::move(v);
    return finish(std::move(e));
  }

  ExprPtr parsePrimary() {
    Token t = cur();
    switch (t.type) {
      case Tok::Name: {
        next();
        if (t.value == "true" || t.value == "True") return literal(Value(true), t);
        if (t.value == "false" || t.value == "False") return literal(Value(false), t);
        if (t.value == "none" || t.value == "None") return literal(Value::none(), t);
        if (t.value == "loop") ++loop_name_refs_;
        auto e = node(ExprKind::Name, t);
        e->name = t.value;
        return finish(std::move(e));
      }
      case Tok::String: {
        std::string s;
        while (cur().type == Tok::String) { s += cur().value; next(); }
        return literal(Value(std::move(s)), t);
      }
      case Tok::Int: next(); return literal(Value(t.i), t);
      case Tok::Float: next(); return literal(Value(t.f), t);
      case Tok::Op:
        if (t.value == "(") {
          next();
          ExprPtr e = parseTuple(true, true);
          expectOp(")");
          return e;
        }
        if (t.value == "[") return parseList();
        if (t.value == "{") return parseDict();
        break;
      default: break;
    }
    error(t, "unexpected " + describe(t));
  }

  ExprPtr parseList() {
    auto e = node(ExprKind::List, cur());
    expectOp("[");
    while (!isOp("]")) {
      if (!e->args.empty()) expectOp(",");
      if (isOp("]")) break;
      e->args.push_back(parseExpression(true));
    }
    next();
    return finish(std::move(e));
  }

  ExprPtr parseDict() {
    auto e = node(ExprKind::Dict, cur());
    expectOp("{");
    while (!isOp("}")) {
      if (!e->args.empty()) expectOp(",");
      if (isOp("}")) break;
      e->args.push_back(parseExpression(true));
      expectOp(":");
      e->args.push_back(parseExpression(true));
    }
    next();
    return finish(std::move(e));
  }

  ExprPtr parsePostfix(ExprPtr e) {
    while (true) {
      if (isOp(".") || isOp("[")) e = parseSubscript(std::move(e));
      else if (isOp("(")) e = parseCall(std::move(e));
      else return e;
    }
  }

  ExprPtr parseFilterExpr(ExprPtr e) {
    while (true) {
      if (skipOp("|")) e = parseFilter(std::move(e));
      else if (isName("is")) e = parseTest(std::move(e));
      else if (isOp("(")) e = parseCall(std::move(e));
      else return e;
    }
  }

  ExprPtr parseSubscript(ExprPtr obj) {
    Token at = cur();
    if (skipOp(".")) {
      if (cur().type == Tok::Name) {
        auto e = node(ExprKind::Attr, at);
        e->name = cur().value;
        next();
        e->args.push_back(std::move(obj));
        return finish(std::move(e));
      }
      if (cur().type != Tok::Int) error(cur(), "expected a name or number after '.', got " + describe(cur()));
      auto e = node(ExprKind::Item, at);
      e->args.push_back(std::move(obj));
      e->args.push_back(literal(Value(cur().i), cur()));
      next();
      return finish(std::move(e));
    }
    expectOp("[");
    std::vector<ExprPtr> subs;
    while (!isOp("]")) {
      if (!subs.empty()) expectOp(",");
      if (isOp("]")) break;
      subs.push_back(parseSubscribed());
    }
    next();
    if (subs.empty()) error(at, "expected a subscript inside '[]'");
    if (subs.size() == 1 && subs[0]->kind == ExprKind::Slice) {
      subs[0]->args[0] = std::move(obj);
      return finish(std::move(subs[0]));
    }
    for (const auto& sub : subs)
      if (sub->kind == ExprKind::Slice) error(at, "a slice cannot be combined with other subscripts");
    auto e = node(ExprKind::Item, at);
    e->args.push_back(std::move(obj));
    if (subs.size() == 1) {
      e->args.push_back(std::move(subs[0]));
    } else {
      auto t = node(ExprKind::Tuple, at);
      t->args = std::move(subs);
      e->args.push_back(finish(std::move(t)));
    }
    return finish(std::move(e));
  }

  // One subscript: an expression or a slice "a:b:c" (args[0] is left for the sliced object).
  ExprPtr parseSubscribed() {
    Token at = cur();
    ExprPtr start;
    if (!isOp(":")) {
      start = parseExpression(true);
      if (!isOp(":")) return start;
    }
    next();
    auto s = node(ExprKind::Slice, at);
    s->args.push_back(nullptr);
    s->args.push_back(std::move(start));
    s->args.push_back((isOp("]") || isOp(",") || isOp(":")) ? nullptr : parseExpression(true));
    ExprPtr step;
    if (skipOp(":") && !isOp("]") && !isOp(",")) step = parseExpression(true);
    s->args.push_back(std::move(step));
    return s;
  }

  // Call arguments "(a, b, k=v)" appended to e->args / e->kwargs.
  void parseCallArgs(Expr* e) {
    expectOp("(");
    bool any = false;
    while (!isOp(")")) {
      if (any) expectOp(",");
      if (isOp(")")) break;
      any = true;
      if (isOp("*") || isOp("**")) error(cur(), "*args and **kwargs in calls are not supported");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().value == "=") {
        std::string key = cur().value;
        next();
        next();
        e->kwargs.emplace_back(key, parseExpression(true));
      } else {
        if (!e->kwargs.empty()) error(cur(), "positional argument follows keyword argument");
        e->args.push_back(parseExpression(true));
      }
    }
    next();
  }

  ExprPtr parseCall(ExprPtr callee) {
    auto e = node(ExprKind::Call, cur());
    e->args.push_back(std::move(callee));
    parseCallArgs(e.get());
    return finish(std::move(e));
  }

  std::string dottedName(const char* what) {
    std::string n = expectName(what);
    while (isOp(".") && peek().type == Tok::Name) { next(); n += "." + cur().value; next(); }
    return n;
  }

  ExprPtr parseFilter(ExprPtr input) {
    Token at = cur();
    auto e = node(ExprKind::Filter, at);
    e->name = dottedName("a filter name");
    e->unknown = !hasFilter(e->name);
    e->args.push_back(std::move(input));
    if (isOp("(")) parseCallArgs(e.get());
    return finish(std::move(e));
  }

  ExprPtr parseTest(ExprPtr input) {
    Token at = cur();
    next();  // 'is'
    auto e = node(ExprKind::Test, at);
    e->negated = skipName("not");
    e->line = cur().line;  // errors about the test point at its name
    e->col = cur().col;
    e->name = dottedName("a test name");
    e->unknown = !hasTest(e->name);
    e->args.push_back(std::move(input));
    if (isOp("(")) {
      parseCallArgs(e.get());
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                cur().type == Tok::Float || isOp("(") || isOp("[") || isOp("{")) &&
               !isName("else") && !isName("or") && !isName("and")) {
      if (isName("is")) error(cur(), "you cannot chain multiple tests with 'is'");
      e->args.push_back(parsePostfix(parsePrimary()));
    }
    return finish(std::move(e));
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  int block_depth_ = 0;
  int expr_depth_ = 0;
  int loop_depth_ = 0;
  bool soft_ = false;
  int loop_name_refs_ = 0;
  std::unordered_map<const Expr*, int> heights_;
};

}  // namespace

TemplateAst parseTemplate(const std::string& source) { return Parser(tokenize(source)).run(); }

}  // namespace ds::tpl

// Tree-walking evaluator: renders a TemplateAst against a context with jinja2 scoping rules.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "jinja/ast.h"
#include "jinja/builtins.h"

namespace ds::tpl {

// Renders `ast` with `context` (template variables). Throws TemplateError positioned at the innermost
// failing node. Single-use: one Evaluator per render.
class Evaluator {
 public:
  Evaluator(const Limits& limits, std::shared_ptr<Dict> context);
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;
  std::string render(const TemplateAst& ast);

 private:
  struct Scope {
    std::unordered_map<std::string, Value> vars;
    Scope* parent = nullptr;
  };
  enum class Flow { Normal, Break, Continue };
  class DepthGuard;

  Flow execBody(const Body& body, Scope& scope);
  Flow exec(const Stmt& s, Scope& scope);
  Flow execFor(const Stmt& s, Scope& scope);
  Value loopObject(const List& items, size_t i);
  void execSet(const Stmt& s, Scope& scope);
  void defineMacro(const Stmt& s, Scope& scope);
  Value callMacro(const Stmt& s, const Args& args);
  std::string capture(const Body& body, Scope& scope);

  Value eval(const Expr& e, Scope& scope);
  Value evalInner(const Expr& e, Scope& scope);
  Value evalCall(const Expr& e, Scope& scope);
  Value evalBinary(const Expr& e, Scope& scope);
  Value evalCompare(const Expr& e, Scope& scope);
  Value applyFilterChain(const Expr& chain, Value input, Scope& scope);
  Args evalArgs(const Expr& e, size_t first, Scope& scope);
  Value lookup(const std::string& name, Scope& scope) const;
  void assign(const Expr& target, const Value& v, Scope& scope);
  void emit(const std::string& s);

  const Limits& limits_;
  std::shared_ptr<Dict> context_;
  std::shared_ptr<Dict> globals_;
  Scope root_;
  std::string* out_ = nullptr;
  int depth_ = 0;
  int macro_depth_ = 0;
  int64_t statements_ = 0;
  // Namespaces assigned to during the render: `set ns.self = ns` makes a shared_ptr cycle, which the
  // destructor breaks by emptying them.
  std::unordered_map<const void*, Value> mutated_namespaces_;
};

// Python binary operators on values (+ - * / // % ** ~), with overflow and size checks.
Value binaryOp(const std::string& op, const Value& a, const Value& b, const Limits& limits);

}  // namespace ds::tpl

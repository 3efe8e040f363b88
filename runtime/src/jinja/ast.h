// Syntax tree of a parsed chat template: expressions and statements, each tagged with its source position.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace ds::tpl {

enum class ExprKind {
  Literal,   // value
  Name,      // name
  Attr,      // args[0].name
  Item,      // args[0][args[1]]
  Slice,     // args[0][args[1]:args[2]:args[3]] (null parts omitted)
  Call,      // args[0](args[1..], kwargs)
  Filter,    // args[0] | name(args[1..], kwargs)
  Test,      // args[0] is [not] name(args[1..])
  Unary,     // name in {"-", "+", "not"}
  Binary,    // args[0] name args[1], name in {+ - * / // % ** ~ and or}
  Compare,   // args[0] ops[0] args[1] ops[1] args[2] ... (chained)
  Cond,      // args[0] if args[1] else args[2] (args[2] may be null)
  List,      // [args...]
  Tuple,     // (args...)
  Dict,      // {args[0]: args[1], ...}
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::Literal;
  int line = 0;
  int col = 0;
  Value value;
  std::string name;
  bool negated = false;
  bool unknown = false;  // Filter/Test whose name is not built in (an error once evaluated)
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
};

enum class StmtKind {
  Text,      // text
  Output,    // {{ expr }}
  If,        // branches: (cond, body)...; else_body
  For,       // targets in expr [if cond]: body; else_body
  Set,       // target = expr (target: Name, Attr on a namespace, or Tuple of names)
  SetBlock,  // {% set target %}body{% endset %}, optional filter chain in expr (applied to Literal "")
  Macro,     // {% macro name(params) %}body{% endmacro %}
  Break,
  Continue,
  FilterBlock,  // {% filter f %}body{% endfilter %}: expr is the filter chain applied to Literal ""
  With,         // {% with a = 1 %}body{% endwith %}: scoped assignments (targets/params)
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind = StmtKind::Text;
  int line = 0;
  int col = 0;
  std::string text;
  ExprPtr expr;    // Output / Set value / For iterable / filter chain
  ExprPtr target;  // Set target
  ExprPtr cond;    // For filter condition
  std::vector<std::pair<ExprPtr, Body>> branches;  // If
  std::vector<std::string> names;                  // For targets, Macro parameters, With names
  std::vector<ExprPtr> defaults;                   // Macro parameter defaults (null = required), With values
  bool uses_loop = false;                          // For: the body mentions `loop` (else it is not built)
  Body body;
  Body else_body;
};

struct TemplateAst {
  Body body;
};

}  // namespace ds::tpl

// Recursive-descent parser for the Jinja2 subset: tokens -> TemplateAst, with jinja2's operator precedence.
#pragma once

#include <string>

#include "jinja/ast.h"

namespace ds::tpl {

// Nesting limits keep parsing, evaluation and destruction of hostile templates off the native stack's end.
constexpr int kMaxBlockNesting = 64;
constexpr int kMaxExprHeight = 128;

// Tokenizes and parses `source`. Throws TemplateError (with line/column) on any syntax error, unknown
// tag, unknown filter or test.
TemplateAst parseTemplate(const std::string& source);

}  // namespace ds::tpl

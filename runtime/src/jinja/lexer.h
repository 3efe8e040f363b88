// Tokenizer for the Jinja2 subset, applying jinja2's whitespace rules (trim_blocks, lstrip_blocks, -/+).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ds::tpl {

enum class Tok { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type = Tok::Eof;
  std::string value;  // text, name, decoded string literal or operator
  int64_t i = 0;
  double f = 0;
  int line = 1;
  int col = 1;
};

// Tokenizes a template the way jinja2's Lexer does for Environment(trim_blocks=True,
// lstrip_blocks=True): newlines normalized to "\n", one trailing newline dropped, comments removed,
// {% raw %} bodies returned as text. Throws TemplateError (with position) on malformed input.
std::vector<Token> tokenize(const std::string& source);

}  // namespace ds::tpl

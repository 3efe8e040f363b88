// Whitespace control as transformers configures jinja2: trim_blocks, lstrip_blocks, "-" and "+" markers.
#include <gtest/gtest.h>

#include "render_util.h"

namespace ds::test {
namespace {

const RenderCase kCases[] = {
    // trim_blocks drops the newline after a block tag; lstrip_blocks drops the indentation before it.
    {"TrimAndLstripBlocks", "a\n  {% if true %}\n  b\n  {% endif %}\nc", "{}", "a\n  b\nc"},
    // "+" turns lstrip_blocks (after "{%") and trim_blocks (before "%}") off for one tag.
    {"PlusDisablesTrimAndLstrip", "a\n  {%+ if true %}\n  b\n  {% endif +%}\nc", "{}", "a\n    b\n\nc"},
    // Variable tags are never lstripped or trimmed; comments are.
    {"VariablesAreNotStripped", "a\n  {{ 1 }}\n  {# c #}\n  x {% if true %}y{% endif %}\n", "{}", "a\n  1\n  x y"},
    {"LoopBodyLines", "  {% for i in xs %}\n    {{ i }}\n  {% endfor %}\n", R"({"xs": [1, 2]})", "    1\n    2\n"},
    {"MinusStripsAllWhitespace", "x   {%- if true -%}   y   {%- endif -%}   z", "{}", "xyz"},
    {"MinusOnVariables", "x   {{- 1 -}}   y  {{ 2 -}}\n\n z", "{}", "x1y  2z"},
    {"MinusOnComments", " {#- comment -#} a {# c2 #}\nb\n{# c3 +#}\nc", "{}", "a b\n\nc"},
    {"RawKeepsContent", "{% raw %}{{ not }} {% raw %}{% endraw %}|{%- raw -%}  x  {%- endraw -%}  |", "{}", "{{ not }} {% raw %}|x|"},
    // Newlines are normalized to \n and one trailing newline of the source is dropped.
    {"NewlineNormalization", "a\r\nb\r\n{% if true %}\r\nc\r\n{% endif %}\r\n", "{}", "a\nb\nc\n"},
    {"SingleTrailingNewlineDropped", "trailing2\n\n", "{}", "trailing2\n"},
    // lstrip only applies when the tag starts the line (after a trimmed newline counts too).
    {"LstripOnlyAtLineStart", "   {% if true %}x{% endif %}   \n   {{ 'y' }}", "{}", "x   \n   y"},
    {"TextBeforeTagIsKept", "a{{ 1 }}  {% if true %}b{% endif %}", "{}", "a1  b"},
    {"MinusAfterTrimmedNewline", "{% if true %}\n  {%- if true %} in{% endif %}\n{% endif %}", "{}", " in"},
    {"MinusTrimAtStartOfLine", "line1\n  {%- if true %}\n  X\n  {%- endif %}\nline2", "{}", "line1  Xline2"},
    {"BracesInsideExpressions", "<{{ '}}' }}>{{ {'a': {'b': 1}} }}{{ \"{%\" }}", "{}", "<}}>{'a': {'b': 1}}{%"},
    {"MacroBodyWhitespace", "{% macro m(x) %}\n  [{{ x }}]\n{% endmacro %}\n{{ m(1) }}{{ m(2) }}", "{}", "  [1]\n  [2]\n"},
    {"TabsAreIndentation", "\t {% set a = 1 %}\t\n{{ a }}", "{}", "\t\n1"},
    {"MinusAfterBlockEatsBlankLines", " \t{% if true -%}\n\nA{% endif %}", "{}", "A"},
};

class Whitespace : public ::testing::TestWithParam<RenderCase> {};

TEST_P(Whitespace, MatchesJinja2) {
  const RenderCase& c = GetParam();
  EXPECT_EQ(renderOrError(c.tpl, c.ctx), c.expected) << "template: " << c.tpl;
}

INSTANTIATE_TEST_SUITE_P(Rules, Whitespace, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<RenderCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ds::test

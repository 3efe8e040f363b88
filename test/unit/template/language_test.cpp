// Language features of the Jinja2 subset, one case per feature; expectations are Python jinja2's output.
#include <gtest/gtest.h>

#include "render_util.h"

namespace ds::test {
namespace {

// Shared context; a case with an empty context string uses it.
const char* kDefaultContext = R"({"d": {"a": 1, "b": "x", "n": null}, "xs": [1, 2, 3], "s": "Hello World",
  "u": "h\u00e9llo \u2713", "f": 1.5,
  "msgs": [{"role": "user", "content": "hi"},
           {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}]})";

const RenderCase kCases[] = {
    // Python str() of values, as jinja2 prints them.
    {"PrintScalars", R"T({{ none }}|{{ true }}|{{ false }}|{{ 1.0 }}|{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ 1e-5 }}|{{ 0.0001 }}|{{ -0.0 }}|{{ 1/3 }})T", R"C()C",
     R"E(None|True|False|1.0|1e+20|0.30000000000000004|1e-05|0.0001|-0.0|0.3333333333333333)E"},
    {"PrintContainers", R"T({{ d }}|{{ xs }}|{{ [1, 'a', none, true, (1,), (1, 2), ()] }}|{{ ["it's", 'say "hi"', 'nl\n'] }})T", R"C()C",
     R"E({'a': 1, 'b': 'x', 'n': None}|[1, 2, 3]|[1, 'a', None, True, (1,), (1, 2), ()]|["it's", 'say "hi"', 'nl\n'])E"},
    {"Arithmetic", R"T({{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 4 / 2 }} {{ 7.5 // 2 }} {{ 1 + 2 * 3 - 4 / 2 }})T", R"C()C",
     R"E(3.5 3 -4 2 -2 1024 0.5 2.0 3.0 5.0)E"},
    {"UnaryAndPower", R"T({{ -(xs|length) }} {{ - 2 ** 2 }} {{ (-2) ** 2 }} {{ 2 ** 3 ** 2 }} {{ +3 }})T", R"C()C", R"E(-3 4 4 64 3)E"},
    {"ConcatAndRepeat", R"T({{ 'a' ~ 1 ~ none ~ true }}|{{ 'a' ~ (1 + 2) }}|{{ 3 * 'ab' }}|{{ [1] * 2 }}|{{ [1, 2] + [3] }}|{{ 'x' + 'y' }})T", R"C()C",
     R"E(a1NoneTrue|a3|ababab|[1, 1]|[1, 2, 3]|xy)E"},
    {"Comparisons", R"T({{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' < 'b' }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 5 }}{{ [1, 2] == [1, 2] }}{{ [1] == (1,) }}{{ none == none }}{{ 1 != 2 }}{{ 2 >= 2 }})T", R"C()C",
     R"E(TrueTrueTrueTrueFalseTrueFalseTrueTrueTrue)E"},
    {"BooleanOperators", R"T({{ 1 and 2 }}|{{ 0 and 2 }}|{{ 0 or 'x' }}|{{ '' or [] }}|{{ not 0 }}|{{ not xs }}|{{ not 1 == 2 }})T", R"C()C",
     R"E(2|0|x|[]|True|False|True)E"},
    {"Membership", R"T({{ 'a' in 'cat' }}{{ 2 in xs }}{{ 'a' in d }}{{ 5 not in xs }}{{ 'z' not in d }}{{ 'x' in missing }})T", R"C()C",
     R"E(TrueTrueTrueTrueTrueFalse)E"},
    {"Ternary", R"T([{{ 'x' if false }}]{{ 'x' if true else 'y' }}{{ 'a' if false else 'b' if true else 'c' }})T", R"C()C", R"E([]xb)E"},
    {"Literals", R"T({{ {'a': 1, 'b': [1, 2]} }}{{ {'a': 1}['a'] }}{{ [1, 2, 3][1] }}{{ 1_000 + 0x10 + 0o10 + 0b11 }} {{ 1.5e3 }} {{ 'a' 'b' }})T", R"C()C",
     R"E({'a': 1, 'b': [1, 2]}121027 1500.0 ab)E"},
    {"StringEscapes", R"T({{ '\u00e9\x41\101\t|' }}{{ "q\"q" }})T", R"C()C", "\xc3\xa9" "AA\t|q\"q"},
    {"SubscriptsAndSlices", R"T({{ xs[::-1] }}{{ u[1] }}{{ 'abc'[-1] }}{{ s[1:4] }}{{ s[::2] }}{{ xs[1:] }}{{ xs[:-1] }}{{ u[::-1] }}{{ xs[5:] }}{{ xs.0 }})T", R"C()C",
     "[3, 2, 1]\xc3\xa9" "cellHloWrd[2, 3][1, 2]\xe2\x9c\x93 oll\xc3\xa9h[]1"},
    {"SlicesWithExtremeSteps", R"T({{ xs[2::9223372036854775807] }}{{ xs[1::-9223372036854775807] }}{{ s[-100:100:5] }})T", R"C()C", R"E([3][2]H d)E"},
    {"AttributeFallsBackToKeys", R"T({{ msgs.0.role }} {{ msgs[1].tool_calls[0].function.name }} {{ msgs[1]['tool_calls'][0]['function']['arguments'] }} {{ d['a'] }}{{ d["b"] }})T", R"C()C",
     R"E(user f {'x': 1} 1x)E"},
    {"MissingLookupsAreUndefined", R"T([{{ d.missing }}|{{ d.a.b }}|{{ none.x }}|{{ xs[10] }}|{{ xs['a'] }}|{{ s.foo }}|{{ d.missing is defined }}])T", R"C()C",
     R"E([||||||False])E"},
    {"UndefinedVariable", R"T([{{ foo }}|{{ foo is defined }}|{{ foo is undefined }}|{{ foo|length }}|{{ foo ~ 'x' }}|{{ foo|default('dflt') }}|{% for x in foo %}x{% endfor %}|{{ not foo }}])T", R"C()C",
     R"E([|False|True|0|x|dflt||True])E"},
    {"IfElifElse", R"T({% if 1 %}a{% elif 2 %}b{% else %}c{% endif %}{% if 0 %}a{% elif 2 %}b{% else %}c{% endif %}{% if 0 %}a{% elif 0 %}b{% else %}c{% endif %})T", R"C()C",
     R"E(abc)E"},
    {"ForLoopVariables", R"T({% for a in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}|{% endfor %})T", R"C()C",
     R"E(10TrueFalse332|21FalseFalse321|32FalseTrue310|)E"},
    {"ForElse", R"T({% for a in xs %}{{ a }}{% else %}E{% endfor %}{% for a in [] %}{% else %}E{% endfor %})T", R"C()C", R"E(123E)E"},
    {"ForFilter", R"T({% for a in xs if a > 1 %}{{ a }}{{ loop.index }}{{ loop.length }}{{ loop.last }};{% endfor %}{% for a in xs if a > 5 %}{% else %}none{% endfor %})T", R"C()C",
     R"E(212False;322True;none)E"},
    {"ForUnpacking", R"T({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for (a, b) in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %})T", R"C()C",
     R"E(a=1;b=x;n=None;37)E"},
    {"ForOverDictAndString", R"T({% for k in d %}{{ k }};{% endfor %}{% for c in u %}[{{ c }}]{% endfor %})T", R"C()C",
     "a;b;n;[h][\xc3\xa9][l][l][o][ ][\xe2\x9c\x93]"},
    {"BreakContinue", R"T({% for a in xs %}{% if a == 2 %}{% continue %}{% endif %}{{ a }}{% endfor %}|{% for a in xs %}{% if a == 2 %}{% break %}{% endif %}{{ a }}{% endfor %})T", R"C()C",
     R"E(13|1)E"},
    {"LoopCycleAndNeighbours", R"T({% for a in xs %}{{ loop.cycle('odd', 'even') }}{{ loop.previtem }}{{ loop.nextitem }},{% endfor %})T", R"C()C",
     R"E(odd2,even13,odd2,)E"},
    {"LoopScopeDoesNotLeak", R"T({% set x = 1 %}{% for i in xs %}{% set x = i %}{{ x }}{% endfor %}{{ x }}{% for i in xs %}{% if loop.first %}{% set y = 5 %}{% endif %}{{ y }},{% endfor %})T", R"C()C",
     R"E(12315,,,)E"},
    {"SetAndTupleSet", R"T({% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}{% set xs = xs[1:] %}{{ xs }})T", R"C()C", R"E(12(1, 2)[2, 3])E"},
    {"BlockSet", R"T({% set x %}hello {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }})T", R"C()C", R"E([hello 2]ABC)E"},
    {"Namespace", R"T({% set ns = namespace(a=1, b='x') %}{% for i in xs %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}[{{ ns.c }}])T", R"C()C", R"E(7x[])E"},
    {"Macro", R"T({% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet(name='Z') }})T", R"C()C",
     R"E(Hi Bob! Hi Al? Hi Z!)E"},
    {"RecursiveMacro", R"T({% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }})T", R"C()C", R"E(54321)E"},
    {"FilterBlockAndWith", R"T({% filter upper %}abc {{ 'd' }}{% endfilter %}{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}])T", R"C()C", R"E(ABC D3[])E"},
    {"Tests", R"T({{ none is none }}{{ 1 is none }}{{ 'a' is string }}{{ 1 is string }}{{ d is mapping }}{{ xs is mapping }}{{ xs is iterable }}{{ 1 is iterable }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }})T", R"C()C",
     R"E(TrueFalseTrueFalseTrueFalseTrueFalseTrueTrueTrueTrue)E"},
    {"MoreTests", R"T({{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ xs is sequence }}{{ 1 is not none }}{{ 'abc' is lower }}{{ 1 is eq 1 }}{{ 2 is gt 1 }}{{ true is true }}{{ 1 is true }}{{ 'abc' is upper }})T", R"C()C",
     R"E(TrueTrueTrueTrueTrueTrueTrueTrueTrueFalseFalse)E"},
    {"StringFilters", R"T({{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ s|upper }}|{{ s|lower }}|{{ u|upper }}|{{ s|replace('o', '0') }}|{{ 'hello-world foo_bar'|title }}|{{ 'hELLO'|capitalize }}|{{ 'a b c'|wordcount }})T", R"C()C",
     "x|a|HELLO WORLD|hello world|H\xc3\x89LLO \xe2\x9c\x93|Hell0 W0rld|Hello-World Foo_bar|Hello|3"},
    {"LengthFirstLastJoin", R"T({{ xs|length }}|{{ s|length }}|{{ u|length }}|{{ d|length }}|{{ xs|count }}|{{ xs|first }}|{{ xs|last }}|{{ xs|join(', ') }}|{{ xs|join }}|{{ d|join(',') }})T", R"C()C",
     R"E(3|11|7|3|3|1|3|1, 2, 3|123|a,b,n)E"},
    {"ConversionFilters", R"T({{ 1|string }}|{{ '42'|int }}|{{ 'x'|int }}|{{ 3.9|int }}|{{ '3.5'|int }}|{{ 'ab'|list }}|{{ '2.5'|float }}|{{ d|items|list }}|{{ (1, 2)|list }})T", R"C()C",
     R"E(1|42|0|3|3|['a', 'b']|2.5|[('a', 1), ('b', 'x'), ('n', None)]|[1, 2])E"},
    {"DefaultFilter", R"T({{ foo|default('dflt') }}|{{ ''|default('e', true) }}|{{ none|default('n') }}|{{ d.n|default('n') }}|{{ 0|d('z', boolean=true) }})T", R"C()C",
     R"E(dflt|e|None|None|z)E"},
    {"SelectMapFilters", R"T({{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}|{{ msgs|rejectattr('role', 'equalto', 'user')|map(attribute='role')|list }}|{{ xs|map('string')|join }}|{{ xs|select('odd')|list }}|{{ xs|reject('odd')|list }}|{{ msgs|selectattr('tool_calls', 'defined')|list|length }})T", R"C()C",
     R"E(['hi']|['assistant']|123|[1, 3]|[2]|1)E"},
    {"ListFilters", R"T({{ -3|abs }}{{ xs|sum }}{{ xs|max }}{{ xs|min }}{{ [3, 1, 2]|sort }}{{ [3, 1, 2]|sort(reverse=true) }}{{ ['b', 'A', 'c']|sort }}{{ [1, 2, 1, 'a', 'a']|unique|list }}{{ xs|reverse|list }}{{ 'abc'|reverse }})T", R"C()C",
     R"E(3631[1, 2, 3][3, 2, 1]['A', 'b', 'c'][1, 2, 'a'][3, 2, 1]cba)E"},
    {"NumberAndFormatFilters", R"T({{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 7|round }} {{ 7|round(method='floor') }} {{ "%s is %d"|format('x', 3) }} {{ "%05.1f"|format(3.14159) }} {{ "%s-%s" % (1, 2) }} [{{ 'abc'|center(9) }}])T", R"C()C",
     R"E(2.57 2.0 4.0 7 7.0 x is 3 003.1 1-2 [   abc   ])E"},
    {"IndentEscapeSafe", R"T({{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ '<a href="x">'|e }}|{{ '<b>'|safe }})T", R"C()C",
     "a\n  b\n\n  c|  a\n  b|&lt;a href=&#34;x&#34;&gt;|<b>"},
    {"ToJson", R"T({{ d|tojson }}|{{ u|tojson }}|{{ 'a"b\\c\n'|tojson }}|{{ [1.5, 2, true, none]|tojson }}|{{ {}|tojson }}|{{ d|tojson(sort_keys=true) }}|{{ u|tojson(ensure_ascii=true) }}|{{ d|tojson(separators=(',', ':')) }})T", R"C()C",
     "{\"a\": 1, \"b\": \"x\", \"n\": null}|\"h\xc3\xa9llo \xe2\x9c\x93\"|\"a\\\"b\\\\c\\n\"|[1.5, 2, true, null]|{}|{\"a\": 1, \"b\": \"x\", \"n\": null}|\"h\\u00e9llo \\u2713\"|{\"a\":1,\"b\":\"x\",\"n\":null}"},
    {"ToJsonIndent", R"T({{ msgs[1]|tojson(indent=2) }}|{{ []|tojson(indent=4) }})T", R"C()C",
     "{\n  \"role\": \"assistant\",\n  \"content\": \"yo\",\n  \"tool_calls\": [\n    {\n      \"function\": {\n        \"name\": \"f\",\n        \"arguments\": {\n          \"x\": 1\n        }\n      }\n    }\n  ]\n}|[]"},
    {"ToJsonKeepsContextKeyOrder", R"T({{ tool|tojson }})T", R"C({"tool": {"name": "z", "description": "d", "parameters": {"b": 1, "a": 2}}})C",
     R"E({"name": "z", "description": "d", "parameters": {"b": 1, "a": 2}})E"},
    {"StringMethods", R"T({{ s.split() }}{{ s.split('o') }}{{ s.split('o', 1) }}{{ s.rsplit('o', 1) }}{{ '  a  b '.split() }}{{ 'a,b,,c'.split(',') }}{{ ' a b '.split(None, 1) }})T", R"C()C",
     R"E(['Hello', 'World']['Hell', ' W', 'rld']['Hell', ' World']['Hello W', 'rld']['a', 'b']['a', 'b', '', 'c']['a', 'b '])E"},
    {"StripAndAffixMethods", R"T({{ '  x '.strip() }}|{{ '  x '.lstrip() }}|{{ '  x '.rstrip() }}|{{ 'xyx'.strip('x') }}|{{ s.startswith('He') }}{{ s.endswith('ld') }}{{ s.startswith(('x', 'H')) }}|{{ s.replace('l', 'L', 2) }})T", R"C()C",
     R"E(x|x |  x|y|TrueTrueTrue|HeLLo World)E"},
    {"CaseAndFormatMethods", R"T({{ s.upper() }}{{ s.lower() }}{{ 'hello wORLD'.title() }}{{ 'hello World'.capitalize() }}|{{ '{} and {}'.format(1, 'b') }}|{{ '{0}{0}{name}'.format('x', name='y') }}|{{ s.find('o') }}{{ s.count('l') }}|{{ '-'.join(['a', 'b']) }})T", R"C()C",
     R"E(HELLO WORLDhello worldHello WorldHello world|1 and b|xxy|43|a-b)E"},
    {"DictMethods", R"T({{ d.items()|list }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.get('a') }}{{ d.get('zz') }}{{ d.get('zz', 5) }})T", R"C()C",
     R"E([('a', 1), ('b', 'x'), ('n', None)]['a', 'b', 'n'][1, 'x', None]1None5)E"},
    {"Globals", R"T({{ range(3)|list }}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}{{ dict(a=1, b=2) }}{{ strftime_now('%Y')|length }})T", R"C()C",
     R"E([0, 1, 2][1, 4, 7][5, 3, 1]{'a': 1, 'b': 2}4)E"},
    {"SafeMakesAString", R"T({{ 0|safe is string }}{% if 0|safe %}T{% endif %}{{ 2.5 is even }}{{ 3.0 is odd }})T", R"C()C", R"E(TrueTFalseTrue)E"},
    {"Comments", R"T(a{# hidden {{ x }} #}b{#- trimmed -#}  c)T", R"C()C", R"E(abc)E"},
    {"Raw", R"T({% raw %}{{ not parsed }} {% if %}{% endraw %})T", R"C()C", R"E({{ not parsed }} {% if %})E"},
    // transformers registers {% generation %} (AssistantTracker); without a mask it only renders its body.
    {"GenerationTagRendersBody", R"T({% generation %}x{{ 1 }}{% endgeneration %})T", R"C()C", R"E(x1)E"},
};

class Language : public ::testing::TestWithParam<RenderCase> {};

TEST_P(Language, MatchesJinja2) {
  const RenderCase& c = GetParam();
  std::string ctx = c.ctx[0] ? c.ctx : kDefaultContext;
  EXPECT_EQ(renderOrError(c.tpl, ctx), c.expected) << "template: " << c.tpl;
}

INSTANTIATE_TEST_SUITE_P(Features, Language, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<RenderCase>& info) { return std::string(info.param.name); });

TEST(Language, UnorderedJsonContextStillRenders) {
  auto t = ChatTemplate::parse("{{ messages[0].content }}|{{ add_generation_prompt }}");
  ASSERT_TRUE(t.isOk());
  nlohmann::json ctx = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"add_generation_prompt", true}};
  auto r = t->render(ctx);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r.value(), "hi|True");
}

TEST(Language, TemplateIsReusableAcrossRenders) {
  auto t = ChatTemplate::parse("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ(t->renderJson(R"({"messages": [1, 2]})").value(), "2");
  EXPECT_EQ(t->renderJson(R"({"messages": [1, 2, 3]})").value(), "3");
}

}  // namespace
}  // namespace ds::test

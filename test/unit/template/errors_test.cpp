// Errors name the template line and column; hostile templates hit limits instead of exhausting memory.
#include <gtest/gtest.h>

#include "render_util.h"

namespace ds::test {
namespace {

struct ErrorCase {
  const char* name;
  const char* tpl;
  const char* prefix;   // "chat_template:LINE:COL:" the message must start with
  const char* message;  // text the message must contain
};

const ErrorCase kParseErrors[] = {
    {"UnclosedIf", "a\n{% if x %}\nb", "chat_template:2:4:", "unclosed 'if' block"},
    {"UnclosedFor", "{% for x in xs %}{{ x }}", "chat_template:1:4:", "looking for 'endfor'"},
    {"UnknownTag", "ok\n\n{% include 'other.jinja' %}", "chat_template:3:4:", "unknown tag 'include'"},
    {"StrayEndTag", "{% endfor %}", "chat_template:1:4:", "unexpected 'endfor': no block is open"},
    {"WrongEndTag", "{% for x in xs %}\n{% endif %}", "chat_template:2:4:", "innermost open block is 'for' from line 1"},
    {"UnknownFilter", "{{ 'x' }}\n{{ x | frobnicate }}", "chat_template:2:8:", "no filter named 'frobnicate'"},
    {"UnknownTest", "{{ x is frobnicated }}", "chat_template:1:9:", "no test named 'frobnicated'"},
    {"MissingOperand", "{{ 1 + }}", "chat_template:1:8:", "unexpected end of print statement"},
    {"EmptyFor", "a{{ 1 }}{% for %}", "chat_template:1:16:", "expected a loop variable name"},
    {"UnbalancedParen", "{{ (1 }}", "chat_template:1:7:", "unexpected '}', expected ')'"},
    {"MismatchedBracket", "{{ (1] }}", "chat_template:1:6:", "unexpected ']', expected ')'"},
    {"UnterminatedString", "\n  {{ 'abc }}", "chat_template:2:6:", "unterminated string literal"},
    {"UnclosedComment", "{# never closed", "chat_template:1:1:", "missing end of comment tag"},
    {"UnclosedVariable", "{{ x", "chat_template:1:1:", "missing '}}'"},
    {"BadCharacter", "{{ a ! b }}", "chat_template:1:6:", "unexpected char '!'"},
    {"SliceInTupleSubscript", "{{ xs[::, 1] }}", "chat_template:1:6:", "a slice cannot be combined"},  // fuzzer find
    {"BreakOutsideLoop", "{% break %}", "chat_template:1:4:", "'break' outside of a loop"},
};

const ErrorCase kRenderErrors[] = {
    {"RaiseException", "{% if messages|length > 1 %}\n  {{ raise_exception('Only one message is supported!') }}\n{% endif %}",
     "chat_template:2:", "Only one message is supported!"},
    {"UndefinedAttributeChain", "\n{{ missing.attr }}", "chat_template:2:", "'missing' is undefined"},
    {"MissingKeyChain", "{{ messages[0].nope.deeper }}", "chat_template:1:", "'dict object' has no attribute 'nope'"},
    {"TypeErrorConcat", "{{ 'a' + 1 }}", "chat_template:1:", "can only concatenate str (not \"int\") to str"},
    {"DivisionByZero", "{{ 1 // 0 }}", "chat_template:1:", "integer division or modulo by zero"},
    {"ImmutableList", "{{ messages.append(1) }}", "chat_template:1:", "access to attribute 'append' of 'list' object is unsafe"},
    {"SliceOfNumber", "{% set n = 5 %}{{ n[1:] }}", "chat_template:1:", "'int' object is not subscriptable"},
    {"IntOfUndefined", "{{ messages[0].missing|int }}", "chat_template:1:", "'dict object' has no attribute 'missing'"},
    {"NotIterable", "{% for x in 5 %}{% endfor %}", "chat_template:1:", "'int' object is not iterable"},
    {"HugeRange", "{% for i in range(10**9) %}x{% endfor %}", "chat_template:1:", "Range too big"},
    {"LoopIterationCap", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "chat_template:1:", "loop iterations"},
    {"WorkCap", "{% set big = range(100000)|list %}{% for i in range(1000) %}{{ big|join|length > 0 }}{% endfor %}",
     "chat_template:1:", "items processed"},
    {"OutputCap", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "chat_template:1:", "output larger than the limit"},
    {"StringCap", "{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
     "chat_template:1:", "string larger than the limit"},
    {"RepeatCap", "{{ 'x' * 10**12 }}", "chat_template:1:", "string larger than the limit"},
    {"HugeFormatWidth", "{{ '%99999999999d' % 1 }}{{ '%999999d'|format(1) }}", "chat_template:1:", "format field wider than"},
    {"IntegerOverflow", "{{ 10 ** 100 }}", "chat_template:1:", "integer overflow"},
    {"InfiniteRecursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "chat_template:1:", "deeper than"},
    {"SelfContainingNamespace", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "chat_template:1:", "nested deeper than"},
    {"DeepListNesting", "{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}",
     "chat_template:1:", "value nested deeper than"},
    {"TojsonUndefined", "{{ nothing|tojson }}", "chat_template:1:", "not JSON serializable"},
};

class ParseErrors : public ::testing::TestWithParam<ErrorCase> {};
class RenderErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParseErrors, NameLineAndReason) {
  const ErrorCase& c = GetParam();
  auto t = ChatTemplate::parse(c.tpl);
  ASSERT_FALSE(t.isOk()) << c.tpl;
  EXPECT_EQ(t.status().code(), DS_INVALID_ARGUMENT);
  const std::string& m = t.status().message();
  EXPECT_EQ(m.rfind(c.prefix, 0), 0u) << m;
  EXPECT_NE(m.find(c.message), std::string::npos) << m;
}

TEST_P(RenderErrors, NameLineAndReason) {
  const ErrorCase& c = GetParam();
  auto t = ChatTemplate::parse(c.tpl);
  ASSERT_TRUE(t.isOk()) << t.status().message();
  auto r = t->renderJson(R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})");
  ASSERT_FALSE(r.isOk()) << "rendered: " << r.value().substr(0, 200);
  EXPECT_EQ(r.status().code(), DS_INVALID_ARGUMENT);
  const std::string& m = r.status().message();
  EXPECT_EQ(m.rfind(c.prefix, 0), 0u) << m;
  EXPECT_NE(m.find(c.message), std::string::npos) << m;
}

auto caseName = [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); };
INSTANTIATE_TEST_SUITE_P(Templates, ParseErrors, ::testing::ValuesIn(kParseErrors), caseName);
INSTANTIATE_TEST_SUITE_P(Templates, RenderErrors, ::testing::ValuesIn(kRenderErrors), caseName);

TEST(Errors, DeepNestingIsRejectedNotCrashing) {
  for (const char* open_close : {"()", "[]"}) {
    std::string deep = "{{ " + std::string(5000, open_close[0]) + "1" + std::string(5000, open_close[1]) + " }}";
    auto t = ChatTemplate::parse(deep);
    ASSERT_FALSE(t.isOk());
    EXPECT_NE(t.status().message().find("nested deeper than"), std::string::npos) << t.status().message();
  }
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  auto t = ChatTemplate::parse(blocks);
  ASSERT_FALSE(t.isOk());
  EXPECT_EQ(t.status().message().rfind("chat_template:1:", 0), 0u) << t.status().message();
  EXPECT_NE(t.status().message().find("nested deeper than"), std::string::npos) << t.status().message();
  std::string chain = "{{ 1" ;
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  auto c = ChatTemplate::parse(chain + " }}");
  ASSERT_FALSE(c.isOk());
  EXPECT_NE(c.status().message().find("nested deeper than"), std::string::npos) << c.status().message();
}

// A 50000-link chain through mutated namespaces must be torn down without deep recursion.
TEST(Errors, LongNamespaceChainIsFreedSafely) {
  auto t = ChatTemplate::parse(
      "{% set ns = namespace(cur=none) %}{% for i in range(50000) %}{% set n2 = namespace() %}"
      "{% set n2.p = ns.cur %}{% set ns.cur = n2 %}{% endfor %}done");
  ASSERT_TRUE(t.isOk());
  auto r = t->renderJson("{}");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r.value(), "done");
}

// jinja2 defers unknown filters/tests inside {% if %} blocks and inline ifs to render time.
TEST(Errors, UnknownFilterInsideIfFailsOnlyWhenEvaluated) {
  auto untaken = ChatTemplate::parse("{% if false %}{{ x | nofilter }}{% endif %}ok{{ 1 if true else y is notatest }}");
  ASSERT_TRUE(untaken.isOk()) << untaken.status().message();
  EXPECT_EQ(untaken->renderJson("{}").value(), "ok1");
  auto taken = ChatTemplate::parse("{% if true %}\n{{ x | nofilter }}{% endif %}");
  ASSERT_TRUE(taken.isOk()) << taken.status().message();
  auto r = taken->renderJson("{}");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message().rfind("chat_template:2:8:", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find("no filter named 'nofilter'"), std::string::npos) << r.status().message();
  // Inside a loop the check is at parse time again, as in jinja2.
  EXPECT_FALSE(ChatTemplate::parse("{% if false %}{% for i in x %}{{ i | nofilter }}{% endfor %}{% endif %}").isOk());
}

TEST(Errors, BadContext) {
  auto t = ChatTemplate::parse("{{ x }}");
  ASSERT_TRUE(t.isOk());
  auto not_json = t->renderJson("{not json");
  ASSERT_FALSE(not_json.isOk());
  EXPECT_NE(not_json.status().message().find("not valid JSON"), std::string::npos);
  auto not_object = t->renderJson("[1, 2]");
  ASSERT_FALSE(not_object.isOk());
  EXPECT_NE(not_object.status().message().find("must be a JSON object"), std::string::npos);
}

TEST(Errors, UnparsedTemplate) {
  ChatTemplate t;
  auto r = t.renderJson("{}");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("not parsed"), std::string::npos);
}

// Fuzzer find: repeating an empty sequence 10**12 times must not loop 10**12 times.
TEST(Errors, RepeatingEmptySequenceIsInstant) {
  auto t = ChatTemplate::parse("[{{ (12) ** 2 ** 6 * nothing|list * 4 }}{{ '' * 10**12 }}]");
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ(t->renderJson("{}").value(), "[[]]");
}

TEST(Errors, RenderTimeIsBounded) {
  ChatTemplateLimits limits;
  limits.max_loop_iterations = 1LL << 40;
  limits.max_work_items = 1LL << 40;
  limits.max_render_seconds = 0.05;
  auto t = ChatTemplate::parse(
      "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}", limits);
  ASSERT_TRUE(t.isOk());
  auto r = t->renderJson("{}");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("time limit"), std::string::npos) << r.status().message();
}

TEST(Errors, LimitsAreConfigurable) {
  ChatTemplateLimits limits;
  limits.max_output_bytes = 10;
  auto t = ChatTemplate::parse("{{ 'x' * 11 }}", limits);
  ASSERT_TRUE(t.isOk());
  EXPECT_FALSE(t->renderJson("{}").isOk());
  auto ok = ChatTemplate::parse("{{ 'x' * 10 }}", limits);
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->renderJson("{}").value(), "xxxxxxxxxx");
}

// Issue #10: per-string and per-list caps alone let ['x'*30000000]*1000 reach 21.8 GB (each list
// item is a copy). The render's values now share one memory budget.
TEST(Errors, TotalMemoryOfARenderIsBounded) {
  for (const char* tpl : {"{% set a = ['x' * 30000000] * 1000 %}{{ a|length }}",
                          "{% set ns = namespace(l=[]) %}{% for i in range(100) %}"
                          "{% set ns.l = ns.l + ['y' * 20000000] %}{% endfor %}{{ ns.l|length }}",
                          "{{ ((['z' * 30000000] * 20) | join('')) | length }}"}) {
    auto t = ChatTemplate::parse(tpl);
    ASSERT_TRUE(t.isOk()) << t.status().message();
    auto r = t->renderJson("{}");
    ASSERT_FALSE(r.isOk()) << tpl;
    EXPECT_NE(r.status().message().find("memory budget of 268435456 bytes"), std::string::npos)
        << r.status().message();
  }
  // The budget counts values alive at once, not every byte ever built: a loop that replaces a
  // big value many times stays within it.
  auto ok = ChatTemplate::parse(
      "{% for i in range(40) %}{% set s = 'x' * 20000000 %}{% endfor %}{{ ('x' * 1000)|length }}");
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->renderJson("{}").value(), "1000");
  // Configurable, with the limit named.
  ChatTemplateLimits small;
  small.max_render_bytes = 1000;
  auto t = ChatTemplate::parse("{% set a = ['x' * 600, 'y' * 600] %}{{ a|length }}", small);
  ASSERT_TRUE(t.isOk());
  auto r = t->renderJson("{}");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("max_render_bytes"), std::string::npos) << r.status().message();
  // Budgets of later renders are not affected by an earlier failure.
  EXPECT_EQ(ok->renderJson("{}").value(), "1000");
}

}  // namespace
}  // namespace ds::test

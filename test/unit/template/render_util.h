// Shared helpers for the chat-template tests: render-or-error and a table row type.
#pragma once

#include <string>

#include "template/chat_template.h"

namespace ds::test {

// One table-driven case: template, context (JSON text) and the output Python jinja2 produces
// (configured as transformers does).
struct RenderCase {
  const char* name;
  const char* tpl;
  const char* ctx;
  const char* expected;
};

// Renders and returns the output, or "ERROR: <status message>" so mismatches print readably.
inline std::string renderOrError(const std::string& tpl, const std::string& ctx) {
  auto t = ChatTemplate::parse(tpl);
  if (!t.isOk()) return "ERROR: " + t.status().message();
  auto r = t->renderJson(ctx);
  if (!r.isOk()) return "ERROR: " + r.status().message();
  return r.value();
}

}  // namespace ds::test

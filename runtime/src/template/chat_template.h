// Public API: parse a Hugging Face chat_template (Jinja2) once, render it for OpenAI-style requests.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace ds {

namespace tpl {
struct TemplateAst;
}

// Caps applied to every render; the defaults fit real prompts with a wide margin.
struct ChatTemplateLimits {
  size_t max_output_bytes = 32u << 20;    // rendered text and any single string value
  size_t max_render_bytes = 256u << 20;   // memory of all template values alive at once
  size_t max_list_items = 1u << 20;       // any list the template builds
  int64_t max_loop_iterations = 1000000;  // summed over all {% for %} loops of one render
  int64_t max_work_items = 10000000;      // loop iterations plus items visited by filters/methods
  double max_render_seconds = 10.0;       // wall-clock budget of one render
  int max_eval_depth = 300;               // nested evaluation, macro recursion included
  int max_macro_depth = 32;
};

// A compiled chat template. Rendering matches Python jinja2 as transformers configures it:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) + loopcontrols, with the
// globals raise_exception and strftime_now and transformers' tojson filter. See docs/chat_template.md.
class ChatTemplate {
 public:
  // Errors: INVALID_ARGUMENT "chat_template:LINE:COL: message" (syntax error, unknown tag/filter/test).
  static StatusOr<ChatTemplate> parse(std::string_view source, ChatTemplateLimits limits = {});

  // `context` holds the template variables: {"messages": [...], "add_generation_prompt": true,
  // "bos_token": "...", "eos_token": "...", "tools": [...], ...}. ordered_json keeps key order for
  // tojson exactly as the request had it; a plain nlohmann::json renders its keys sorted.
  // Errors: INVALID_ARGUMENT "chat_template:LINE:COL: message" for runtime errors, including the
  // template's own raise_exception(message) and exceeded limits.
  StatusOr<std::string> render(const nlohmann::ordered_json& context) const;
  StatusOr<std::string> render(const nlohmann::json& context) const;
  // Same, from JSON text (parsed with key order preserved).
  StatusOr<std::string> renderJson(std::string_view context_json) const;

  ChatTemplate() = default;

 private:
  std::shared_ptr<const tpl::TemplateAst> ast_;
  ChatTemplateLimits limits_;
};

}  // namespace ds

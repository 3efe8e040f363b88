// libFuzzer entry: any bytes as a chat template, rendered against a fixed OpenAI-style context.
// Run: template_fuzz -dict=test/fuzz/template/template.dict test/fuzz/template/corpus
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "template/chat_template.h"

namespace {

const char* kContext = R"({
  "messages": [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Hi \u00e9 \u2713 <think>x</think>"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
    {"role": "tool", "content": "{\"temp\": 18.5}"},
    {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nWarm."}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
  "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
  "n": 3, "f": -1.5e300, "big": 9223372036854775807, "empty": [], "obj": {}
})";

// Smaller caps than production so every input finishes in milliseconds.
ds::ChatTemplateLimits fuzzLimits() {
  ds::ChatTemplateLimits l;
  l.max_output_bytes = 1 << 20;
  l.max_list_items = 1 << 16;
  l.max_loop_iterations = 20000;
  l.max_work_items = 1000000;
  l.max_render_seconds = 1.0;
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(kContext);
  auto tmpl = ds::ChatTemplate::parse(std::string_view(reinterpret_cast<const char*>(data), size), fuzzLimits());
  if (!tmpl.isOk()) return 0;
  auto out = tmpl->render(context);
  (void)out;
  return 0;
}

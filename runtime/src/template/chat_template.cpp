// ChatTemplate: the public, exception-free face of the template interpreter, plus JSON -> Value conversion.
#include "template/chat_template.h"

#include "jinja/eval.h"
#include "jinja/parser.h"

namespace ds {
namespace {

std::string positioned(const tpl::TemplateError& e) {
  if (e.line <= 0) return "chat_template: " + e.message;
  return "chat_template:" + std::to_string(e.line) + ":" + std::to_string(e.col) + ": " + e.message;
}

template <typename Json>
tpl::Value fromJson(const Json& j, int depth) {
  if (depth > tpl::kMaxValueDepth) tpl::fail("context JSON nested deeper than " + std::to_string(tpl::kMaxValueDepth) + " levels");
  switch (j.type()) {
    case nlohmann::json::value_t::null: return tpl::Value::none();
    case nlohmann::json::value_t::boolean: return tpl::Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return tpl::Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return tpl::Value(static_cast<double>(u));
      return tpl::Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return tpl::Value(j.template get<double>());
    case nlohmann::json::value_t::string: return tpl::Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      tpl::List xs;
      xs.reserve(j.size());
      for (const auto& item : j) xs.push_back(fromJson(item, depth + 1));
      return tpl::Value::list(std::move(xs));
    }
    case nlohmann::json::value_t::object: {
      auto d = std::make_shared<tpl::Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) d->set(it.key(), fromJson(it.value(), depth + 1));
      return tpl::Value::dict(std::move(d));
    }
    default: tpl::fail("unsupported JSON value in context (binary or discarded)");
  }
}

tpl::Limits toLimits(const ChatTemplateLimits& l) {
  tpl::Limits out;
  out.max_output_bytes = l.max_output_bytes;
  out.max_render_bytes = l.max_render_bytes;
  out.max_list_items = l.max_list_items;
  out.max_loop_iterations = l.max_loop_iterations;
  out.max_work_items = l.max_work_items;
  out.max_render_seconds = l.max_render_seconds;
  out.max_eval_depth = l.max_eval_depth;
  out.max_macro_depth = l.max_macro_depth;
  return out;
}

template <typename Json>
StatusOr<std::string> renderWith(const std::shared_ptr<const tpl::TemplateAst>& ast, const ChatTemplateLimits& limits,
                                 const Json& context) {
  if (!ast) return invalidArgument("chat_template: render() on a template that was not parsed");
  try {
    if (!context.is_object()) return invalidArgument("chat_template: the render context must be a JSON object");
    tpl::Value ctx = fromJson(context, 0);
    tpl::Limits l = toLimits(limits);
    tpl::Evaluator evaluator(l, std::make_shared<tpl::Dict>(ctx.mapping()));
    return evaluator.render(*ast);
  } catch (const tpl::TemplateError& e) {
    return invalidArgument(positioned(e));
  } catch (const std::bad_alloc&) {
    return invalidArgument("chat_template: out of memory while rendering");
  } catch (const std::exception& e) {
    return internalError(std::string("chat_template: ") + e.what());
  }
}

}  // namespace

StatusOr<ChatTemplate> ChatTemplate::parse(std::string_view source, ChatTemplateLimits limits) {
  try {
    ChatTemplate t;
    t.ast_ = std::make_shared<const tpl::TemplateAst>(tpl::parseTemplate(std::string(source)));
    t.limits_ = limits;
    return t;
  } catch (const tpl::TemplateError& e) {
    return invalidArgument(positioned(e));
  } catch (const std::exception& e) {
    return internalError(std::string("chat_template: ") + e.what());
  }
}

StatusOr<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return renderWith(ast_, limits_, context);
}

StatusOr<std::string> ChatTemplate::render(const nlohmann::json& context) const {
  return renderWith(ast_, limits_, context);
}

StatusOr<std::string> ChatTemplate::renderJson(std::string_view context_json) const {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(context_json, nullptr, false);
  if (j.is_discarded()) return invalidArgument("chat_template: render context is not valid JSON");
  return render(j);
}

}  // namespace ds

// Small checked accessors over nlohmann::json that report the offending field instead of throwing.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace ds::tok {

using Json = nlohmann::json;

// Deepest nesting of Sequence normalizers / pre-tokenizers / decoders accepted from a
// tokenizer.json (real ones nest 2 deep): the builders recurse, so a hostile file must not be
// able to exhaust the stack.
constexpr int kMaxTokenizerNesting = 32;

// `obj[key]` as a string; error naming `where.key` when absent or not a string.
inline StatusOr<std::string> jsonString(const Json& obj, const char* key, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string())
    return invalidArgument(std::string(where) + "." + key + ": expected a string");
  return it->get<std::string>();
}

// Optional bool with a default; error when present with another type.
inline StatusOr<bool> jsonBool(const Json& obj, const char* key, bool dflt, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_boolean())
    return invalidArgument(std::string(where) + "." + key + ": expected a boolean");
  return it->get<bool>();
}

// The "type" field of a component object.
inline StatusOr<std::string> jsonType(const Json& obj, std::string_view where) {
  if (!obj.is_object()) return invalidArgument(std::string(where) + ": expected an object");
  return jsonString(obj, "type", where);
}

}  // namespace ds::tok

#define DS_TOK_ASSIGN_OR_RETURN_IMPL(var, decl, expr) \
  auto var = (expr);                              \
  if (!var.isOk()) return var.status();           \
  decl = std::move(var.value())
#define DS_TOK_CONCAT2(a, b) a##b
#define DS_TOK_CONCAT(a, b) DS_TOK_CONCAT2(a, b)
// DS_TOK_ASSIGN_OR_RETURN(auto x, f()); returns f()'s status on error.
#define DS_TOK_ASSIGN_OR_RETURN(decl, expr) \
  DS_TOK_ASSIGN_OR_RETURN_IMPL(DS_TOK_CONCAT(ds_tok_or_, __LINE__), decl, expr)

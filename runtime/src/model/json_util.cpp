// Strict JSON parsing (duplicate-key detection through nlohmann's parser callback) and small file helpers.
#include "model/json_util.h"

#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace ds {

Status parseJsonStrict(std::string_view text, std::string_view source, nlohmann::json* out) {
  using nlohmann::json;
  // One key set per open object; nlohmann itself silently keeps the last duplicate.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  json::parser_callback_t callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    json value = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
    if (!duplicate.empty()) {
      return dataLoss(std::string(source) + ": duplicate JSON key '" + duplicate + "'");
    }
    *out = std::move(value);
    return Status::ok();
  } catch (const json::exception& e) {
    return dataLoss(std::string(source) + ": malformed JSON: " + e.what());
  }
}

const char* jsonTypeName(const nlohmann::json& value) { return value.type_name(); }

Status readTextFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound(path + ": cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return dataLoss(path + ": read error");
  *out = buffer.str();
  return Status::ok();
}

}  // namespace ds

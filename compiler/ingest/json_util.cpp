// Strict JSON parsing (duplicate-key detection through nlohmann's parser callback) and small file helpers.
#include "ingest/json_util.h"

#include "ingest/input_files.h"

#include <set>
#include <vector>

namespace ds {

namespace {

// A DOM-less SAX pass that only tracks the keys of each open object. nlohmann's callback parser
// re-scans the parent object on every nested object end, which is quadratic in the number of
// tensors (a DeepSeek-V3 header has 90k of them: minutes instead of milliseconds), so duplicate
// detection runs here and the DOM is built by the plain parser afterwards.
struct DuplicateKeyFinder : nlohmann::json_sax<nlohmann::json> {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  std::string error;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    open_objects.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    if (!open_objects.empty() && !open_objects.back().insert(k).second && duplicate.empty())
      duplicate = k;
    return true;
  }
  bool end_object() override {
    if (!open_objects.empty()) open_objects.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }
};

}  // namespace

Status parseJsonStrict(std::string_view text, std::string_view source, nlohmann::json* out) {
  using nlohmann::json;
  DuplicateKeyFinder finder;
  bool ok = json::sax_parse(text.begin(), text.end(), &finder, json::input_format_t::json,
                            /*strict=*/true);
  if (!ok) return dataLoss(std::string(source) + ": malformed JSON: " + finder.error);
  if (!finder.duplicate.empty())
    return dataLoss(std::string(source) + ": duplicate JSON key '" + finder.duplicate + "'");
  try {
    *out = json::parse(text.begin(), text.end());
    return Status::ok();
  } catch (const json::exception& e) {
    return dataLoss(std::string(source) + ": malformed JSON: " + e.what());
  }
}

const char* jsonTypeName(const nlohmann::json& value) { return value.type_name(); }

Status readTextFile(const std::string& path, std::string* out) { return readRegularFile(path, out); }

}  // namespace ds

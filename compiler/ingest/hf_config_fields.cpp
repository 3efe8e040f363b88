// ConfigFields: typed getters over a JSON object.
#include "ingest/hf_config_fields.h"

#include <cmath>
#include <limits>

namespace ds {
namespace {

// JSON numbers that are integers (ints, or floats like 4096.0 some exporters write).
bool asInt(const nlohmann::json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(v.get<uint64_t>());
    return true;
  }
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      *out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

std::string shortDump(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace

bool ConfigFields::has(const char* key) const { return raw(key) != nullptr; }

bool ConfigFields::isNull(const char* key) const {
  auto it = object_.find(key);
  return it != object_.end() && it->is_null();
}

const nlohmann::json* ConfigFields::raw(const char* key) const {
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

Status ConfigFields::typeError(const char* key, const char* expected, const nlohmann::json& got) const {
  return invalidArgument(source_ + ": field '" + prefix_ + key + "' must be " + expected + ", got " +
                         got.type_name() + " " + shortDump(got));
}

Status ConfigFields::invalid(const char* key, const std::string& problem) const {
  return invalidArgument(source_ + ": field '" + prefix_ + key + "' " + problem);
}

Status ConfigFields::unsupportedValue(const char* key) const {
  const nlohmann::json* v = raw(key);
  return unsupportedValue(key, v ? (v->is_string() ? v->get<std::string>() : shortDump(*v)) : "null");
}

Status ConfigFields::unsupportedValue(const char* key, const std::string& value) const {
  return unsupported(source_ + ": unsupported: " + prefix_ + key + "=" + value);
}

Status ConfigFields::getInt(const char* key, int64_t* out, std::optional<int64_t> def) const {
  const nlohmann::json* v = raw(key);
  if (!v) {
    if (!def) return invalidArgument(source_ + ": missing required field '" + prefix_ + key + "'");
    *out = *def;
    return Status::ok();
  }
  if (!asInt(*v, out)) return typeError(key, "an integer", *v);
  return Status::ok();
}

Status ConfigFields::getOptionalInt(const char* key, std::optional<int64_t>* out) const {
  const nlohmann::json* v = raw(key);
  if (!v) {
    out->reset();
    return Status::ok();
  }
  int64_t value;
  if (!asInt(*v, &value)) return typeError(key, "an integer or null", *v);
  *out = value;
  return Status::ok();
}

Status ConfigFields::getDouble(const char* key, double* out, std::optional<double> def) const {
  const nlohmann::json* v = raw(key);
  if (!v) {
    if (!def) return invalidArgument(source_ + ": missing required field '" + prefix_ + key + "'");
    *out = *def;
    return Status::ok();
  }
  if (!v->is_number()) return typeError(key, "a number", *v);
  *out = v->get<double>();
  // 1e999 parses as infinity: no field of a model config means anything then.
  if (!std::isfinite(*out)) return invalid(key, "must be a finite number, got " + v->dump());
  return Status::ok();
}

Status ConfigFields::getBool(const char* key, bool* out, std::optional<bool> def) const {
  const nlohmann::json* v = raw(key);
  if (!v) {
    if (!def) return invalidArgument(source_ + ": missing required field '" + prefix_ + key + "'");
    *out = *def;
    return Status::ok();
  }
  if (!v->is_boolean()) return typeError(key, "a boolean", *v);
  *out = v->get<bool>();
  return Status::ok();
}

Status ConfigFields::getString(const char* key, std::string* out, std::optional<std::string> def) const {
  const nlohmann::json* v = raw(key);
  if (!v) {
    if (!def) return invalidArgument(source_ + ": missing required field '" + prefix_ + key + "'");
    *out = *def;
    return Status::ok();
  }
  if (!v->is_string()) return typeError(key, "a string", *v);
  *out = v->get<std::string>();
  return Status::ok();
}

Status ConfigFields::getIntList(const char* key, std::vector<int64_t>* out, std::vector<int64_t> def) const {
  const nlohmann::json* v = raw(key);
  if (!v) {
    *out = std::move(def);
    return Status::ok();
  }
  out->clear();
  int64_t value;
  if (asInt(*v, &value)) {
    out->push_back(value);
    return Status::ok();
  }
  if (!v->is_array()) return typeError(key, "an integer or a list of integers", *v);
  for (const nlohmann::json& e : *v) {
    if (!asInt(e, &value)) return typeError(key, "an integer or a list of integers", *v);
    out->push_back(value);
  }
  return Status::ok();
}

}  // namespace ds

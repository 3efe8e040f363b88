// Typed access to config.json fields with errors that name the field and the file (internal to ds_model).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace ds {

// Reads fields of one JSON object. A JSON null is treated like an absent field, as HF does
// for its "None" defaults.
class ConfigFields {
 public:
  ConfigFields(const nlohmann::json& object, std::string source, std::string prefix = "")
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  // Present and not null.
  bool has(const char* key) const;
  const nlohmann::json* raw(const char* key) const;
  // Present with the value null (differs from absent where HF's default is not None).
  bool isNull(const char* key) const;

  // `def` empty: the field is required.
  Status getInt(const char* key, int64_t* out, std::optional<int64_t> def) const;
  Status getOptionalInt(const char* key, std::optional<int64_t>* out) const;
  Status getDouble(const char* key, double* out, std::optional<double> def) const;
  Status getBool(const char* key, bool* out, std::optional<bool> def) const;
  Status getString(const char* key, std::string* out, std::optional<std::string> def) const;
  // An integer or a list of integers (eos_token_id); absent gives `def`.
  Status getIntList(const char* key, std::vector<int64_t>* out, std::vector<int64_t> def) const;

  // "<source>: unsupported: <prefix><key>=<value>" (UNSUPPORTED).
  Status unsupportedValue(const char* key) const;
  Status unsupportedValue(const char* key, const std::string& value) const;
  // "<source>: field '<prefix><key>' <problem>" (INVALID_ARGUMENT).
  Status invalid(const char* key, const std::string& problem) const;

  const std::string& source() const { return source_; }

 private:
  Status typeError(const char* key, const char* expected, const nlohmann::json& got) const;

  const nlohmann::json& object_;
  std::string source_;
  std::string prefix_;
};

}  // namespace ds

namespace ds {

struct ModelConfig;

// Parts of parseHFConfig that live in their own files.
Status parseDeepseekFields(const ConfigFields& fields, ModelConfig* config);
Status parseQuantizationConfig(const ConfigFields& fields, ModelConfig* config);

}  // namespace ds

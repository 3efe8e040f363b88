// C++ side of ds_status_t: a value type used inside the runtime, converted at the C ABI.
#pragma once

#include <string>
#include <utility>

#include "ds/status.h"

namespace ds {

class Status {
 public:
  Status() = default;
  Status(ds_status_code_t code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return Status(); }

  bool isOk() const { return code_ == DS_OK; }
  explicit operator bool() const { return isOk(); }
  ds_status_code_t code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: message"
  std::string toString() const;
  // Hands the status to a C caller (NULL for OK).
  ds_status_t release() const;

 private:
  ds_status_code_t code_ = DS_OK;
  std::string message_;
};

inline Status invalidArgument(std::string m) { return Status(DS_INVALID_ARGUMENT, std::move(m)); }
inline Status notFound(std::string m) { return Status(DS_NOT_FOUND, std::move(m)); }
inline Status dataLoss(std::string m) { return Status(DS_DATA_LOSS, std::move(m)); }
inline Status unsupported(std::string m) { return Status(DS_UNSUPPORTED, std::move(m)); }
inline Status internalError(std::string m) { return Status(DS_INTERNAL, std::move(m)); }

// A value or an error status.
template <typename T>
class StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  StatusOr(T value) : value_(std::move(value)), has_value_(true) {}  // NOLINT
  bool isOk() const { return has_value_; }
  const Status& status() const { return status_; }
  T& value() & { return value_; }
  const T& value() const& { return value_; }
  T&& value() && { return std::move(value_); }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }
  T& operator*() { return value_; }

 private:
  Status status_;
  T value_{};
  bool has_value_ = false;
};

}  // namespace ds

#define DS_RETURN_IF_ERROR(expr)            \
  do {                                      \
    ::ds::Status ds_status_tmp_ = (expr);   \
    if (!ds_status_tmp_.isOk()) return ds_status_tmp_; \
  } while (0)

// Status implementation and the C ABI accessors for ds_status_t.
#include "base/status.h"

struct ds_status_s {
  ds_status_code_t code;
  std::string message;
};

namespace ds {

std::string Status::toString() const {
  if (isOk()) return "OK";
  return std::string(ds_status_code_name(code_)) + ": " + message_;
}

ds_status_t Status::release() const {
  if (isOk()) return nullptr;
  return new ds_status_s{code_, message_};
}

}  // namespace ds

extern "C" {

ds_status_code_t ds_status_code(ds_status_t status) { return status ? status->code : DS_OK; }
const char* ds_status_message(ds_status_t status) { return status ? status->message.c_str() : ""; }
void ds_status_free(ds_status_t status) { delete status; }

const char* ds_status_code_name(ds_status_code_t code) {
  switch (code) {
    case DS_OK: return "OK";
    case DS_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case DS_NOT_FOUND: return "NOT_FOUND";
    case DS_DATA_LOSS: return "DATA_LOSS";
    case DS_UNSUPPORTED: return "UNSUPPORTED";
    case DS_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case DS_INTERNAL: return "INTERNAL";
    case DS_UNAVAILABLE: return "UNAVAILABLE";
    case DS_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case DS_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
  }
  return "UNKNOWN";
}

const char* ds_runtime_version(void) { return "0.1.0"; }

}  // extern "C"

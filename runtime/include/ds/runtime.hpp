// Header-only C++ wrappers over the C ABI (ds/runtime.h): RAII handles, exceptions never used;
// errors come back as ds::Error values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ds/runtime.h"

namespace ds {

// An owned ds_status_t: empty means success.
class Error {
 public:
  Error() = default;
  explicit Error(ds_status_t s) : status_(s, &ds_status_free) {}
  explicit operator bool() const { return status_ != nullptr; }  // true on error
  ds_status_code_t code() const { return ds_status_code(status_.get()); }
  std::string message() const { return ds_status_message(status_.get()); }

 private:
  std::shared_ptr<ds_status_s> status_;
};

class RuntimeArtifact {
 public:
  static std::pair<RuntimeArtifact, Error> open(const std::string& path) {
    ds_artifact_t a = nullptr;
    Error e(ds_artifact_open(path.c_str(), &a));
    return {RuntimeArtifact(a), e};
  }
  static std::pair<RuntimeArtifact, Error> open(const std::string& path,
                                                const ds_artifact_options_t& options) {
    ds_artifact_t a = nullptr;
    Error e(ds_artifact_open_with_options(path.c_str(), &options, &a));
    return {RuntimeArtifact(a), e};
  }
  ds_artifact_t get() const { return handle_.get(); }
  int64_t vocabSize() const { return ds_artifact_vocab_size(handle_.get()); }

 private:
  explicit RuntimeArtifact(ds_artifact_t a) : handle_(a, &ds_artifact_release) {}
  std::shared_ptr<ds_artifact_s> handle_;
};

class RuntimeEngine {
 public:
  static std::pair<RuntimeEngine, Error> create(const RuntimeArtifact& artifact,
                                                const ds_engine_options_t& options) {
    ds_engine_t e = nullptr;
    Error err(ds_engine_create(artifact.get(), &options, &e));
    return {RuntimeEngine(e, artifact), err};
  }
  static ds_engine_options_t defaultOptions() {
    ds_engine_options_t o;
    ds_engine_options_initialize(&o);
    return o;
  }
  static ds_request_options_t defaultRequest() {
    ds_request_options_t o;
    ds_request_options_initialize(&o);
    return o;
  }
  std::pair<int64_t, Error> submit(const std::vector<int32_t>& prompt,
                                   const ds_request_options_t& options) {
    int64_t id = -1;
    Error e(ds_engine_submit(handle_.get(), prompt.data(), prompt.size(), &options, &id));
    return {id, e};
  }
  // One step; appends its events (at most one per running request, so the buffer always fits).
  Error step(std::vector<ds_token_event_t>* events) {
    size_t count = 0;
    std::vector<ds_token_event_t> buf(ds_engine_num_running(handle_.get()));
    Error e(ds_engine_step(handle_.get(), buf.data(), buf.size(), &count));
    if (!e) events->insert(events->end(), buf.begin(), buf.begin() + count);
    return e;
  }
  bool hasWork() const { return ds_engine_has_work(handle_.get()) != 0; }
  // Cancels a running or waiting request (frees its KV blocks now).
  Error abort(int64_t request) { return Error(ds_engine_abort(handle_.get(), request)); }

 private:
  RuntimeEngine(ds_engine_t e, RuntimeArtifact artifact)
      : artifact_(std::move(artifact)), handle_(e, &ds_engine_release) {}
  RuntimeArtifact artifact_;  // keeps the artifact alive as long as the engine
  std::shared_ptr<ds_engine_s> handle_;
};

}  // namespace ds

// The C ABI over Engine / Artifact: handles own C++ objects; errors become ds_status_t.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>

#include "api/session.h"
#include "artifact/artifact_reader.h"
#include "ds/runtime.h"

struct ds_artifact_s {
  std::unique_ptr<ds::artifact::Artifact> artifact;
  bool allow_native_code = true;  // ds_artifact_options_t: engines of this artifact obey it
};
// Every call on an engine holds its mutex: one engine may be driven from several threads
// (runtime.h); each call sees the engine between whole steps.
struct ds_engine_s {
  std::unique_ptr<ds::Session> session;
  std::vector<ds::TextEvent> events;  // the last step's, whose text the C events point into
  std::mutex mu;
};

namespace {
ds_status_t invalid(const char* what) { return ds::invalidArgument(what).release(); }

// Nothing throws across the C ABI: an allocation failure anywhere below becomes
// DS_OUT_OF_MEMORY, any other exception DS_INTERNAL, each naming the call.
template <typename Fn>
ds_status_t guarded(const char* call, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return ds::Status(DS_OUT_OF_MEMORY, std::string(call) + ": out of memory").release();
  } catch (const std::exception& e) {
    return ds::Status(DS_INTERNAL, std::string(call) + ": " + e.what()).release();
  } catch (...) {
    return ds::Status(DS_INTERNAL, std::string(call) + ": unknown exception").release();
  }
}
}  // namespace

extern "C" {

ds_status_t ds_artifact_open(const char* path, ds_artifact_t* out_artifact) {
  return ds_artifact_open_with_options(path, nullptr, out_artifact);
}

void ds_artifact_options_initialize(ds_artifact_options_t* options) {
  if (options) *options = ds_artifact_options_t{nullptr, 0, 1};
}

ds_status_t ds_artifact_open_with_options(const char* path, const ds_artifact_options_t* options,
                                          ds_artifact_t* out_artifact) {
  return guarded("ds_artifact_open", [&]() -> ds_status_t {
    if (!path || !out_artifact) return invalid("ds_artifact_open: path and out_artifact are required");
    *out_artifact = nullptr;
    ds_artifact_options_t o;
    ds_artifact_options_initialize(&o);
    if (options) o = *options;
    ds::artifact::Artifact::Options open_options;
    if (o.trusted_public_key || o.trusted_public_key_length) {
      auto key = ds::artifact::publicKeyFromBytes(o.trusted_public_key,
                                                  o.trusted_public_key_length);
      if (!key.isOk()) return invalid(("ds_artifact_open: " + key.status().message()).c_str());
      open_options.trusted_keys.push_back(key.value());
    }
    auto artifact = ds::artifact::Artifact::open(path, open_options);
    if (!artifact.isOk()) return artifact.status().release();
    *out_artifact = new (std::nothrow)
        ds_artifact_s{std::move(artifact.value()), o.allow_native_code != 0};
    return *out_artifact ? nullptr : ds::Status(DS_OUT_OF_MEMORY, "ds_artifact_open").release();
  });
}

void ds_artifact_release(ds_artifact_t artifact) { delete artifact; }

int64_t ds_artifact_vocab_size(ds_artifact_t artifact) {
  return artifact ? artifact->artifact->meta()->model()->vocab_size() : 0;
}

void ds_engine_options_initialize(ds_engine_options_t* options) {
  ds::EngineOptions d;
  options->kv_cache_bytes = d.kv_cache_bytes;
  options->num_threads = d.num_threads;
  options->max_step_tokens = d.max_step_tokens;
  options->max_model_len = d.max_model_len;
}

ds_status_t ds_engine_create(ds_artifact_t artifact, const ds_engine_options_t* options,
                             ds_engine_t* out_engine) {
  return guarded("ds_engine_create", [&]() -> ds_status_t {
    if (!artifact || !options || !out_engine) return invalid("ds_engine_create: null argument");
    *out_engine = nullptr;
    ds::EngineOptions o;
    o.kv_cache_bytes = options->kv_cache_bytes;
    o.num_threads = options->num_threads;
    o.max_step_tokens = options->max_step_tokens;
    o.max_model_len = options->max_model_len;
    o.allow_native_code = artifact->allow_native_code;
    auto session = ds::Session::create(*artifact->artifact, o);
    if (!session.isOk()) return session.status().release();
    *out_engine = new (std::nothrow) ds_engine_s;
    if (*out_engine) (*out_engine)->session = std::move(session.value());
    return *out_engine ? nullptr : ds::Status(DS_OUT_OF_MEMORY, "ds_engine_create").release();
  });
}

void ds_engine_release(ds_engine_t engine) { delete engine; }

void ds_request_options_initialize(ds_request_options_t* options) {
  *options = ds_request_options_t{0.0f, 0, 1.0f, 0, 64, nullptr, 0, 1.0f, 0, 1,
                                  0.0f, 0.0f, 0.0f, nullptr, 0, 0};
}

namespace {

ds_status_t requestOf(const char* fn, const ds_request_options_t* options, ds::TextRequest* r) {
  r->sampling.temperature = options->temperature;
  r->sampling.top_k = options->top_k;
  r->sampling.top_p = options->top_p;
  r->sampling.seed = options->seed;
  r->sampling.repetition_penalty = options->repetition_penalty;
  r->max_new_tokens = options->max_new_tokens;
  r->ignore_eos = options->ignore_eos != 0;
  if (options->stop_token_count && !options->stop_token_ids)
    return ds::invalidArgument(std::string(fn) + ": stop_token_count without stop_token_ids")
        .release();
  if (options->stop_token_count)
    r->stop_token_ids.assign(options->stop_token_ids,
                             options->stop_token_ids + options->stop_token_count);
  r->sampling.min_p = options->min_p;
  r->sampling.presence_penalty = options->presence_penalty;
  r->sampling.frequency_penalty = options->frequency_penalty;
  if (options->stop_count && !options->stop)
    return ds::invalidArgument(std::string(fn) + ": stop_count without stop").release();
  for (size_t i = 0; i < options->stop_count; ++i) {
    if (!options->stop[i])
      return ds::invalidArgument(std::string(fn) + ": stop[" + std::to_string(i) + "] is NULL")
          .release();
    r->stop.emplace_back(options->stop[i]);
  }
  r->include_stop_str_in_output = options->include_stop_str_in_output != 0;
  return nullptr;
}

ds_status_t submit(ds_engine_t engine, const ds::TextRequest& r, int64_t* out_request) {
  std::lock_guard<std::mutex> lock(engine->mu);
  auto id = engine->session->submit(r);
  if (!id.isOk()) return id.status().release();
  *out_request = *id;
  return nullptr;
}

}  // namespace

ds_status_t ds_engine_submit(ds_engine_t engine, const int32_t* prompt, size_t prompt_length,
                             const ds_request_options_t* options, int64_t* out_request) {
  return guarded("ds_engine_submit", [&]() -> ds_status_t {
    if (!engine || !prompt || !options || !out_request) return invalid("ds_engine_submit: null argument");
    if (prompt_length == 0) return invalid("ds_engine_submit: the prompt has no tokens");
    ds::TextRequest r;
    if (ds_status_t e = requestOf("ds_engine_submit", options, &r)) return e;
    r.prompt_ids.assign(prompt, prompt + prompt_length);
    r.ignore_eos = true;  // token-id requests stop only at options->stop_token_ids
    return submit(engine, r, out_request);
  });
}

ds_status_t ds_engine_submit_text(ds_engine_t engine, const char* prompt, int32_t chat,
                                  const ds_request_options_t* options, int64_t* out_request) {
  return guarded("ds_engine_submit_text", [&]() -> ds_status_t {
    if (!engine || !prompt || !options || !out_request)
      return invalid("ds_engine_submit_text: null argument");
    ds::TextRequest r;
    if (ds_status_t e = requestOf("ds_engine_submit_text", options, &r)) return e;
    r.prompt.text = prompt;
    r.prompt.chat = chat != 0;
    r.prompt.parse_special = options->parse_special != 0;
    return submit(engine, r, out_request);
  });
}

ds_status_t ds_engine_tokenize(ds_engine_t engine, const char* text, int32_t add_special_tokens,
                               int32_t* ids, size_t capacity, size_t* out_count) {
  return guarded("ds_engine_tokenize", [&]() -> ds_status_t {
    if (!engine || !text || !out_count || (capacity && !ids))
      return invalid("ds_engine_tokenize: null argument");
    std::lock_guard<std::mutex> lock(engine->mu);
    auto encoded = engine->session->tokenize(text, add_special_tokens != 0);
    if (!encoded.isOk()) return encoded.status().release();
    *out_count = encoded->size();
    for (size_t i = 0; i < encoded->size() && i < capacity; ++i) ids[i] = (*encoded)[i];
    return nullptr;
  });
}

ds_status_t ds_engine_detokenize(ds_engine_t engine, const int32_t* ids, size_t count,
                                 char* text, size_t capacity, size_t* out_length) {
  return guarded("ds_engine_detokenize", [&]() -> ds_status_t {
    if (!engine || (count && !ids) || !out_length || (capacity && !text))
      return invalid("ds_engine_detokenize: null argument");
    std::lock_guard<std::mutex> lock(engine->mu);
    auto decoded = engine->session->decode(std::vector<int32_t>(ids, ids + count));
    if (!decoded.isOk()) return decoded.status().release();
    *out_length = decoded->size();
    if (capacity) {
      const size_t n = std::min(capacity - 1, decoded->size());
      std::memcpy(text, decoded->data(), n);
      text[n] = '\0';
    }
    return nullptr;
  });
}

ds_status_t ds_engine_step(ds_engine_t engine, ds_token_event_t* events, size_t capacity,
                           size_t* out_count) {
  return guarded("ds_engine_step", [&]() -> ds_status_t {
    if (!engine || !out_count || (capacity && !events)) return invalid("ds_engine_step: null argument");
    std::lock_guard<std::mutex> lock(engine->mu);
    if (capacity < engine->session->numRequests())
      return invalid("ds_engine_step: capacity is below ds_engine_num_running()");
    engine->events.clear();
    ds::Status st = engine->session->step(&engine->events);
    if (!st.isOk()) return st.release();
    *out_count = engine->events.size();
    for (size_t i = 0; i < engine->events.size(); ++i) {
      const ds::TextEvent& e = engine->events[i];
      events[i] = {e.request, e.token, static_cast<ds_finish_reason_t>(e.finish), e.text.data(),
                   e.text.size()};
    }
    return nullptr;
  });
}

ds_status_t ds_engine_abort(ds_engine_t engine, int64_t request) {
  return guarded("ds_engine_abort", [&]() -> ds_status_t {
    if (!engine) return invalid("ds_engine_abort: null engine");
    std::lock_guard<std::mutex> lock(engine->mu);
    ds::Status st = engine->session->abort(request);
    return st.isOk() ? nullptr : st.release();
  });
}

int ds_engine_has_work(ds_engine_t engine) {
  if (!engine) return 0;
  std::lock_guard<std::mutex> lock(engine->mu);
  return engine->session->hasWork() ? 1 : 0;
}

size_t ds_engine_num_running(ds_engine_t engine) {
  if (!engine) return 0;
  std::lock_guard<std::mutex> lock(engine->mu);
  return engine->session->numRequests();
}

}  // extern "C"

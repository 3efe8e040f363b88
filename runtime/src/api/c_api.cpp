// The C ABI over Engine / Artifact: handles own C++ objects; errors become ds_status_t.
#include <new>

#include "api/engine.h"
#include "artifact/artifact_reader.h"
#include "ds/runtime.h"

struct ds_artifact_s {
  std::unique_ptr<ds::artifact::Artifact> artifact;
};
struct ds_engine_s {
  std::unique_ptr<ds::Engine> engine;
  std::vector<ds::TokenEvent> events;
};

namespace {
ds_status_t invalid(const char* what) { return ds::invalidArgument(what).release(); }
}  // namespace

extern "C" {

ds_status_t ds_artifact_open(const char* path, ds_artifact_t* out_artifact) {
  if (!path || !out_artifact) return invalid("ds_artifact_open: path and out_artifact are required");
  *out_artifact = nullptr;
  auto artifact = ds::artifact::Artifact::open(path);
  if (!artifact.isOk()) return artifact.status().release();
  *out_artifact = new (std::nothrow) ds_artifact_s{std::move(artifact.value())};
  return *out_artifact ? nullptr : ds::Status(DS_OUT_OF_MEMORY, "ds_artifact_open").release();
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
}

ds_status_t ds_engine_create(ds_artifact_t artifact, const ds_engine_options_t* options,
                             ds_engine_t* out_engine) {
  if (!artifact || !options || !out_engine) return invalid("ds_engine_create: null argument");
  *out_engine = nullptr;
  ds::EngineOptions o;
  o.kv_cache_bytes = options->kv_cache_bytes;
  o.num_threads = options->num_threads;
  o.max_step_tokens = options->max_step_tokens;
  auto engine = ds::Engine::create(*artifact->artifact, o);
  if (!engine.isOk()) return engine.status().release();
  *out_engine = new (std::nothrow) ds_engine_s{std::move(engine.value()), {}};
  return *out_engine ? nullptr : ds::Status(DS_OUT_OF_MEMORY, "ds_engine_create").release();
}

void ds_engine_release(ds_engine_t engine) { delete engine; }

void ds_request_options_initialize(ds_request_options_t* options) {
  *options = ds_request_options_t{0.0f, 0, 1.0f, 0, 64, nullptr, 0};
}

ds_status_t ds_engine_submit(ds_engine_t engine, const int32_t* prompt, size_t prompt_length,
                             const ds_request_options_t* options, int64_t* out_request) {
  if (!engine || !prompt || !options || !out_request) return invalid("ds_engine_submit: null argument");
  ds::GenerationRequest r;
  r.prompt.assign(prompt, prompt + prompt_length);
  r.sampling.temperature = options->temperature;
  r.sampling.top_k = options->top_k;
  r.sampling.top_p = options->top_p;
  r.sampling.seed = options->seed;
  r.max_new_tokens = options->max_new_tokens;
  if (options->stop_token_count && !options->stop_token_ids)
    return invalid("ds_engine_submit: stop_token_count without stop_token_ids");
  r.stop_token_ids.assign(options->stop_token_ids, options->stop_token_ids + options->stop_token_count);
  auto id = engine->engine->submit(std::move(r));
  if (!id.isOk()) return id.status().release();
  *out_request = *id;
  return nullptr;
}

ds_status_t ds_engine_step(ds_engine_t engine, ds_token_event_t* events, size_t capacity,
                           size_t* out_count) {
  if (!engine || !out_count || (capacity && !events)) return invalid("ds_engine_step: null argument");
  if (capacity < engine->engine->numRunning())
    return invalid("ds_engine_step: capacity is below ds_engine_num_running()");
  engine->events.clear();
  ds::Status st = engine->engine->step(&engine->events);
  if (!st.isOk()) return st.release();
  *out_count = engine->events.size();
  for (size_t i = 0; i < engine->events.size(); ++i)
    events[i] = {engine->events[i].request, engine->events[i].token,
                 static_cast<ds_finish_reason_t>(engine->events[i].finish)};
  return nullptr;
}

int ds_engine_has_work(ds_engine_t engine) { return engine && engine->engine->hasWork() ? 1 : 0; }

size_t ds_engine_num_running(ds_engine_t engine) { return engine ? engine->engine->numRunning() : 0; }

}  // extern "C"

/* The ds runtime C ABI: open an artifact, create an engine, submit requests (token ids or text),
 * step, read tokens and text. Every call returns a ds_status_t (NULL on success); nothing throws
 * across this boundary (an allocation failure is DS_OUT_OF_MEMORY). Thread safety: every call
 * on an engine takes that engine's lock, so one engine may be driven from several threads (one
 * thread stepping while others submit, as a server does); calls on one engine run one at a
 * time. The text of the events a step returns stays valid until the next ds_engine_step on that
 * engine. Different engines and artifacts are independent. An artifact may be shared by engines
 * on any threads; release it after its last engine.
 * Pattern: *_options_initialize / *_create / *_release, as in IREE's runtime API. */
#ifndef DS_RUNTIME_H
#define DS_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "ds/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ds_artifact_s* ds_artifact_t;
typedef struct ds_engine_s* ds_engine_t;

/* Opens and verifies (header, metadata, weight checksums) a .dsa artifact. */
ds_status_t ds_artifact_open(const char* path, ds_artifact_t* out_artifact);
void ds_artifact_release(ds_artifact_t artifact);

/* Trust in an artifact from elsewhere (docs/artifact.md): a .dsa that carries host code is an
 * executable, and engines load that code into the process. */
typedef struct ds_artifact_options_s {
  /* Non-NULL: the artifact must carry a signature (ds-compile --sign) by this Ed25519 public key
   * (trusted_public_key_length = 32 bytes) that verifies; else opening fails naming the file:
   * DS_FAILED_PRECONDITION when unsigned or signed by another key, DS_DATA_LOSS when the
   * signature does not verify (changed after signing). NULL (default): no signature needed. */
  const uint8_t* trusted_public_key;
  size_t trusted_public_key_length;
  /* 0: engines created from this artifact never load its generated native code (never mapped
   * or dlopen'ed); library kernels run every launch and give the same tokens. 1 (default). */
  int32_t allow_native_code;
} ds_artifact_options_t;
void ds_artifact_options_initialize(ds_artifact_options_t* options);
/* ds_artifact_open with options (NULL options: the defaults, as ds_artifact_open). */
ds_status_t ds_artifact_open_with_options(const char* path, const ds_artifact_options_t* options,
                                          ds_artifact_t* out_artifact);
int64_t ds_artifact_vocab_size(ds_artifact_t artifact);

typedef struct ds_engine_options_s {
  uint64_t kv_cache_bytes; /* KV cache memory; 0 (default): a GPU's memory budget, 64 MiB on the CPU */
  int32_t num_threads;     /* 0: all hardware threads */
  int64_t max_step_tokens; /* token budget per step */
  int64_t max_model_len;   /* prompt + max_new_tokens limit per request; 0: the model's context */
} ds_engine_options_t;
void ds_engine_options_initialize(ds_engine_options_t* options);

/* The artifact must outlive the engine. */
ds_status_t ds_engine_create(ds_artifact_t artifact, const ds_engine_options_t* options,
                             ds_engine_t* out_engine);
void ds_engine_release(ds_engine_t engine);

typedef struct ds_request_options_s {
  float temperature;  /* 0: greedy */
  int32_t top_k;      /* 0: off */
  float top_p;        /* 1: off */
  uint64_t seed;
  int64_t max_new_tokens;
  const int32_t* stop_token_ids;
  size_t stop_token_count;
  float repetition_penalty; /* 1: off; > 0 (Hugging Face semantics, applies to greedy too) */
  int32_t ignore_eos;       /* text requests: nonzero generates past the tokenizer's stop ids */
  int32_t parse_special;    /* text requests: 0 encodes special-token text in the prompt (chat: in
                               the message) as plain text, so users cannot inject control tokens;
                               1 (default, as Hugging Face) turns it into the special tokens */
  /* Added later, at the end (set by ds_request_options_initialize; docs/runtime.md "Sampling"): */
  float min_p;             /* 0: off; in [0, 1]: keep tokens with prob >= min_p x the top prob */
  float presence_penalty;  /* 0: off; in [-2, 2]: OpenAI, over the generated tokens */
  float frequency_penalty; /* 0: off; in [-2, 2]: OpenAI, x the count in the generated tokens */
  const char* const* stop; /* stop strings (NUL-terminated, up to 16; need the artifact's
                              tokenizer): generation ends on one, the text stops before it */
  size_t stop_count;
  int32_t include_stop_str_in_output; /* nonzero: the event text ends with the stop string */
} ds_request_options_t;
void ds_request_options_initialize(ds_request_options_t* options);

ds_status_t ds_engine_submit(ds_engine_t engine, const int32_t* prompt, size_t prompt_length,
                             const ds_request_options_t* options, int64_t* out_request);

/* Text-level calls through the artifact's tokenizer and chat template. A text request stops at
 * the tokenizer's stop ids (unless options->ignore_eos) and at options->stop_token_ids.
 * chat != 0 renders `prompt` as one user turn with the chat template (add_generation_prompt);
 * else the tokenizer adds BOS as the model's tokenizer does. DS_INVALID_ARGUMENT names the
 * artifact when it carries no tokenizer (or no template, for chat). */
ds_status_t ds_engine_submit_text(ds_engine_t engine, const char* prompt, int32_t chat,
                                  const ds_request_options_t* options, int64_t* out_request);
/* Encodes text: writes min(count, capacity) ids and sets *out_count to the full count (call
 * with capacity 0 to size the buffer). */
ds_status_t ds_engine_tokenize(ds_engine_t engine, const char* text, int32_t add_special_tokens,
                               int32_t* ids, size_t capacity, size_t* out_count);
/* Decodes ids (special tokens skipped): writes up to capacity - 1 bytes plus a NUL and sets
 * *out_length to the full length in bytes (call with capacity 0 to size the buffer). */
ds_status_t ds_engine_detokenize(ds_engine_t engine, const int32_t* ids, size_t count,
                                 char* text, size_t capacity, size_t* out_length);

typedef enum ds_finish_reason_e { DS_FINISH_NONE = 0, DS_FINISH_LENGTH = 1, DS_FINISH_STOP = 2 } ds_finish_reason_t;

typedef struct ds_token_event_s {
  int64_t request;
  int32_t token;
  ds_finish_reason_t finish;
  /* The text this token completes (UTF-8, not NUL-terminated; often empty mid-character, the
   * rest flushed with the finishing event); owned by the engine, valid until its next step.
   * Empty when the artifact carries no tokenizer. */
  const char* text;
  size_t text_length;
} ds_token_event_t;

/* Runs one step. Writes up to `capacity` events and sets *out_count to the number written; a
 * step yields at most one event per running request, so capacity >= ds_engine_num_running()
 * never loses one (with less, DS_INVALID_ARGUMENT and no step is run). */
ds_status_t ds_engine_step(ds_engine_t engine, ds_token_event_t* events, size_t capacity,
                           size_t* out_count);
/* Cancels a request that is running or waiting: its KV blocks are freed at once, no further
 * event comes for it. DS_NOT_FOUND for an id that finished, was aborted or was never returned.
 * ds_engine_submit* returns DS_RESOURCE_EXHAUSTED when the engine's waiting queue is full
 * (EngineOptions::max_waiting; unbounded through this ABI's options). */
ds_status_t ds_engine_abort(ds_engine_t engine, int64_t request);
/* Nonzero while requests are running or waiting. */
int ds_engine_has_work(ds_engine_t engine);
/* Requests submitted and not finished (running or waiting for KV blocks): the most events the
 * next step can produce. */
size_t ds_engine_num_running(ds_engine_t engine);

#ifdef __cplusplus
}
#endif
#endif /* DS_RUNTIME_H */

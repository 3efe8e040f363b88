// The C ABI through the header-only C++ wrapper: open, create, submit, step, errors as values.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "api/session.h"
#include "artifact/artifact_reader.h"
#include "ds/runtime.hpp"
#include "e2e_util.h"
#include "engine/engine.h"
#include "exec/model_runner.h"

namespace ds::test {
namespace {

TEST(CApi, GreedyGenerationMatchesTheGolden) {
  auto [artifact, err] = RuntimeArtifact::open(artifactPath("tiny-qwen2"));
  ASSERT_FALSE(err) << err.message();
  EXPECT_EQ(artifact.vocabSize(), 512);
  auto [engine, err2] = RuntimeEngine::create(artifact, RuntimeEngine::defaultOptions());
  ASSERT_FALSE(err2) << err2.message();
  Golden g = loadGolden("tiny-qwen2");
  ds_request_options_t req = RuntimeEngine::defaultRequest();
  req.max_new_tokens = 32;
  std::vector<int64_t> ids;
  for (const auto& p : g.prompts) {
    auto [id, e] = engine.submit(p.prompt, req);
    ASSERT_FALSE(e) << e.message();
    ids.push_back(id);
  }
  std::vector<std::vector<int32_t>> out(ids.size());
  std::vector<ds_token_event_t> events;
  while (engine.hasWork()) {
    events.clear();
    Error e = engine.step(&events);
    ASSERT_FALSE(e) << e.message();
    for (const auto& ev : events) out[ev.request - ids[0]].push_back(ev.token);
  }
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(out[i], g.prompts[i].generated) << i;
}

TEST(CApi, ErrorsAreStatusValues) {
  auto [missing, err] = RuntimeArtifact::open("/nonexistent/model.dsa");
  ASSERT_TRUE(err);
  EXPECT_EQ(err.code(), DS_NOT_FOUND);
  EXPECT_NE(err.message().find("/nonexistent/model.dsa"), std::string::npos);

  auto [artifact, ok] = RuntimeArtifact::open(artifactPath("tiny-llama"));
  ASSERT_FALSE(ok) << ok.message();
  ds_engine_options_t opts = RuntimeEngine::defaultOptions();
  opts.kv_cache_bytes = 1;  // smaller than one block
  auto [none, tooSmall] = RuntimeEngine::create(artifact, opts);
  ASSERT_TRUE(tooSmall);
  EXPECT_EQ(tooSmall.code(), DS_INVALID_ARGUMENT);

  auto [engine, ok2] = RuntimeEngine::create(artifact, RuntimeEngine::defaultOptions());
  ASSERT_FALSE(ok2);
  ds_request_options_t req = RuntimeEngine::defaultRequest();
  auto [id, empty] = engine.submit({}, req);
  EXPECT_TRUE(empty);
  auto [id2, oov] = engine.submit({1, 100000}, req);
  ASSERT_TRUE(oov);
  EXPECT_NE(oov.message().find("100000"), std::string::npos);
  req.temperature = -1;
  auto [id3, badTemp] = engine.submit({1}, req);
  EXPECT_TRUE(badTemp);
  EXPECT_FALSE(engine.hasWork());
  // Null handles are reported, not dereferenced.
  Error null(ds_engine_submit(nullptr, nullptr, 0, nullptr, nullptr));
  EXPECT_EQ(null.code(), DS_INVALID_ARGUMENT);
}

}  // namespace
// Runs `engine` to completion; returns each request's tokens and the concatenated event text.
void drain(ds_engine_t engine, std::map<int64_t, std::vector<int32_t>>* tokens,
           std::map<int64_t, std::string>* text) {
  std::vector<ds_token_event_t> events(8);
  while (ds_engine_has_work(engine)) {
    size_t n = 0;
    ds_status_t st = ds_engine_step(engine, events.data(), events.size(), &n);
    ASSERT_EQ(st, nullptr) << ds_status_message(st);
    for (size_t i = 0; i < n; ++i) {
      (*tokens)[events[i].request].push_back(events[i].token);
      (*text)[events[i].request].append(events[i].text, events[i].text_length);
    }
  }
}

// Text in, text out: submit_text equals tokenize + submit; the streamed event text equals
// detokenize of the tokens; the repetition penalty reaches the sampler (same tokens as the C++
// session with the same penalty, other tokens than without it).
TEST(CApi, TextCallsMatchTheTokenPath) {
  ds_artifact_t art = nullptr;
  ASSERT_EQ(ds_artifact_open(artifactPath("stories260K").c_str(), &art), nullptr);
  ds_engine_options_t eo;
  ds_engine_options_initialize(&eo);
  ds_engine_t engine = nullptr;
  ASSERT_EQ(ds_engine_create(art, &eo, &engine), nullptr);

  size_t count = 0;
  ASSERT_EQ(ds_engine_tokenize(engine, "Once upon a time", 1, nullptr, 0, &count), nullptr);
  ASSERT_GT(count, 1u);
  std::vector<int32_t> prompt(count);
  ASSERT_EQ(ds_engine_tokenize(engine, "Once upon a time", 1, prompt.data(), prompt.size(), &count),
            nullptr);

  ds_request_options_t req;
  ds_request_options_initialize(&req);
  req.max_new_tokens = 24;
  req.ignore_eos = 1;
  int64_t by_text = -1, by_ids = -1, penalized = -1;
  ASSERT_EQ(ds_engine_submit_text(engine, "Once upon a time", 0, &req, &by_text), nullptr);
  ASSERT_EQ(ds_engine_submit(engine, prompt.data(), prompt.size(), &req, &by_ids), nullptr);
  req.repetition_penalty = 3.0f;
  ASSERT_EQ(ds_engine_submit_text(engine, "Once upon a time", 0, &req, &penalized), nullptr);
  std::map<int64_t, std::vector<int32_t>> tokens;
  std::map<int64_t, std::string> text;
  drain(engine, &tokens, &text);
  EXPECT_EQ(tokens[by_text].size(), 24u);
  EXPECT_EQ(tokens[by_text], tokens[by_ids]);
  EXPECT_NE(tokens[penalized], tokens[by_text]);

  size_t length = 0;
  const std::vector<int32_t>& t = tokens[by_text];
  ASSERT_EQ(ds_engine_detokenize(engine, t.data(), t.size(), nullptr, 0, &length), nullptr);
  std::string decoded(length + 1, '\0');
  ASSERT_EQ(ds_engine_detokenize(engine, t.data(), t.size(), decoded.data(), decoded.size(), &length),
            nullptr);
  decoded.resize(length);
  EXPECT_EQ(text[by_text], decoded);
  EXPECT_NE(decoded.find("Lily"), std::string::npos) << decoded;  // the authors' greedy story

  // The C++ session with the same penalty gives the same tokens.
  auto a = artifact::Artifact::open(artifactPath("stories260K"));
  ASSERT_TRUE(a.isOk());
  auto session = Session::create(**a, EngineOptions{});
  ASSERT_TRUE(session.isOk()) << session.status().toString();
  TextRequest r;
  r.prompt.text = "Once upon a time";
  r.max_new_tokens = 24;
  r.ignore_eos = true;
  r.sampling.repetition_penalty = 3.0f;
  auto id = (*session)->submit(r);
  ASSERT_TRUE(id.isOk());
  std::vector<TextEvent> ev;
  while ((*session)->hasWork()) ASSERT_TRUE((*session)->step(&ev).isOk());
  EXPECT_EQ((*session)->generated(*id), tokens[penalized]);

  // Chat without a template: an error naming the artifact, no request.
  int64_t none = -1;
  ds_status_t st = ds_engine_submit_text(engine, "hi", 1, &req, &none);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(ds_status_code(st), DS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ds_status_message(st)).find("has no chat template"), std::string::npos);
  ds_status_free(st);
  ds_engine_release(engine);
  ds_artifact_release(art);
}

// Issue #10: one engine driven from two threads segfaulted. Every call takes the engine's lock
// (runtime.h): one thread submits while another steps; every request finishes with the tokens
// the same prompt gives alone.
TEST(CApi, OneEngineFromSeveralThreads) {
  ds_artifact_t art = nullptr;
  ASSERT_EQ(ds_artifact_open(artifactPath("stories260K").c_str(), &art), nullptr);
  ds_engine_options_t eo;
  ds_engine_options_initialize(&eo);
  ds_engine_t engine = nullptr;
  ASSERT_EQ(ds_engine_create(art, &eo, &engine), nullptr);
  ds_request_options_t req;
  ds_request_options_initialize(&req);
  req.max_new_tokens = 3;
  req.ignore_eos = 1;
  // Many short requests from two threads while a third steps: without the engine's lock the
  // engine's request list is resized under the stepping thread (crashes or lost requests).
  constexpr int kRequests = 600;
  std::atomic<int> submitted{0};
  std::vector<int64_t> ids(kRequests, -1);
  auto produce = [&](int first) {
    for (int i = first; i < kRequests; i += 2) {
      ds_status_t st = ds_engine_submit_text(engine, i % 2 ? "Once upon a time" : "Lily", 0, &req, &ids[i]);
      EXPECT_EQ(st, nullptr);
      ds_status_free(st);
      submitted.fetch_add(1);
      size_t n = 0;  // tokenizing concurrently with steps is safe too
      EXPECT_EQ(ds_engine_tokenize(engine, "Once", 1, nullptr, 0, &n), nullptr);
    }
  };
  std::thread producer(produce, 0), producer2(produce, 1);
  std::map<int64_t, std::vector<int32_t>> tokens;
  std::vector<ds_token_event_t> events(kRequests);  // a step can never produce more
  while (submitted.load() < kRequests || ds_engine_has_work(engine)) {
    size_t count = 0;
    ds_status_t st = ds_engine_step(engine, events.data(), events.size(), &count);
    EXPECT_EQ(st, nullptr) << (st ? ds_status_message(st) : "");
    ds_status_free(st);
    for (size_t e = 0; e < count; ++e) tokens[events[e].request].push_back(events[e].token);
  }
  producer.join();
  producer2.join();
  ASSERT_EQ(tokens.size(), static_cast<size_t>(kRequests));
  for (int i = 2; i < kRequests; ++i) EXPECT_EQ(tokens[ids[i]], tokens[ids[i % 2]]) << i;
  ds_engine_release(engine);
  ds_artifact_release(art);
}

// Issue #10: kv_cache_bytes = 1 TiB threw std::bad_alloc through the C ABI. It is a status now,
// decided before allocating.
TEST(CApi, HugeKvBudgetIsAStatus) {
  ds_artifact_t art = nullptr;
  ASSERT_EQ(ds_artifact_open(artifactPath("stories260K").c_str(), &art), nullptr);
  ds_engine_options_t eo;
  ds_engine_options_initialize(&eo);
  eo.kv_cache_bytes = uint64_t{1} << 40;
  ds_engine_t engine = nullptr;
  ds_status_t st = ds_engine_create(art, &eo, &engine);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(ds_status_code(st), DS_OUT_OF_MEMORY);
  EXPECT_NE(std::string(ds_status_message(st)).find("bytes of memory"), std::string::npos)
      << ds_status_message(st);
  ds_status_free(st);
  EXPECT_EQ(engine, nullptr);
  eo.kv_cache_bytes = 64ull << 20;
  eo.max_model_len = 1 << 20;  // above the model's 512
  st = ds_engine_create(art, &eo, &engine);
  ASSERT_NE(st, nullptr);
  EXPECT_NE(std::string(ds_status_message(st)).find("exceeds the model's context of 512"), std::string::npos);
  ds_status_free(st);
  ds_artifact_release(art);
}

}  // namespace ds::test

namespace ds::test {
namespace {

// kv_cache_bytes = 0 (the default): the device decides. The CPU has no memory budget of its own,
// so it takes cpu_kv_cache_bytes (64 MiB unless set); a GPU would take what its
// gpu_memory_fraction leaves (docs/cuda.md "Memory budget").
TEST(EngineKvCache, DefaultIsTheDevicesChoice) {
  auto art = openArtifact("stories260K");
  ASSERT_NE(art, nullptr);
  StatusOr<uint64_t> per_block = ModelRunner::kvBytesPerBlock(*art);
  ASSERT_TRUE(per_block.isOk());
  EngineOptions eo;
  EXPECT_EQ(eo.kv_cache_bytes, 0u);
  auto e = Engine::create(*art, eo);
  ASSERT_TRUE(e.isOk()) << e.status().message();
  EXPECT_EQ((*e)->kvCapacityTokens(),
            static_cast<int64_t>(kDefaultCpuKvCacheBytes / *per_block) * 16);
  eo.cpu_kv_cache_bytes = 5 * *per_block + 7;
  e = Engine::create(*art, eo);
  ASSERT_TRUE(e.isOk()) << e.status().message();
  EXPECT_EQ((*e)->kvCapacityTokens(), 5 * 16);
  // An explicit size wins over the device's choice.
  eo.kv_cache_bytes = 3 * *per_block;
  e = Engine::create(*art, eo);
  ASSERT_TRUE(e.isOk()) << e.status().message();
  EXPECT_EQ((*e)->kvCapacityTokens(), 3 * 16);
  eo.kv_cache_bytes = 0;
  eo.cpu_kv_cache_bytes = *per_block - 1;
  e = Engine::create(*art, eo);
  ASSERT_FALSE(e.isOk());
  EXPECT_NE(e.status().message().find("holds no block"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace ds::test

namespace ds::test {
namespace {

// ds_engine_abort: a running request stops (no further event), the other one is unchanged,
// a second abort and unknown ids are DS_NOT_FOUND, a null engine DS_INVALID_ARGUMENT.
TEST(CApi, AbortCancelsOneRequest) {
  auto [artifact, err] = RuntimeArtifact::open(artifactPath("tiny-qwen2"));
  ASSERT_FALSE(err) << err.message();
  auto [engine, err2] = RuntimeEngine::create(artifact, RuntimeEngine::defaultOptions());
  ASSERT_FALSE(err2) << err2.message();
  Golden g = loadGolden("tiny-qwen2");
  ds_request_options_t req = RuntimeEngine::defaultRequest();
  req.max_new_tokens = 32;
  auto [keep, e1] = engine.submit(g.prompts[0].prompt, req);
  auto [drop, e2] = engine.submit(g.prompts[1].prompt, req);
  ASSERT_FALSE(e1 || e2);
  std::vector<ds_token_event_t> events;
  ASSERT_FALSE(engine.step(&events));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(engine.abort(drop));
  Error again = engine.abort(drop);
  ASSERT_TRUE(again);
  EXPECT_EQ(again.code(), DS_NOT_FOUND);
  EXPECT_EQ(engine.abort(999).code(), DS_NOT_FOUND);
  Error null(ds_engine_abort(nullptr, 0));
  EXPECT_EQ(null.code(), DS_INVALID_ARGUMENT);
  std::vector<int32_t> kept = {events[0].request == keep ? events[0].token : events[1].token};
  events.clear();
  while (engine.hasWork()) ASSERT_FALSE(engine.step(&events));
  for (const auto& ev : events) {
    EXPECT_EQ(ev.request, keep);
    kept.push_back(ev.token);
  }
  EXPECT_EQ(kept, g.prompts[0].generated);
  EXPECT_STREQ(ds_status_code_name(DS_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
}

}  // namespace
}  // namespace ds::test

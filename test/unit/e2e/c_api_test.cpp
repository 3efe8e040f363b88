// The C ABI through the header-only C++ wrapper: open, create, submit, step, errors as values.
#include <gtest/gtest.h>

#include "ds/runtime.hpp"
#include "e2e_util.h"

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
}  // namespace ds::test

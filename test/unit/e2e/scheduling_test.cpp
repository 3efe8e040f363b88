// The engine's scheduler on the e2e models: preemption by recompute under a small KV budget
// (every request's tokens equal its run alone, greedy and seeded sampling, no event twice),
// cancellation (blocks freed at once, the others unchanged), prefix caching (a shared system
// prompt hits the cache and gives the same tokens), the bounded waiting queue, priorities.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "e2e_util.h"
#include "exec/model_runner.h"

namespace ds::test {
namespace {

class Scheduling : public ::testing::TestWithParam<std::string> {};

struct Outcome {
  std::map<int64_t, std::vector<int32_t>> events;  // per request, in event order
  std::map<int64_t, int> finishes;                 // finishing events per request
  std::vector<int64_t> ids;
  EngineStats stats;
};

EngineOptions options(const artifact::Artifact& art, int64_t num_blocks, bool prefix_caching,
                      int64_t max_step_tokens = 512) {
  EngineOptions o;
  o.enable_prefix_caching = prefix_caching;
  o.max_step_tokens = max_step_tokens;
  auto per_block = ModelRunner::kvBytesPerBlock(art);
  EXPECT_TRUE(per_block.isOk());
  o.kv_cache_bytes = static_cast<uint64_t>(num_blocks) * (per_block.isOk() ? *per_block : 1);
  return o;
}

std::vector<GenerationRequest> mixedRequests(const Golden& g, int64_t n) {
  std::vector<GenerationRequest> out;
  for (size_t i = 0; i < 6; ++i) {
    GenerationRequest r;
    r.prompt = g.prompts[i % g.prompts.size()].prompt;
    if (i >= g.prompts.size()) r.prompt.resize(std::min<size_t>(r.prompt.size(), 5 + i));
    r.max_new_tokens = n;
    if (i % 2 == 1) {  // seeded sampling: a redrawn RNG after preemption would change tokens
      r.sampling.temperature = 0.9f;
      r.sampling.top_p = 0.95f;
      r.sampling.seed = 1000 + i;
    }
    out.push_back(r);
  }
  return out;
}

// All requests submitted up front into one engine, run to completion.
Outcome runAll(Engine& e, const std::vector<GenerationRequest>& reqs) {
  Outcome run;
  for (const auto& r : reqs) {
    auto id = e.submit(r);
    EXPECT_TRUE(id.isOk()) << id.status().toString();
    run.ids.push_back(id.isOk() ? *id : -1);
  }
  std::vector<TokenEvent> ev;
  while (e.hasWork()) {
    ev.clear();
    Status st = e.step(&ev);
    EXPECT_TRUE(st.isOk()) << st.toString();
    if (!st.isOk()) break;
    std::map<int64_t, int> per_step;
    for (const TokenEvent& t : ev) {
      EXPECT_EQ(++per_step[t.request], 1) << "two events for one request in a step";
      run.events[t.request].push_back(t.token);
      if (t.finish != FinishReason::kNone) ++run.finishes[t.request];
    }
  }
  run.stats = e.stats();
  return run;
}

// Each request alone: one at a time through an engine with a large cache, no prefix cache.
std::vector<std::vector<int32_t>> alone(const artifact::Artifact& art,
                                        const std::vector<GenerationRequest>& reqs) {
  auto e = Engine::create(art, options(art, 256, false));
  EXPECT_TRUE(e.isOk()) << e.status().toString();
  std::vector<std::vector<int32_t>> out;
  for (const auto& r : reqs) {
    Outcome run = runAll(**e, {r});
    out.push_back(run.events[run.ids[0]]);
  }
  return out;
}

TEST_P(Scheduling, PreemptionKeepsEveryRequestsTokens) {
  auto art = openArtifact(GetParam());
  ASSERT_NE(art, nullptr);
  const Golden g = loadGolden(GetParam());
  const int64_t n = 20;
  const auto reqs = mixedRequests(g, n);
  const auto expected = alone(*art, reqs);
  auto probe = Engine::create(*art, options(*art, 256, false));
  ASSERT_TRUE(probe.isOk());
  const int64_t bs = (*probe)->runner().blockSize();
  int64_t most = 0;  // the blocks of the largest request: the cache holds it and little more
  for (const auto& r : reqs)
    most = std::max<int64_t>(most, (static_cast<int64_t>(r.prompt.size()) + n + bs - 1) / bs);
  for (bool caching : {false, true}) {
    SCOPED_TRACE(caching ? "prefix caching" : "no prefix caching");
    auto e = Engine::create(*art, options(*art, most + 1, caching, 24));
    ASSERT_TRUE(e.isOk()) << e.status().toString();
    Outcome run = runAll(**e, reqs);
    EXPECT_GT(run.stats.preemptions, 0) << "the KV budget must force preemption";
    EXPECT_GT(run.stats.recomputed_tokens, 0);
    for (size_t i = 0; i < reqs.size(); ++i) {
      const int64_t id = run.ids[i];
      EXPECT_EQ(run.events[id], expected[i]) << GetParam() << " request " << i;
      EXPECT_EQ(run.events[id], (*e)->generated(id));
      EXPECT_EQ(run.finishes[id], 1);
      EXPECT_EQ((*e)->finishReason(id), FinishReason::kLength);
    }
    EXPECT_EQ(run.stats.finished_length, static_cast<int64_t>(reqs.size()));
    EXPECT_EQ(run.stats.running + run.stats.waiting, 0);
    EXPECT_EQ(run.stats.kv_blocks_used, 0);
    EXPECT_TRUE((*e)->scheduler().checkInvariants().isOk());
  }
}

TEST_P(Scheduling, AbortFreesBlocksAtOnceAndLeavesTheOthersUnchanged) {
  auto art = openArtifact(GetParam());
  ASSERT_NE(art, nullptr);
  const Golden g = loadGolden(GetParam());
  auto reqs = mixedRequests(g, 16);
  reqs.resize(4);
  const auto expected = alone(*art, reqs);
  EngineOptions o = options(*art, 64, false);
  o.max_num_seqs = 3;  // the fourth request waits
  auto e = Engine::create(*art, o);
  ASSERT_TRUE(e.isOk());
  std::vector<int64_t> ids;
  for (const auto& r : reqs) ids.push_back((*e)->submit(r).value());
  std::map<int64_t, std::vector<int32_t>> got;
  std::vector<TokenEvent> ev;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*e)->step(&ev).isOk());
  EXPECT_EQ((*e)->numRunning(), 3u);
  EXPECT_EQ((*e)->numWaiting(), 1u);
  const KVBlockManager& kv = (*e)->scheduler().blocks();
  const int64_t held = static_cast<int64_t>(kv.blockTable(ids[1]).size());
  ASSERT_GT(held, 0);
  const int64_t used = kv.usedBlocks();
  ASSERT_TRUE((*e)->abort(ids[1]).isOk());
  EXPECT_EQ(kv.usedBlocks(), used - held);
  EXPECT_FALSE(kv.hasSequence(ids[1]));
  EXPECT_EQ((*e)->finishReason(ids[1]), FinishReason::kAbort);
  ASSERT_TRUE((*e)->abort(ids[3]).isOk());  // waiting
  EXPECT_EQ((*e)->numWaiting(), 0u);
  EXPECT_EQ((*e)->abort(ids[1]).code(), DS_NOT_FOUND);
  EXPECT_EQ((*e)->abort(12345).code(), DS_NOT_FOUND);
  const std::vector<int32_t> partial = (*e)->generated(ids[1]);
  for (const TokenEvent& t : ev) got[t.request].push_back(t.token);
  ev.clear();
  while ((*e)->hasWork()) ASSERT_TRUE((*e)->step(&ev).isOk());
  for (const TokenEvent& t : ev) {
    EXPECT_NE(t.request, ids[1]) << "an event after abort";
    got[t.request].push_back(t.token);
  }
  EXPECT_EQ(got[ids[0]], expected[0]);
  EXPECT_EQ(got[ids[2]], expected[2]);
  EXPECT_EQ(partial, std::vector<int32_t>(expected[1].begin(), expected[1].begin() + partial.size()));
  const EngineStats st = (*e)->stats();
  EXPECT_EQ(st.aborted, 2);
  EXPECT_EQ(st.finished_length, 2);
  EXPECT_EQ(st.kv_blocks_used, 0);
}

TEST_P(Scheduling, PrefixCacheSharesASystemPromptWithIdenticalTokens) {
  auto art = openArtifact(GetParam());
  ASSERT_NE(art, nullptr);
  const Golden g = loadGolden(GetParam());
  const std::vector<int32_t>& system = g.prompts[2].prompt;  // 40 tokens: 2 full blocks of 16
  std::vector<GenerationRequest> reqs;
  for (size_t i = 0; i < 3; ++i) {
    GenerationRequest r;
    r.prompt = system;
    r.prompt.insert(r.prompt.end(), g.prompts[i % 2].prompt.begin(), g.prompts[i % 2].prompt.end());
    if (i == 2) r.prompt = system;  // the same prompt again: all but the last block's worth
    r.max_new_tokens = 12;
    reqs.push_back(r);
  }
  const auto expected = alone(*art, reqs);
  auto e = Engine::create(*art, options(*art, 64, true));
  ASSERT_TRUE(e.isOk());
  const int64_t bs = (*e)->runner().blockSize();
  // The first request computes the system prompt; the others then find it cached.
  Outcome first = runAll(**e, {reqs[0]});
  EXPECT_EQ(first.events[first.ids[0]], expected[0]);
  EXPECT_EQ(first.stats.cached_prompt_tokens, 0);
  EXPECT_GT(first.stats.kv_blocks_cached, 0);
  Outcome rest = runAll(**e, {reqs[1], reqs[2]});
  EXPECT_EQ(rest.events[rest.ids[0]], expected[1]);
  EXPECT_EQ(rest.events[rest.ids[1]], expected[2]);
  const int64_t shared = static_cast<int64_t>(system.size()) / bs * bs;
  ASSERT_GT(shared, 0);
  const int64_t same = (static_cast<int64_t>(system.size()) - 1) / bs * bs;
  EXPECT_GE(rest.stats.cached_prompt_tokens, shared + same);  // more if the suffixes share a block
  EXPECT_GT(rest.stats.prefixHitRate(), 0.0);
  // Switched off: no hit, same tokens.
  auto off = Engine::create(*art, options(*art, 64, false));
  ASSERT_TRUE(off.isOk());
  Outcome cold = runAll(**off, reqs);
  EXPECT_EQ(cold.stats.cached_prompt_tokens, 0);
  EXPECT_EQ(cold.stats.kv_blocks_cached, 0);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(cold.events[cold.ids[i]], expected[i]);
}

INSTANTIATE_TEST_SUITE_P(Models, Scheduling, ::testing::ValuesIn(goldenModels()),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(SchedulingLimits, WaitingQueueBoundPrioritiesAndRequestsThatNeverFit) {
  auto art = openArtifact("tiny-llama");
  ASSERT_NE(art, nullptr);
  EngineOptions o = options(*art, 4, true);
  o.max_num_seqs = 1;
  o.max_waiting = 2;
  auto e = Engine::create(*art, o);
  ASSERT_TRUE(e.isOk());
  const int64_t cap = (*e)->kvCapacityTokens();
  GenerationRequest r;
  r.prompt = {1, 2, 3, 4, 5};
  r.max_new_tokens = cap - 4;
  const auto never = (*e)->submit(r);
  EXPECT_EQ(never.status().code(), DS_INVALID_ARGUMENT);
  EXPECT_NE(never.status().message().find("prompt (5 tokens) + max_new_tokens (" +
                                          std::to_string(cap - 4) + ")"),
            std::string::npos) << never.status().message();
  EXPECT_NE(never.status().message().find("capacity of " + std::to_string(cap)), std::string::npos);
  r.max_new_tokens = 3;
  const int64_t low = (*e)->submit(r).value();
  r.priority = -1;
  const int64_t high = (*e)->submit(r).value();
  const auto full = (*e)->submit(r);
  EXPECT_EQ(full.status().code(), DS_RESOURCE_EXHAUSTED);
  std::vector<TokenEvent> ev;
  ASSERT_TRUE((*e)->step(&ev).isOk());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].request, high);  // lower value first
  EXPECT_TRUE((*e)->submit(r).isOk());  // a slot in the queue again
  while ((*e)->hasWork()) ASSERT_TRUE((*e)->step(&ev).isOk());
  EXPECT_EQ((*e)->finishReason(low), FinishReason::kLength);
}

}  // namespace
}  // namespace ds::test

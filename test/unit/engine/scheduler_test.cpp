// Scheduler tests without a model: admission order, budget chunking, max_num_seqs,
// max_waiting, priorities, preemption by recompute (newest first, itself when newest), abort,
// prefix-cache admission, and a seeded simulation whose fake model reads its "K/V" back
// through the block tables: every request's tokens must equal its run alone, under heavy
// preemption, aborts and prefix sharing.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace ds {
namespace {

using Tokens = std::vector<int32_t>;

// Deterministic "model": the next token is a function of the history only.
int32_t nextToken(const Tokens& history) {
  uint32_t h = 2166136261u;
  for (int32_t t : history) h = (h ^ static_cast<uint32_t>(t)) * 16777619u;
  return static_cast<int32_t>(h % 37);
}

// Runs one scheduled step: sampled sequences append nextToken(history), and finish after
// `max_new` generated tokens. Returns the (id, token) events.
std::vector<std::pair<int64_t, int32_t>> runStep(Scheduler& s, const SchedulerOutput& out,
                                                 std::map<int64_t, Tokens>* generated,
                                                 int64_t max_new) {
  EXPECT_TRUE(s.commit(out).isOk());
  std::vector<std::pair<int64_t, int32_t>> events;
  for (const ScheduledSeq& q : out.seqs) {
    if (!q.sample) continue;
    const int32_t t = nextToken(s.tokens(q.id));
    events.push_back({q.id, t});
    Tokens& g = (*generated)[q.id];
    g.push_back(t);
    if (static_cast<int64_t>(g.size()) >= max_new) EXPECT_TRUE(s.finish(q.id).isOk());
    else EXPECT_TRUE(s.appendToken(q.id, t).isOk());
  }
  EXPECT_TRUE(s.checkInvariants().isOk()) << s.checkInvariants().toString();
  return events;
}

Tokens iota(int n, int from = 1) {
  Tokens t(n);
  for (int i = 0; i < n; ++i) t[i] = from + i;
  return t;
}

SchedulerOptions opts(int64_t budget, int64_t max_seqs = 256, int64_t max_waiting = 0) {
  SchedulerOptions o;
  o.max_step_tokens = budget;
  o.max_num_seqs = max_seqs;
  o.max_waiting = max_waiting;
  return o;
}

TEST(SchedulerTest, FifoAdmissionChunksPrefillUnderTheBudget) {
  Scheduler s(opts(10), KVBlockManager(100, 4));
  ASSERT_TRUE(s.add(0, iota(8)).isOk());
  ASSERT_TRUE(s.add(1, iota(8)).isOk());
  EXPECT_EQ(s.add(1, iota(2)).code(), DS_FAILED_PRECONDITION);
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(out.seqs[0].id, 0);
  EXPECT_EQ(out.seqs[0].take, 8);
  EXPECT_TRUE(out.seqs[0].sample);
  EXPECT_EQ(out.seqs[1].id, 1);
  EXPECT_EQ(out.seqs[1].take, 2);
  EXPECT_FALSE(out.seqs[1].sample);
  EXPECT_EQ(out.num_tokens, 10);
  EXPECT_EQ(out.admitted, (std::vector<int64_t>{0, 1}));
  std::map<int64_t, Tokens> gen;
  runStep(s, out, &gen, 100);
  EXPECT_EQ(s.computed(1), 2);
  out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(out.seqs[0].start, 8);  // decode of the sampled token
  EXPECT_EQ(out.seqs[0].take, 1);
  EXPECT_EQ(out.seqs[1].start, 2);
  EXPECT_EQ(out.seqs[1].take, 6);
  EXPECT_TRUE(out.seqs[1].sample);
  EXPECT_TRUE(out.admitted.empty());
}

TEST(SchedulerTest, MaxNumSeqsAndMaxWaitingBoundTheQueues) {
  Scheduler s(opts(100, /*max_seqs=*/2, /*max_waiting=*/2), KVBlockManager(100, 4));
  ASSERT_TRUE(s.add(0, iota(3)).isOk());
  ASSERT_TRUE(s.add(1, iota(3)).isOk());
  const Status full = s.add(2, iota(3));
  EXPECT_EQ(full.code(), DS_RESOURCE_EXHAUSTED);
  EXPECT_NE(full.message().find("max_waiting 2"), std::string::npos) << full.message();
  EXPECT_FALSE(s.contains(2));
  SchedulerOutput out = s.schedule();
  EXPECT_EQ(out.seqs.size(), 2u);
  ASSERT_TRUE(s.add(2, iota(3)).isOk());  // room again: both moved to running
  ASSERT_TRUE(s.add(3, iota(3)).isOk());
  std::map<int64_t, Tokens> gen;
  runStep(s, out, &gen, 100);
  out = s.schedule();
  EXPECT_EQ(out.seqs.size(), 2u);  // max_num_seqs: 2 and 3 wait
  EXPECT_EQ(s.numRunning(), 2u);
  EXPECT_EQ(s.numWaiting(), 2u);
  runStep(s, out, &gen, 2);  // 0 and 1 finish
  out = s.schedule();
  EXPECT_EQ(out.admitted, (std::vector<int64_t>{2, 3}));
}

TEST(SchedulerTest, LowerPriorityValueRunsFirstFifoAmongEquals) {
  Scheduler s(opts(100, /*max_seqs=*/1), KVBlockManager(100, 4));
  ASSERT_TRUE(s.add(0, iota(3), 5).isOk());
  ASSERT_TRUE(s.add(1, iota(3), 0).isOk());
  ASSERT_TRUE(s.add(2, iota(3), -1).isOk());
  ASSERT_TRUE(s.add(3, iota(3), 0).isOk());
  std::vector<int64_t> order;
  std::map<int64_t, Tokens> gen;
  while (s.numRunning() + s.numWaiting() > 0) {
    SchedulerOutput out = s.schedule();
    for (int64_t id : out.admitted) order.push_back(id);
    runStep(s, out, &gen, 1);
  }
  EXPECT_EQ(order, (std::vector<int64_t>{2, 1, 3, 0}));
}

TEST(SchedulerTest, PreemptsTheNewestAndResumesWithItsGeneratedTokens) {
  // 4 blocks of 4 tokens; two 6-token prompts take 2 blocks each.
  Scheduler s(opts(100), KVBlockManager(4, 4));
  ASSERT_TRUE(s.add(0, iota(6)).isOk());
  ASSERT_TRUE(s.add(1, iota(6, 50)).isOk());
  std::map<int64_t, Tokens> gen;
  SchedulerOutput out;
  for (int i = 0; i < 3; ++i) {  // prefill + 2 decodes: 9 known tokens each, 8 computed
    out = s.schedule();
    ASSERT_TRUE(out.preempted.empty()) << i;
    runStep(s, out, &gen, 100);
  }
  EXPECT_EQ(s.tokens(0).size(), 9u);
  // Request 0 needs a third block for its 9th token: the newest (1) goes back to waiting.
  out = s.schedule();
  EXPECT_EQ(out.preempted, (std::vector<int64_t>{1}));
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].id, 0);
  EXPECT_TRUE(out.admitted.empty());  // no admission in a step that preempted
  EXPECT_FALSE(s.isRunning(1));
  EXPECT_EQ(s.computed(1), 0);
  EXPECT_EQ(s.tokens(1).size(), 9u);  // prompt + 3 generated, the last one pending
  EXPECT_EQ(s.blocks().freeBlocks(), 1);
  EXPECT_EQ(s.counters().preemptions, 1);
  runStep(s, out, &gen, 4);  // 0 finishes (4 tokens)
  out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.admitted, (std::vector<int64_t>{1}));
  EXPECT_EQ(out.seqs[0].start, 0);  // recompute from scratch (no prefix cache here)
  EXPECT_EQ(out.seqs[0].take, 9);
  EXPECT_TRUE(out.seqs[0].sample);
  EXPECT_EQ(s.counters().recomputed_tokens, 8);
}

TEST(SchedulerTest, TheNewestPreemptsItselfWhenNothingNewerRuns) {
  Scheduler s(opts(100), KVBlockManager(3, 4));
  ASSERT_TRUE(s.add(0, iota(5)).isOk());  // 2 blocks, room to 8 tokens
  ASSERT_TRUE(s.add(1, iota(3, 9)).isOk());  // 1 block, room to 4 tokens
  std::map<int64_t, Tokens> gen;
  runStep(s, s.schedule(), &gen, 100);  // 0: 6 known, 1: 4 known
  runStep(s, s.schedule(), &gen, 100);  // 0: 7, 1: 5 known
  SchedulerOutput out = s.schedule();  // 1 needs a second block: it is the newest
  EXPECT_EQ(out.preempted, (std::vector<int64_t>{1}));
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].id, 0);
  EXPECT_TRUE(s.checkInvariants().isOk());
}

TEST(SchedulerTest, AbortFreesBlocksAtOnce) {
  Scheduler s(opts(100), KVBlockManager(10, 4));
  ASSERT_TRUE(s.add(0, iota(9)).isOk());
  ASSERT_TRUE(s.add(1, iota(9)).isOk());
  std::map<int64_t, Tokens> gen;
  runStep(s, s.schedule(), &gen, 100);
  ASSERT_TRUE(s.add(2, iota(3)).isOk());
  EXPECT_EQ(s.blocks().freeBlocks(), 4);
  ASSERT_TRUE(s.abort(0).isOk());
  EXPECT_EQ(s.blocks().freeBlocks(), 7);
  EXPECT_FALSE(s.contains(0));
  ASSERT_TRUE(s.abort(2).isOk());  // waiting
  EXPECT_EQ(s.abort(0).code(), DS_NOT_FOUND);
  EXPECT_EQ(s.abort(42).code(), DS_NOT_FOUND);
  EXPECT_TRUE(s.checkInvariants().isOk());
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].id, 1);
}

TEST(SchedulerTest, AdmissionTakesCachedPrefixBlocksAndComputesTheLastToken) {
  Scheduler s(opts(100), KVBlockManager(10, 4, /*prefix_caching=*/true));
  ASSERT_TRUE(s.add(0, iota(10)).isOk());
  std::map<int64_t, Tokens> gen;
  runStep(s, s.schedule(), &gen, 1);  // finishes: blocks [1..4] [5..8] stay cached
  EXPECT_EQ(s.blocks().cachedBlocks(), 2);
  Tokens shared = iota(8);
  shared.push_back(99);
  ASSERT_TRUE(s.add(1, shared).isOk());
  ASSERT_TRUE(s.add(2, iota(8)).isOk());  // exactly two full blocks: the last token is computed
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(out.seqs[0].start, 8);
  EXPECT_EQ(out.seqs[0].take, 1);
  EXPECT_EQ(out.seqs[1].start, 4);
  EXPECT_EQ(out.seqs[1].take, 4);
  EXPECT_EQ(s.blocks().blockTable(1)[0], s.blocks().blockTable(2)[0]);
  EXPECT_EQ(s.blocks().refCount(s.blocks().blockTable(1)[0]), 2);
  EXPECT_EQ(s.counters().prompt_tokens, 10 + 9 + 8);
  EXPECT_EQ(s.counters().cached_prompt_tokens, 8 + 4);
  runStep(s, out, &gen, 1);
}

// Fake K/V: the token id each slot of each block holds, written by the steps and read back
// through the block table before every sample.
struct Simulation {
  explicit Simulation(Scheduler* s) : s(s), kv(s->blocks().numBlocks(), Tokens(s->blocks().blockSize(), -1)) {}
  Scheduler* s;
  std::vector<Tokens> kv;
  std::map<int64_t, Tokens> generated;
  std::map<int64_t, int64_t> max_new;
  int64_t samples = 0;

  void step() {
    const SchedulerOutput out = s->schedule();
    const KVBlockManager& b = s->blocks();
    const int64_t bs = b.blockSize();
    ASSERT_FALSE(out.seqs.empty());
    ASSERT_LE(out.num_tokens, s->options().max_step_tokens);
    for (const ScheduledSeq& q : out.seqs) {
      const Tokens& t = s->tokens(q.id);
      const std::vector<int32_t>& table = b.blockTable(q.id);
      ASSERT_LE(q.start + q.take, static_cast<int64_t>(t.size()));
      ASSERT_EQ(q.sample, q.start + q.take == static_cast<int64_t>(t.size()));
      for (int64_t p = q.start; p < q.start + q.take; ++p) {
        const int32_t blk = table.at(p / bs);
        ASSERT_EQ(b.refCount(blk), 1) << "write into a shared block";
        ASSERT_FALSE(b.isCached(blk)) << "write into a keyed block";
        kv[blk][p % bs] = t[p];
      }
    }
    ASSERT_TRUE(s->commit(out).isOk());
    for (const ScheduledSeq& q : out.seqs) {
      if (!q.sample) continue;
      const Tokens& t = s->tokens(q.id);
      const std::vector<int32_t>& table = b.blockTable(q.id);
      Tokens seen;
      for (size_t p = 0; p < t.size(); ++p) seen.push_back(kv[table.at(p / bs)][p % bs]);
      ASSERT_EQ(seen, t) << "request " << q.id << " reads K/V of other tokens";
      const int32_t tok = nextToken(seen);
      ++samples;
      Tokens& g = generated[q.id];
      g.push_back(tok);
      if (static_cast<int64_t>(g.size()) == max_new[q.id]) ASSERT_TRUE(s->finish(q.id).isOk());
      else ASSERT_TRUE(s->appendToken(q.id, tok).isOk());
    }
    ASSERT_TRUE(s->checkInvariants().isOk()) << s->checkInvariants().toString();
  }
};

Tokens alone(Tokens history, int64_t n) {
  Tokens out;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(nextToken(history));
    history.push_back(out.back());
  }
  return out;
}

void simulate(bool prefix_caching, uint64_t seed) {
  std::mt19937_64 rng(seed);
  constexpr int64_t kBlocks = 24, kBlockSize = 4;
  Scheduler s(opts(16, 6), KVBlockManager(kBlocks, kBlockSize, prefix_caching));
  Simulation sim(&s);
  const std::vector<Tokens> prefixes = {iota(9, 100), iota(13, 200), iota(4, 300)};
  std::map<int64_t, Tokens> prompts;
  std::set<int64_t> aborted;
  int64_t next = 0;
  for (int round = 0; round < 400; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    if (rng() % 3 == 0 && s.numWaiting() < 8) {
      Tokens p = prefixes[rng() % prefixes.size()];
      const int extra = static_cast<int>(rng() % 10);
      for (int i = 0; i < extra; ++i) p.push_back(static_cast<int32_t>(rng() % 5));
      const int64_t n = 1 + static_cast<int64_t>(rng() % 30);
      if (static_cast<int64_t>(p.size()) + n > kBlocks * kBlockSize) continue;
      ASSERT_TRUE(s.add(next, p, static_cast<int>(rng() % 2)).isOk());
      prompts[next] = p;
      sim.max_new[next] = n;
      ++next;
    }
    if (rng() % 40 == 0 && !prompts.empty()) {
      const int64_t victim = static_cast<int64_t>(rng() % next);
      if (s.contains(victim)) {
        const int64_t before = s.blocks().freeBlocks();
        const bool held = s.isRunning(victim);
        ASSERT_TRUE(s.abort(victim).isOk());
        if (held) {
          EXPECT_GE(s.blocks().freeBlocks(), before);
        }
        aborted.insert(victim);
      }
    }
    if (s.numRunning() + s.numWaiting() > 0) {
      ASSERT_NO_FATAL_FAILURE(sim.step());
    }
  }
  while (s.numRunning() + s.numWaiting() > 0) ASSERT_NO_FATAL_FAILURE(sim.step());
  EXPECT_EQ(s.blocks().usedBlocks(), 0);
  int64_t completed = 0;
  for (const auto& [id, p] : prompts) {
    if (aborted.count(id)) continue;
    ++completed;
    EXPECT_EQ(sim.generated[id], alone(p, sim.max_new[id])) << "request " << id;
  }
  EXPECT_GT(completed, 50);
  EXPECT_GT(s.counters().preemptions, 10);  // the walk must exercise preemption
  if (prefix_caching) {
    EXPECT_GT(s.counters().cached_prompt_tokens, 0);
  }
}

TEST(SchedulerTest, SimulationUnderPreemptionEqualsRunsAlone) { simulate(false, 7); }
TEST(SchedulerTest, SimulationWithPrefixCachingEqualsRunsAlone) {
  for (uint64_t seed : {1, 2, 3}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    simulate(true, seed);
  }
}

}  // namespace
}  // namespace ds

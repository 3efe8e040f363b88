// Scheduler: which requests run in the next step and how many tokens each computes, over the
// paged KV blocks. Plain data (no model, no device): the engine runs what it decides.
#pragma once

#include <cstdint>
#include <set>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "engine/kv_blocks.h"

namespace ds {

struct SchedulerOptions {
  int64_t max_step_tokens = 512;  // token budget of one step (prefills are chunked to fit)
  int64_t max_num_seqs = 256;     // most running sequences (vLLM's --max-num-seqs)
  int64_t max_waiting = 0;        // most waiting requests add() accepts; 0: no bound
};

// One sequence's share of a step: tokens [start, start + take) of its known tokens.
struct ScheduledSeq {
  int64_t id = 0;
  int64_t start = 0;
  int64_t take = 0;
  bool sample = false;  // the chunk ends at the last known token: its last row is sampled
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;  // batch order: running first (by priority, arrival), then admitted
  std::vector<int64_t> preempted;  // moved back to waiting this step, blocks released
  std::vector<int64_t> admitted;   // moved from waiting to running this step (resumes included)
  int64_t num_tokens = 0;
};

struct SchedulerCounters {
  int64_t preemptions = 0;          // total
  int64_t prompt_tokens = 0;        // prompt tokens of requests admitted for the first time
  int64_t cached_prompt_tokens = 0; // of those, the tokens taken from the prefix cache
  int64_t recomputed_tokens = 0;    // tokens prefilled again after a preemption
};

// Each step: (1) capacity: the running requests, in (priority, arrival) order, each get
// blocks for their next chunk; when the pool is short, the newest running request (largest
// (priority, arrival)) not yet in this step is preempted by recompute: its blocks are released
// (full ones stay in the prefix cache) and it returns to the waiting queue with all its
// tokens, generated ones included, to be prefilled again. If the request itself is the
// newest, it is the one preempted. (2) admission, only in a step that preempted nothing:
// waiting requests in (priority, arrival) order join while a sequence slot, token budget and
// blocks (after the prefix cache's hits) remain; the first that does not fit stops admission
// (no overtaking, so a preempted request is always at the front of its priority). (3) the
// micro-batch: each scheduled request's chunk is min(its pending tokens, budget left).
// A sequence's known tokens are its prompt, then every sampled token (appendToken); `computed`
// of them have K/V in the cache. A chunk that reaches the last known token is sampled once;
// a resumed request reaches it only after re-prefilling everything, so no token is drawn or
// emitted twice.
class Scheduler {
 public:
  Scheduler(const SchedulerOptions& options, KVBlockManager blocks);

  // Queues a request (lower priority value runs first; FIFO among equals). RESOURCE_EXHAUSTED
  // when max_waiting requests are already waiting; FAILED_PRECONDITION for a known id.
  Status add(int64_t id, std::vector<int32_t> prompt, int priority = 0);
  // Removes a running or waiting request and frees its blocks now; NOT_FOUND if unknown.
  Status abort(int64_t id);
  // Removes a request that finished (after its last token), freeing its blocks.
  Status finish(int64_t id);

  SchedulerOutput schedule();
  // The step ran: every scheduled sequence's computed count advances by its chunk and blocks
  // that became full are committed to the prefix cache.
  Status commit(const SchedulerOutput& out);
  // A sampled token joins the sequence's known tokens (pending until the next step).
  Status appendToken(int64_t id, int32_t token);

  bool contains(int64_t id) const { return reqs_.count(id) != 0; }
  bool isRunning(int64_t id) const;
  const std::vector<int32_t>& tokens(int64_t id) const;
  int64_t computed(int64_t id) const;
  size_t numRunning() const { return running_.size(); }
  size_t numWaiting() const { return waiting_.size(); }
  const SchedulerCounters& counters() const { return counters_; }
  const KVBlockManager& blocks() const { return blocks_; }
  const SchedulerOptions& options() const { return options_; }

  // Block manager invariants plus: every request is running xor waiting; a waiting request
  // holds no blocks; a running one holds blocks for at least its computed tokens.
  Status checkInvariants() const;

 private:
  struct Key {
    int priority;
    int64_t arrival;
    bool operator<(const Key& o) const {
      return priority != o.priority ? priority < o.priority : arrival < o.arrival;
    }
  };
  struct Request {
    Key key;
    std::vector<int32_t> tokens;  // prompt, then sampled tokens
    int64_t prompt_len = 0;
    int64_t computed = 0;
    bool running = false;
    bool ever_admitted = false;
    bool preempted = false;       // since its last admission
  };
  void preempt(int64_t id, SchedulerOutput* out);
  bool tryAdmit(int64_t id, Request& r, int64_t budget, SchedulerOutput* out);
  void remove(int64_t id);

  SchedulerOptions options_;
  KVBlockManager blocks_;
  std::unordered_map<int64_t, Request> reqs_;
  std::set<std::pair<Key, int64_t>> running_, waiting_;
  int64_t next_arrival_ = 0;
  SchedulerCounters counters_;
};

}  // namespace ds

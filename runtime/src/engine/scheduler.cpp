// Scheduler: capacity (blocks, preemption by recompute), admission (priority, FIFO, prefix
// cache hits) and the token-budget micro-batch. See scheduler.h and docs/runtime.md.
#include "engine/scheduler.h"

#include <algorithm>
#include <iterator>
#include <string>

namespace ds {
namespace {

std::string reqName(int64_t id) { return "scheduler: request " + std::to_string(id); }

}  // namespace

Scheduler::Scheduler(const SchedulerOptions& options, KVBlockManager blocks)
    : options_(options), blocks_(std::move(blocks)) {}

Status Scheduler::add(int64_t id, std::vector<int32_t> prompt, int priority) {
  if (reqs_.count(id)) return Status(DS_FAILED_PRECONDITION, reqName(id) + " is already queued");
  if (prompt.empty()) return invalidArgument(reqName(id) + " has no tokens");
  if (options_.max_waiting > 0 && static_cast<int64_t>(waiting_.size()) >= options_.max_waiting)
    return Status(DS_RESOURCE_EXHAUSTED,
                  "the waiting queue is full (" + std::to_string(waiting_.size()) +
                      " requests waiting, max_waiting " + std::to_string(options_.max_waiting) +
                      "); retry later");
  Request r;
  r.key = Key{priority, next_arrival_++};
  r.prompt_len = static_cast<int64_t>(prompt.size());
  r.tokens = std::move(prompt);
  waiting_.emplace(r.key, id);
  reqs_.emplace(id, std::move(r));
  return Status::ok();
}

void Scheduler::remove(int64_t id) {
  auto it = reqs_.find(id);
  if (it == reqs_.end()) return;
  (it->second.running ? running_ : waiting_).erase({it->second.key, id});
  blocks_.release(id);  // a no-op for a waiting request (it holds none)
  reqs_.erase(it);
}

Status Scheduler::abort(int64_t id) {
  if (!reqs_.count(id)) return notFound(reqName(id) + " is neither running nor waiting");
  remove(id);
  return Status::ok();
}

Status Scheduler::finish(int64_t id) {
  auto it = reqs_.find(id);
  if (it == reqs_.end()) return notFound(reqName(id) + " is neither running nor waiting");
  DS_RETURN_IF_ERROR(blocks_.commitFull(id, it->second.tokens, it->second.computed));
  remove(id);
  return Status::ok();
}

bool Scheduler::isRunning(int64_t id) const {
  auto it = reqs_.find(id);
  return it != reqs_.end() && it->second.running;
}

const std::vector<int32_t>& Scheduler::tokens(int64_t id) const {
  static const std::vector<int32_t> kEmpty;
  auto it = reqs_.find(id);
  return it == reqs_.end() ? kEmpty : it->second.tokens;
}

int64_t Scheduler::computed(int64_t id) const {
  auto it = reqs_.find(id);
  return it == reqs_.end() ? 0 : it->second.computed;
}

void Scheduler::preempt(int64_t id, SchedulerOutput* out) {
  Request& r = reqs_.at(id);
  // Its full blocks were committed after the step that filled them; releasing keeps them in
  // the prefix cache, so the re-prefill may find them there.
  blocks_.release(id);
  running_.erase({r.key, id});
  r.running = false;
  r.preempted = true;
  r.computed = 0;
  waiting_.emplace(r.key, id);
  out->preempted.push_back(id);
  ++counters_.preemptions;
}

bool Scheduler::tryAdmit(int64_t id, Request& r, int64_t budget, SchedulerOutput* out) {
  const int64_t known = static_cast<int64_t>(r.tokens.size());
  // At least the last known token is computed, so the step yields its logits.
  const KVBlockManager::PrefixMatch match = blocks_.matchPrefix(r.tokens, known - 1);
  const int64_t start = static_cast<int64_t>(match.blocks.size()) * blocks_.blockSize();
  const int64_t pending = known - start;
  const int64_t take = std::min(pending, budget);
  if (take <= 0 || !blocks_.canReserveWithPrefix(match, start + take)) return false;
  if (!blocks_.addSequence(id).isOk() || !blocks_.acquirePrefix(id, match).isOk() ||
      !blocks_.reserve(id, start + take).isOk()) {
    blocks_.release(id);  // unreachable after the checks above; leaves the request waiting
    return false;
  }
  if (!r.ever_admitted) {
    counters_.prompt_tokens += r.prompt_len;
    counters_.cached_prompt_tokens += std::min(start, r.prompt_len);
  } else if (r.preempted) {
    counters_.recomputed_tokens += known - 1 - start;
  }
  r.ever_admitted = true;
  r.preempted = false;
  r.running = true;
  r.computed = start;
  waiting_.erase({r.key, id});
  running_.emplace(r.key, id);
  out->admitted.push_back(id);
  out->seqs.push_back({id, start, take, take == pending});
  out->num_tokens += take;
  return true;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = options_.max_step_tokens;
  // (1) Capacity for the running requests, preempting the newest when blocks run out.
  for (auto it = running_.begin(); it != running_.end() && budget > 0;) {
    const int64_t id = it->second;
    Request& r = reqs_.at(id);
    const int64_t pending = static_cast<int64_t>(r.tokens.size()) - r.computed;
    const int64_t take = std::min(pending, budget);
    if (take <= 0) {
      ++it;
      continue;
    }
    bool self = false;
    while (!blocks_.canReserve(id, r.computed + take)) {
      const int64_t victim = std::prev(running_.end())->second;  // never one already scheduled
      self = victim == id;
      preempt(victim, &out);
      if (self) break;
    }
    if (self) break;  // it was the newest: nothing after it is running
    if (!blocks_.reserve(id, r.computed + take).isOk()) break;  // unreachable: canReserve held
    out.seqs.push_back({id, r.computed, take, take == pending});
    out.num_tokens += take;
    budget -= take;
    ++it;
  }
  // (2) Admission in (priority, arrival) order, head of line first; none after a preemption.
  if (out.preempted.empty()) {
    while (!waiting_.empty() && budget > 0 &&
           static_cast<int64_t>(running_.size()) < options_.max_num_seqs) {
      const int64_t id = waiting_.begin()->second;
      if (!tryAdmit(id, reqs_.at(id), budget, &out)) break;
      budget -= out.seqs.back().take;
    }
  }
  return out;
}

Status Scheduler::commit(const SchedulerOutput& out) {
  for (const ScheduledSeq& s : out.seqs) {
    auto it = reqs_.find(s.id);
    if (it == reqs_.end() || !it->second.running) continue;  // aborted since
    Request& r = it->second;
    if (r.computed != s.start)
      return internalError(reqName(s.id) + " committed at " + std::to_string(s.start) +
                           " but has " + std::to_string(r.computed) + " tokens computed");
    r.computed = s.start + s.take;
    DS_RETURN_IF_ERROR(blocks_.commitFull(s.id, r.tokens, r.computed));
  }
  return Status::ok();
}

Status Scheduler::appendToken(int64_t id, int32_t token) {
  auto it = reqs_.find(id);
  if (it == reqs_.end()) return notFound(reqName(id) + " is neither running nor waiting");
  it->second.tokens.push_back(token);
  return Status::ok();
}

Status Scheduler::checkInvariants() const {
  DS_RETURN_IF_ERROR(blocks_.checkInvariants());
  if (running_.size() + waiting_.size() != reqs_.size())
    return internalError("scheduler: running + waiting != requests");
  if (static_cast<int64_t>(running_.size()) > std::max<int64_t>(options_.max_num_seqs, 0))
    return internalError("scheduler: more running sequences than max_num_seqs");
  if (blocks_.numSequences() != static_cast<int64_t>(running_.size()))
    return internalError("scheduler: the block manager holds " +
                         std::to_string(blocks_.numSequences()) + " sequences for " +
                         std::to_string(running_.size()) + " running requests");
  for (const auto& [id, r] : reqs_) {
    const auto& queue = r.running ? running_ : waiting_;
    if (!queue.count({r.key, id}))
      return internalError(reqName(id) + " is missing from its queue");
    if (r.computed < 0 || r.computed > static_cast<int64_t>(r.tokens.size()))
      return internalError(reqName(id) + " has " + std::to_string(r.computed) + " of " +
                           std::to_string(r.tokens.size()) + " tokens computed");
    if (!r.running && (r.computed != 0 || blocks_.hasSequence(id)))
      return internalError(reqName(id) + " waits but holds blocks or computed tokens");
    if (r.running && blocks_.capacityTokens(id) < r.computed)
      return internalError(reqName(id) + " has more tokens computed than blocks hold");
  }
  return Status::ok();
}

}  // namespace ds

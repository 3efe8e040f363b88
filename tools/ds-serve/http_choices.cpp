// OpenAI's `n` (n > 1 completions of one prompt): n jobs of one completion each, submitted
// together (the engine admits them into the same steps; the prefix cache shares the prompt's
// full blocks once they are computed), answered as one response with choices 0..n-1. Choice i
// samples with seed + i when the request has a seed (the Session's submitN rule), else with the
// server's own seeds, so the choices differ. Streamed: every chunk names its choice's index.
#include <algorithm>
#include <chrono>
#include <ctime>

#include "http_server.h"
#include "http_util.h"

namespace ds::serve {

namespace {

// One choice's job and what it produced so far.
struct Choice {
  std::shared_ptr<Job> job;
  std::string text;
  std::vector<TokenLogprob> logprobs;
  int64_t text_offset = 0;
  bool done = false;
  std::optional<Finish> finish;
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// The choice objects of a response, each with its index (the builders write index 0).
json withIndex(json out, size_t index) {
  if (out.contains("choices") && !out["choices"].empty()) out["choices"][0]["index"] = index;
  return out;
}

struct ChoicesStream {
  ParsedRequest request;
  std::vector<Choice> choices;
  std::string id, model;
  int64_t created = 0;
  bool opened = false, finished = false;
  std::chrono::steady_clock::time_point last_write;
};

}  // namespace

void HttpServer::generateChoices(ParsedRequest r, httplib::Response& res) {
  const size_t n = static_cast<size_t>(r.n);
  std::vector<Choice> choices(n);
  for (size_t i = 0; i < n; ++i) {
    ParsedRequest one = r;
    one.n = 1;
    if (r.seed) one.seed = *r.seed + i;
    choices[i].job = std::make_shared<Job>(std::move(one));
  }
  auto cancelAll = [&] {
    for (Choice& c : choices) core_.cancel(c.job);
  };
  for (Choice& c : choices)
    if (!core_.submit(c.job)) {
      cancelAll();
      metrics_.request(Outcome::kRejected);
      return sendError(res, httpError(503, "the server is shutting down", "shutting_down"));
    }
  enter();
  // Admission of each (the engine thread); the first refusal answers for all.
  std::vector<Job::Update> first(n);
  for (size_t i = 0; i < n; ++i) {
    do first[i] = choices[i].job->take(std::chrono::seconds(1));
    while (first[i].state == Job::State::kPending);
  }
  for (size_t i = 0; i < n; ++i)
    if (first[i].error) {
      cancelAll();
      if (first[i].error->status == 429) res.set_header("Retry-After", "1");
      sendError(res, *first[i].error);
      return leave();
    }
  auto absorb = [](Choice& c, Job::Update& u) {
    c.text += u.text;
    c.logprobs.insert(c.logprobs.end(), u.logprobs.begin(), u.logprobs.end());
    c.prompt_tokens = u.prompt_tokens;
    if (u.state == Job::State::kDone) {
      c.done = true;
      c.finish = u.finish;
      c.completion_tokens = u.completion_tokens;
    }
  };
  const std::string kind = r.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-";

  if (!r.stream) {
    std::optional<ApiError> error;
    for (size_t i = 0; i < n; ++i) {
      Job::Update u = first[i];
      absorb(choices[i], u);
      while (!choices[i].done) {
        u = choices[i].job->take(std::chrono::seconds(1));
        absorb(choices[i], u);
      }
      if (u.error && !error) error = u.error;
    }
    if (error) {
      sendError(res, *error);
      return leave();
    }
    Usage usage{choices[0].prompt_tokens, 0};
    json all = json::array();
    for (size_t i = 0; i < n; ++i) usage.completion_tokens += choices[i].completion_tokens;
    json out;
    for (size_t i = 0; i < n; ++i) {
      json one = completionResponse(r, "", 0, "", choices[i].text, *choices[i].finish, usage,
                                    choices[i].logprobs);
      all.push_back(withIndex(one, i)["choices"][0]);
      if (i == 0) out = std::move(one);
    }
    out["id"] = newId(kind.c_str());
    out["created"] = static_cast<int64_t>(std::time(nullptr));
    out["model"] = options_.model_names.front();
    out["choices"] = std::move(all);
    res.set_content(dumpJson(out), kJson);
    return leave();
  }

  auto st = std::make_shared<ChoicesStream>();
  st->request = r;
  st->choices = std::move(choices);
  st->id = newId(kind.c_str());
  st->model = options_.model_names.front();
  st->created = std::time(nullptr);
  st->last_write = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) absorb(st->choices[i], first[i]);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto provider = [this, st](size_t, httplib::DataSink& sink) -> bool {
    const ParsedRequest& r = st->request;
    auto write = [&](const std::string& s) {
      st->last_write = std::chrono::steady_clock::now();
      if (sink.write(s.data(), s.size())) return true;
      for (Choice& c : st->choices) core_.cancel(c.job);  // the client is gone
      return false;
    };
    auto chunk = [&](size_t i, const std::string& text, std::optional<Finish> finish, bool role,
                     const std::vector<TokenLogprob>& lp) {
      return write(sseEvent(withIndex(streamChunk(r, st->id, st->created, st->model, text, finish,
                                                  role, lp, st->choices[i].text_offset), i)));
    };
    if (!st->opened) {
      st->opened = true;
      for (size_t i = 0; i < st->choices.size(); ++i) {
        Choice& c = st->choices[i];
        if (r.endpoint == Endpoint::kChat && !chunk(i, "", std::nullopt, true, {})) return false;
        // What came with the admission (usually nothing yet).
        if ((!c.text.empty() || !c.logprobs.empty()) && !chunk(i, c.text, std::nullopt, false, c.logprobs))
          return false;
        c.text_offset += static_cast<int64_t>(c.text.size());
        c.logprobs.clear();
        if (c.done && !chunk(i, "", c.finish, false, {})) return false;
      }
    }
    bool all_done = true;
    for (size_t i = 0; i < st->choices.size(); ++i) {
      Choice& c = st->choices[i];
      if (c.done) continue;
      Job::Update u = c.job->take(std::chrono::milliseconds(20));
      if (u.error) {
        for (Choice& other : st->choices) core_.cancel(other.job);
        if (!write(sseEvent(u.error->body())) || !write("data: [DONE]\n\n")) return false;
        st->finished = true;
        sink.done();
        return true;
      }
      if ((!u.text.empty() || !u.logprobs.empty()) && !chunk(i, u.text, std::nullopt, false, u.logprobs))
        return false;
      c.text_offset += static_cast<int64_t>(u.text.size());
      c.prompt_tokens = u.prompt_tokens ? u.prompt_tokens : c.prompt_tokens;
      if (u.state == Job::State::kDone) {
        c.done = true;
        c.finish = u.finish;
        c.completion_tokens = u.completion_tokens;
        if (!chunk(i, "", c.finish, false, {})) return false;
      }
      all_done = all_done && c.done;
    }
    if (!all_done) {
      // Queued or slow: an SSE comment now and then, which also finds clients that left.
      if (std::chrono::steady_clock::now() - st->last_write > std::chrono::seconds(2))
        return write(": keep-alive\n\n");
      return true;
    }
    if (r.include_usage) {
      Usage usage{st->choices[0].prompt_tokens, 0};
      for (const Choice& c : st->choices) usage.completion_tokens += c.completion_tokens;
      if (!write(sseEvent(usageChunk(r, st->id, st->created, st->model, usage)))) return false;
    }
    if (!write("data: [DONE]\n\n")) return false;
    st->finished = true;
    sink.done();
    return true;
  };
  auto releaser = [this, st](bool) {
    if (!st->finished)
      for (Choice& c : st->choices) core_.cancel(c.job);
    leave();
  };
  res.set_chunked_content_provider("text/event-stream", provider, releaser);
}

}  // namespace ds::serve

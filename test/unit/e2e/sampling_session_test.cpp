// Sampling options end to end on stories260K: batch invariance with mixed options in one batch,
// logprobs on the events that asked for them only, stop strings through the Session (spanning
// tokens, at the start, included), n completions with their seed rule.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "api/session.h"
#include "ds/runtime.h"
#include "e2e_util.h"

namespace ds::test {
namespace {

struct Stream {  // one request's events
  std::vector<int32_t> tokens;
  std::vector<std::string> pieces;
  std::string text;
  std::vector<TokenLogprobs> logprobs;
  FinishReason finish = FinishReason::kNone;
  int events_with_logprobs = 0;
  int64_t group = -1;
  int32_t index = -1;
};

std::unique_ptr<Session> makeSession(const artifact::Artifact& art) {
  auto s = Session::create(art, EngineOptions{});
  EXPECT_TRUE(s.isOk()) << s.status().toString();
  return s.isOk() ? std::move(s).value() : nullptr;
}

std::map<int64_t, Stream> drain(Session& s) {
  std::map<int64_t, Stream> runs;
  std::vector<TextEvent> events;
  while (s.hasWork()) {
    events.clear();
    Status st = s.step(&events);
    EXPECT_TRUE(st.isOk()) << st.toString();
    if (!st.isOk()) break;
    for (TextEvent& e : events) {
      Stream& r = runs[e.request];
      EXPECT_EQ(r.finish, FinishReason::kNone) << "event after the finish";
      r.tokens.push_back(e.token);
      r.pieces.push_back(e.text);
      r.text += e.text;
      r.finish = e.finish;
      r.group = e.group;
      r.index = e.index;
      if (e.logprobs) {
        ++r.events_with_logprobs;
        r.logprobs.push_back(*e.logprobs);
      }
    }
  }
  return runs;
}

TextRequest textRequest(const std::string& prompt, int64_t n) {
  TextRequest r;
  r.prompt.text = prompt;
  r.max_new_tokens = n;
  r.ignore_eos = true;
  return r;
}

std::vector<SamplingParams> mixedOptions() {
  std::vector<SamplingParams> v(5);
  v[0].logprobs = 5;                  // greedy with logprobs (not plainGreedy)
  v[1].temperature = 0.9f;            // sampled, min-p and top-p, logprobs raw
  v[1].min_p = 0.05f;
  v[1].top_p = 0.95f;
  v[1].seed = 11;
  v[1].logprobs = 3;
  v[1].logprobs_raw = true;
  v[2].temperature = 1.1f;            // penalties
  v[2].presence_penalty = 1.0f;
  v[2].frequency_penalty = 0.5f;
  v[2].repetition_penalty = 1.1f;
  v[2].seed = 12;
  v[3].frequency_penalty = 2.0f;      // greedy with a penalty
  v[4].temperature = 0.0f;            // plain greedy next to the others
  return v;
}

TEST(SamplingE2E, MixedOptionsInOneBatchEqualEachAlone) {
  auto art = openArtifact("stories260K");
  ASSERT_NE(art, nullptr);
  const auto options = mixedOptions();
  const std::vector<std::string> prompts = {"Once upon a time", "Lily saw a big", "The sun",
                                            "One day, a little boy", "Tom"};
  auto batch = makeSession(*art);
  ASSERT_NE(batch, nullptr);
  std::vector<int64_t> ids;
  for (size_t i = 0; i < options.size(); ++i) {
    TextRequest r = textRequest(prompts[i], 24);
    r.sampling = options[i];
    auto id = batch->submit(r);
    ASSERT_TRUE(id.isOk()) << id.status().toString();
    ids.push_back(*id);
  }
  auto together = drain(*batch);
  for (size_t i = 0; i < options.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    auto alone_session = makeSession(*art);
    TextRequest r = textRequest(prompts[i], 24);
    r.sampling = options[i];
    auto id = alone_session->submit(r);
    ASSERT_TRUE(id.isOk());
    auto alone = drain(*alone_session);
    const Stream& a = alone[*id];
    const Stream& b = together[ids[i]];
    EXPECT_EQ(b.tokens.size(), 24u);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.text, b.text);
    const int want_lp = options[i].logprobs >= 0 ? 24 : 0;
    EXPECT_EQ(b.events_with_logprobs, want_lp);
    ASSERT_EQ(a.logprobs.size(), b.logprobs.size());
    for (size_t t = 0; t < a.logprobs.size(); ++t) {
      EXPECT_EQ(a.logprobs[t].logprob, b.logprobs[t].logprob) << t;  // bitwise
      ASSERT_EQ(b.logprobs[t].top.size(), static_cast<size_t>(options[i].logprobs));
      for (size_t k = 0; k < a.logprobs[t].top.size(); ++k) {
        EXPECT_EQ(a.logprobs[t].top[k].token, b.logprobs[t].top[k].token);
        EXPECT_EQ(a.logprobs[t].top[k].logprob, b.logprobs[t].top[k].logprob);
      }
      EXPECT_LE(b.logprobs[t].logprob, 0.0f);
      if (options[i].temperature == 0.0f) {  // greedy: the chosen token is the top one
        EXPECT_EQ(b.logprobs[t].top[0].token, b.tokens[t]);
        EXPECT_EQ(b.logprobs[t].top[0].logprob, b.logprobs[t].logprob);
      }
    }
  }
  // The options matter: the penalised greedy request differs from plain greedy on its prompt.
  auto plain = makeSession(*art);
  auto id = plain->submit(textRequest(prompts[3], 24));
  ASSERT_TRUE(id.isOk());
  EXPECT_NE(drain(*plain)[*id].tokens, together[ids[3]].tokens);
}

// The greedy story from "Once upon a time", its token pieces and text.
Stream greedyStory(const artifact::Artifact& art, int64_t n) {
  auto s = makeSession(art);
  auto id = s->submit(textRequest("Once upon a time", n));
  EXPECT_TRUE(id.isOk());
  return drain(*s)[*id];
}

TEST(SamplingE2E, StopStringsThroughTheSession) {
  auto art = openArtifact("stories260K");
  ASSERT_NE(art, nullptr);
  const Stream full = greedyStory(*art, 40);
  ASSERT_EQ(full.tokens.size(), 40u);
  // A stop string spanning two tokens: the last 2 bytes of one piece and the first 2 of the next.
  size_t k = 5;
  while (k + 1 < full.pieces.size() && (full.pieces[k].size() < 2 || full.pieces[k + 1].size() < 2)) ++k;
  ASSERT_LT(k + 1, full.pieces.size());
  const std::string stop = full.pieces[k].substr(full.pieces[k].size() - 2) + full.pieces[k + 1].substr(0, 2);
  const size_t at = full.text.find(stop);
  ASSERT_NE(at, std::string::npos);

  for (bool include : {false, true}) {
    SCOPED_TRACE(include ? "include" : "exclude");
    auto s = makeSession(*art);
    TextRequest r = textRequest("Once upon a time", 40);
    r.stop = {"never-in-the-story", stop};
    r.include_stop_str_in_output = include;
    auto id = s->submit(r);
    ASSERT_TRUE(id.isOk()) << id.status().toString();
    Stream got = drain(*s)[*id];
    EXPECT_EQ(got.finish, FinishReason::kStop);
    EXPECT_EQ(got.text, full.text.substr(0, include ? at + stop.size() : at));
    // Ended at the token that completed the stop; the engine ended the request at once.
    size_t end = 0, tokens = 0;
    while (end < at + stop.size()) end += full.pieces[tokens++].size();
    EXPECT_EQ(got.tokens.size(), tokens);
    EXPECT_EQ(s->generated(*id).size(), tokens);
    EXPECT_FALSE(s->hasWork());
    EXPECT_EQ(s->numRunning(), 0u);
  }

  // A stop at the very start: no text at all.
  auto s = makeSession(*art);
  TextRequest r = textRequest("Once upon a time", 40);
  r.stop = {full.text.substr(0, 3)};
  auto id = s->submit(r);
  ASSERT_TRUE(id.isOk());
  Stream got = drain(*s)[*id];
  EXPECT_EQ(got.finish, FinishReason::kStop);
  EXPECT_EQ(got.text, "");
  // A stop that never occurs changes nothing.
  r.stop = {"zzzz-not-there"};
  id = s->submit(r);
  ASSERT_TRUE(id.isOk());
  got = drain(*s)[*id];
  EXPECT_EQ(got.finish, FinishReason::kLength);
  EXPECT_EQ(got.text, full.text);
  // Bad stop lists are refused by name.
  r.stop = {""};
  auto bad = s->submit(r);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("stop[0]"), std::string::npos);
}

TEST(SamplingE2E, NCompletionsUseSeedPlusIndex) {
  auto art = openArtifact("stories260K");
  ASSERT_NE(art, nullptr);
  auto s = makeSession(*art);
  TextRequest r = textRequest("Once upon a time", 16);
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 40;
  r.n = 3;
  auto ids = s->submitN(r);
  ASSERT_TRUE(ids.isOk()) << ids.status().toString();
  ASSERT_EQ(ids->size(), 3u);
  auto runs = drain(*s);
  std::set<std::vector<int32_t>> distinct;
  for (int i = 0; i < 3; ++i) {
    const Stream& got = runs[(*ids)[i]];
    EXPECT_EQ(got.group, (*ids)[0]);
    EXPECT_EQ(got.index, i);
    distinct.insert(got.tokens);
    // Completion i = a single request with seed 40 + i.
    auto single = makeSession(*art);
    TextRequest one = textRequest("Once upon a time", 16);
    one.sampling = r.sampling;
    one.sampling.seed = 40 + i;
    auto id = single->submit(one);
    ASSERT_TRUE(id.isOk());
    EXPECT_EQ(drain(*single)[*id].tokens, got.tokens) << i;
  }
  EXPECT_EQ(distinct.size(), 3u);
  r.n = 2;
  EXPECT_FALSE(s->submit(r).isOk());  // submit() takes one completion
  for (int n : {0, 17}) {
    r.n = n;
    auto bad = s->submitN(r);
    ASSERT_FALSE(bad.isOk());
    EXPECT_NE(bad.status().message().find("n must be in [1, 16]"), std::string::npos);
  }
  // A refused group leaves nothing running.
  r.n = 2;
  r.max_new_tokens = s->engine().kvCapacityTokens();
  EXPECT_FALSE(s->submitN(r).isOk());
  EXPECT_FALSE(s->hasWork());
}

// The C API's new request fields: stop strings (with include_stop_str_in_output) and the
// min-p / presence / frequency fields reach the session; defaults change nothing.
TEST(SamplingE2E, CApiStopStringsAndPenalties) {
  auto art = openArtifact("stories260K");
  ASSERT_NE(art, nullptr);
  const Stream full = greedyStory(*art, 30);
  const std::string stop = full.text.substr(full.text.find("named") , 5);
  ds_artifact_t a = nullptr;
  ASSERT_EQ(ds_artifact_open(artifactPath("stories260K").c_str(), &a), nullptr);
  ds_engine_options_t eo;
  ds_engine_options_initialize(&eo);
  ds_engine_t engine = nullptr;
  ASSERT_EQ(ds_engine_create(a, &eo, &engine), nullptr);
  ds_request_options_t req;
  ds_request_options_initialize(&req);
  EXPECT_EQ(req.min_p, 0.0f);
  EXPECT_EQ(req.stop, nullptr);
  req.max_new_tokens = 30;
  req.ignore_eos = 1;
  const char* stops[] = {stop.c_str()};
  int64_t plain = -1, stopped = -1, included = -1, penalised = -1;
  ASSERT_EQ(ds_engine_submit_text(engine, "Once upon a time", 0, &req, &plain), nullptr);
  req.stop = stops;
  req.stop_count = 1;
  ASSERT_EQ(ds_engine_submit_text(engine, "Once upon a time", 0, &req, &stopped), nullptr);
  req.include_stop_str_in_output = 1;
  ASSERT_EQ(ds_engine_submit_text(engine, "Once upon a time", 0, &req, &included), nullptr);
  req.stop_count = 0;
  req.presence_penalty = 1.5f;
  req.frequency_penalty = 1.0f;
  ASSERT_EQ(ds_engine_submit_text(engine, "Once upon a time", 0, &req, &penalised), nullptr);
  req.min_p = 1.5f;
  int64_t bad = -1;
  ds_status_t st = ds_engine_submit_text(engine, "Once upon a time", 0, &req, &bad);
  ASSERT_NE(st, nullptr);
  EXPECT_NE(std::string(ds_status_message(st)).find("min_p"), std::string::npos);
  ds_status_free(st);
  std::map<int64_t, std::string> text;
  std::map<int64_t, int> finish;
  std::vector<ds_token_event_t> events(8);
  while (ds_engine_has_work(engine)) {
    size_t n = 0;
    ASSERT_EQ(ds_engine_step(engine, events.data(), events.size(), &n), nullptr);
    for (size_t i = 0; i < n; ++i) {
      text[events[i].request].append(events[i].text, events[i].text_length);
      finish[events[i].request] = events[i].finish;
    }
  }
  EXPECT_EQ(text[plain], full.text);
  EXPECT_EQ(text[stopped], full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(finish[stopped], DS_FINISH_STOP);
  EXPECT_EQ(text[included], full.text.substr(0, full.text.find(stop) + stop.size()));
  EXPECT_NE(text[penalised], full.text);
  ds_engine_release(engine);
  ds_artifact_release(a);
}

}  // namespace
}  // namespace ds::test

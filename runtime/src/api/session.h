// Session: text in, text out over the Engine. Everything a front end (ds-run, the C ABI, the
// coming ds-serve) needs besides scheduling: the artifact's tokenizer and chat template,
// prompt rendering and encoding, stop ids, incremental detokenization of each request.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"
#include "template/chat_template.h"

namespace ds {

class ChatTemplate;
class IncrementalDetokenizer;
class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// A prompt as text: raw, or a conversation rendered by the artifact's chat template.
struct TextPrompt {
  std::string text;                   // raw text (or, with chat and no messages, the user turn)
  bool chat = false;                  // render through the chat template
  std::vector<ChatMessage> messages;  // chat: the conversation (empty: one user turn of `text`)
  bool add_bos = true;                // raw text: let the tokenizer add BOS (chat: the template does)
  // false: special-token text in the user's input is plain text, so it cannot inject control
  // tokens (raw text: all of it; chat: the messages' contents, while the template's own
  // special tokens still count). true is Hugging Face's default.
  bool parse_special = true;
};

// Limits of the text front end; every one is named in the error it gives.
struct SessionOptions {
  // Largest prompt (rendered text, or the messages before rendering) that is tokenized;
  // 0: 32 bytes per token of the engine's context (max_model_len), at least 64 KiB.
  uint64_t max_prompt_bytes = 0;
  ChatTemplateLimits chat_template_limits;  // time, output and memory budget of each render
};

struct TextRequest {
  TextPrompt prompt;
  std::vector<int32_t> prompt_ids;    // used instead of `prompt` when not empty
  SamplingParams sampling;
  int64_t max_new_tokens = 64;
  bool ignore_eos = false;            // else the tokenizer's stop ids end generation
  std::vector<int32_t> stop_token_ids;  // added to those
  // Stop strings (at most 16, each non-empty, <= 1024 bytes; need a tokenizer): generation
  // ends (finish kStop) as soon as the generated text contains one, also across tokens. The
  // event text ends just before it and never holds any of its bytes: text that could still
  // begin a stop string is held back until it cannot. generated() keeps every token, the last
  // one included. include_stop_str_in_output (vLLM): the text ends with the stop string.
  std::vector<std::string> stop;
  bool include_stop_str_in_output = false;
  // Completions of the prompt (1..16), for submitN(): completion i samples with seed
  // sampling.seed + i (mod 2^64). submit() takes n = 1 only.
  int n = 1;
};

// One generated token and the text it completes (often empty mid-character, or held back while
// it could begin a stop string; the rest is flushed on the finishing event). Text is empty
// without a tokenizer.
struct TextEvent {
  int64_t request = 0;
  int32_t token = 0;
  std::string text;
  FinishReason finish = FinishReason::kNone;
  std::optional<TokenLogprobs> logprobs;  // only when sampling.logprobs >= 0 (TokenEvent)
  int64_t group = 0;   // the first request of its submitN() group (itself after submit())
  int32_t index = 0;   // completion index within the group
};

class Session {
 public:
  // The artifact must outlive the session. An artifact without tokenizer files still makes a
  // session (token ids in and out); text calls then fail naming the artifact.
  static StatusOr<std::unique_ptr<Session>> create(const artifact::Artifact& artifact,
                                                   const EngineOptions& options,
                                                   const SessionOptions& session_options = {});
  ~Session();

  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  // The prompt as the model sees it: the chat template's rendering (or the raw text), then its
  // ids. INVALID_ARGUMENT for a prompt that encodes to no token.
  StatusOr<std::string> render(const TextPrompt& prompt) const;
  StatusOr<std::vector<int32_t>> encode(const TextPrompt& prompt) const;
  // Plain text through the tokenizer (add_special_tokens: BOS/EOS as the model's tokenizer
  // adds them); may be empty.
  StatusOr<std::vector<int32_t>> tokenize(const std::string& text, bool add_special_tokens) const;
  StatusOr<std::string> decode(const std::vector<int32_t>& ids) const;  // special tokens skipped

  StatusOr<int64_t> submit(const TextRequest& request);
  // request.n completions of one prompt (encoded once) as n engine requests, seeds seed + i;
  // returns their ids by index (ids[0] is the group). All or nothing: if one is refused, the
  // others are ended and the error returned. Their events carry group and index.
  StatusOr<std::vector<int64_t>> submitN(const TextRequest& request);
  // One engine step; appends an event per token produced.
  Status step(std::vector<TextEvent>* events);
  // Cancels a running or waiting request (Engine::abort); its text stream is dropped.
  Status abort(int64_t request);
  bool hasWork() const { return engine_->hasWork(); }
  size_t numRunning() const { return engine_->numRunning(); }
  size_t numRequests() const { return engine_->numRequests(); }  // running + waiting
  const std::vector<int32_t>& generated(int64_t request) const { return engine_->generated(request); }
  Engine& engine() { return *engine_; }

 private:
  Session() = default;
  Status needTokenizer() const;
  Status checkPromptSize(uint64_t bytes, const char* what) const;
  // Chat prompt with parse_special false: the template's text with special tokens, the
  // messages' contents (found verbatim in the rendering, in order) as plain text.
  StatusOr<std::vector<int32_t>> encodeChatContentsAsText(const std::string& rendered,
                                                          const TextPrompt& prompt) const;
  Status checkTextOptions(const TextRequest& request) const;
  StatusOr<int64_t> submitOne(const TextRequest& request, std::vector<int32_t> prompt,
                              int64_t group, int32_t index);

  const artifact::Artifact* artifact_ = nullptr;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Tokenizer> tokenizer_;        // null: the artifact carries none (or a broken one)
  std::string tokenizer_error_;                  // why the artifact's tokenizer did not load
  std::unique_ptr<ChatTemplate> chat_template_;  // null: no template (chat prompts fail)
  std::string template_error_;                   // why the template did not parse
  uint64_t max_prompt_bytes_ = 0;                // resolved SessionOptions::max_prompt_bytes
  struct Stream;  // per running request: detokenizer, stop strings, group (session.cpp)
  std::map<int64_t, std::unique_ptr<Stream>> streams_;
  std::vector<TokenEvent> token_events_;
};

}  // namespace ds

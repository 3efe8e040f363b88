// Session: text in, text out over the Engine. Everything a front end (ds-run, the C ABI, the
// coming ds-serve) needs besides scheduling: the artifact's tokenizer and chat template,
// prompt rendering and encoding, stop ids, incremental detokenization of each request.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"

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
};

struct TextRequest {
  TextPrompt prompt;
  std::vector<int32_t> prompt_ids;    // used instead of `prompt` when not empty
  SamplingParams sampling;
  int64_t max_new_tokens = 64;
  bool ignore_eos = false;            // else the tokenizer's stop ids end generation
  std::vector<int32_t> stop_token_ids;  // added to those
};

// One generated token and the text it completes (often empty mid-character; the rest of the
// text is flushed on the finishing event). Text is empty without a tokenizer.
struct TextEvent {
  int64_t request = 0;
  int32_t token = 0;
  std::string text;
  FinishReason finish = FinishReason::kNone;
};

class Session {
 public:
  // The artifact must outlive the session. An artifact without tokenizer files still makes a
  // session (token ids in and out); text calls then fail naming the artifact.
  static StatusOr<std::unique_ptr<Session>> create(const artifact::Artifact& artifact,
                                                   const EngineOptions& options);
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
  // One engine step; appends an event per token produced.
  Status step(std::vector<TextEvent>* events);
  bool hasWork() const { return engine_->hasWork(); }
  size_t numRunning() const { return engine_->numRunning(); }
  const std::vector<int32_t>& generated(int64_t request) const { return engine_->generated(request); }
  Engine& engine() { return *engine_; }

 private:
  Session() = default;
  Status needTokenizer() const;

  const artifact::Artifact* artifact_ = nullptr;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Tokenizer> tokenizer_;        // null: the artifact carries none (or a broken one)
  std::string tokenizer_error_;                  // why the artifact's tokenizer did not load
  std::unique_ptr<ChatTemplate> chat_template_;  // null: no template (chat prompts fail)
  std::string template_error_;                   // why the template did not parse
  std::map<int64_t, std::unique_ptr<IncrementalDetokenizer>> streams_;  // running requests
  std::vector<TokenEvent> token_events_;
};

}  // namespace ds

// The OpenAI wire format of ds-serve: request bodies parsed and validated into ParsedRequest
// (every field OpenAI or vLLM defines that we know, supported today or not), responses and
// stream chunks built from what the engine produced, and OpenAI-style error bodies.
// No engine types here: engine_adapter.* maps a ParsedRequest onto the Session (docs/serving.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ds::serve {

using json = nlohmann::json;

// An error answered as {"error": {"message", "type", "param", "code"}} with an HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
  json body() const;
};

ApiError badRequest(std::string message, std::string param = "", std::string code = "");
// A field this server parses but the engine cannot honour yet (docs/serving.md lists them).
ApiError notSupportedYet(const std::string& param, const std::string& what);

enum class Endpoint { kCompletions, kChat };

struct Message {
  std::string role;
  std::string content;
};

// One request to /v1/completions or /v1/chat/completions. Optional fields are unset when the
// body omits them or sends null.
struct ParsedRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;                   // empty: the default model
  // completions: text or token ids; chat: messages.
  std::string prompt_text;
  std::vector<int32_t> prompt_ids;
  bool prompt_is_ids = false;
  std::vector<Message> messages;

  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
  std::optional<int64_t> max_tokens;   // max_tokens / max_completion_tokens
  // Sampling (OpenAI defaults; vLLM's extensions top_k, min_p, repetition_penalty).
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;                   // 0 or -1: off
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  std::optional<uint64_t> seed;
  int64_t n = 1;
  std::vector<std::string> stop;       // stop strings
  bool include_stop_str_in_output = false;  // vLLM
  std::vector<int32_t> stop_token_ids; // vLLM
  bool ignore_eos = false;             // vLLM
  int64_t min_tokens = 0;              // vLLM
  // Log probabilities: completions `logprobs: k`; chat `logprobs: true` + `top_logprobs: k`.
  bool logprobs = false;
  int64_t top_logprobs = 0;
  bool echo = false;                   // completions
  // Fields that must keep their neutral value here (checked by parseRequest): best_of,
  // logit_bias, suffix, tools, tool_choice, response_format, ...
};

// Parses a request body. `body` must be a JSON object; unknown fields are refused (as OpenAI
// does: a typo such as "max_token" must not be silently ignored), see docs/serving.md.
// Returns the request or the 400 that explains what is wrong.
struct ParseResult {
  std::optional<ParsedRequest> request;
  ApiError error;
};
ParseResult parseRequest(Endpoint endpoint, const std::string& body);

enum class Finish { kStop, kLength };
const char* finishName(Finish f);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  json toJson() const;
};

// One generated token's log probability and its top alternatives, as token strings (the
// tokenizer's piece for each id; OpenAI's `token`) with their UTF-8 bytes.
struct TokenLogprob {
  std::string token;
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;
};

// OpenAI's logprobs object for `tokens` (null when the request did not ask): chat
// {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}, completions
// {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset} (offsets from `offset`).
json logprobsJson(const ParsedRequest& r, const std::vector<TokenLogprob>& tokens, int64_t offset = 0);

// The response of a finished non-streaming request.
json completionResponse(const ParsedRequest& r, const std::string& id, int64_t created,
                        const std::string& model, const std::string& text, Finish finish,
                        const Usage& usage, const std::vector<TokenLogprob>& logprobs = {});

// One streamed chunk. `finish` unset: a text delta; set: the last chunk of the choice. For chat,
// `role_only` makes the opening chunk (delta {"role": "assistant", "content": ""}).
json streamChunk(const ParsedRequest& r, const std::string& id, int64_t created,
                 const std::string& model, const std::string& text,
                 std::optional<Finish> finish, bool role_only = false,
                 const std::vector<TokenLogprob>& logprobs = {}, int64_t text_offset = 0);
// The closing usage chunk of stream_options.include_usage (choices: []).
json usageChunk(const ParsedRequest& r, const std::string& id, int64_t created,
                const std::string& model, const Usage& usage);

// "data: <json>\n\n"
std::string sseEvent(const json& j);

}  // namespace ds::serve

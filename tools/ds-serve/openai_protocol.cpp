// OpenAI request parsing (strict types and ranges, unknown fields refused) and response shapes.
#include "openai_protocol.h"

#include <cmath>
#include <set>

namespace ds::serve {

json ApiError::body() const {
  json e = {{"message", message}, {"type", type}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return json{{"error", e}};
}

ApiError badRequest(std::string message, std::string param, std::string code) {
  ApiError e;
  e.status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

ApiError notSupportedYet(const std::string& param, const std::string& what) {
  return badRequest("'" + param + "': " + what + " is not supported yet by this server",
                    param, "not_supported_yet");
}

namespace {

// Reads one field of the request object; every getter leaves `out` alone when the field is
// absent or null and records the first error.
class Fields {
 public:
  explicit Fields(const json& obj) : obj_(obj) {}
  const json* find(const char* key) {
    seen_.insert(key);
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  void fail(ApiError e) {
    if (!error_) error_ = std::move(e);
  }
  void typeError(const char* key, const char* want) {
    fail(badRequest(std::string("'") + key + "' must be " + want, key));
  }
  void getBool(const char* key, bool* out) {
    if (const json* v = find(key)) {
      if (v->is_boolean()) *out = v->get<bool>();
      else typeError(key, "a boolean");
    }
  }
  bool getInt(const char* key, int64_t lo, int64_t hi, int64_t* out) {
    const json* v = find(key);
    if (!v) return false;
    const std::string want = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (!v->is_number_integer()) { typeError(key, want.c_str()); return false; }
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      typeError(key, want.c_str());
      return false;
    }
    const int64_t x = v->get<int64_t>();
    if (x < lo || x > hi) {
      fail(badRequest("'" + std::string(key) + "' must be " + want + ", got " + std::to_string(x), key));
      return false;
    }
    *out = x;
    return true;
  }
  // lo_open: the lower bound itself is refused.
  void getReal(const char* key, double lo, double hi, double* out, bool lo_open = false) {
    const json* v = find(key);
    if (!v) return;
    char range[96];
    std::snprintf(range, sizeof range, "a number in %s%g, %g]", lo_open ? "(" : "[", lo, hi);
    if (!v->is_number()) { typeError(key, range); return; }
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo)) {
      fail(badRequest("'" + std::string(key) + "' must be " + range + ", got " + v->dump(), key));
      return;
    }
    *out = x;
  }
  void getString(const char* key, std::string* out) {
    if (const json* v = find(key)) {
      if (v->is_string()) *out = v->get<std::string>();
      else typeError(key, "a string");
    }
  }
  // A field this server does not implement: accepted only with its neutral value.
  void neutral(const char* key, bool (*is_neutral)(const json&), const char* what) {
    if (const json* v = find(key))
      if (!is_neutral(*v)) fail(notSupportedYet(key, what));
  }
  void ignore(const char* key) { seen_.insert(key); }
  void refuseUnknown() {
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      if (!seen_.count(it.key())) {
        fail(badRequest("Unrecognized request argument supplied: " + it.key(), it.key(),
                        "unknown_parameter"));
        return;
      }
  }
  std::optional<ApiError> error_;

 private:
  const json& obj_;
  std::set<std::string> seen_;
};

// obj[key] when obj is an object whose key holds a string, else "" (json::value() would throw
// on a key of another type).
std::string stringField(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

bool emptyContainer(const json& v) { return (v.is_object() || v.is_array()) && v.empty(); }
bool emptyString(const json& v) { return v.is_string() && v.get<std::string>().empty(); }
bool isNone(const json& v) { return v.is_string() && v.get<std::string>() == "none"; }
bool textFormat(const json& v) { return stringField(v, "type") == "text"; }
bool textModality(const json& v) { return v == json::array({"text"}); }
bool never(const json&) { return false; }
bool atMostOne(const json& v) { return v.is_number_integer() && v.get<int64_t>() == 1; }

bool readIds(const json& v, std::vector<int32_t>* out) {
  if (!v.is_array()) return false;
  for (const json& x : v) {
    if (!x.is_number_integer()) return false;
    if (x.is_number_unsigned() ? x.get<uint64_t>() > INT32_MAX : (x.get<int64_t>() < 0 || x.get<int64_t>() > INT32_MAX))
      return false;
    out->push_back(static_cast<int32_t>(x.get<int64_t>()));
  }
  return true;
}

void parsePrompt(Fields& f, ParsedRequest* r) {
  const json* p = f.find("prompt");
  if (!p) { f.fail(badRequest("'prompt' is required", "prompt")); return; }
  const char* want = "a string, an array of token ids, or an array of one of those";
  json one = *p;
  if (p->is_array() && !p->empty() && (p->at(0).is_string() || p->at(0).is_array())) {
    if (p->size() > 1) {
      f.fail(notSupportedYet("prompt", "more than one prompt per request"));
      return;
    }
    one = p->at(0);
  }
  if (one.is_string()) {
    r->prompt_text = one.get<std::string>();
  } else if (one.is_array() && !one.empty() && readIds(one, &r->prompt_ids)) {
    r->prompt_is_ids = true;
  } else {
    f.typeError("prompt", want);
  }
}

void parseMessages(Fields& f, ParsedRequest* r) {
  const json* m = f.find("messages");
  if (!m) { f.fail(badRequest("'messages' is required", "messages")); return; }
  if (!m->is_array() || m->empty()) { f.typeError("messages", "a non-empty array of messages"); return; }
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = m->at(i);
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) { f.fail(badRequest(param + " must be an object", param)); return; }
    Message out;
    auto role = msg.find("role");
    if (role == msg.end() || !role->is_string()) {
      f.fail(badRequest(param + ".role must be a string", param + ".role"));
      return;
    }
    out.role = role->get<std::string>();
    if (out.role == "developer") out.role = "system";  // OpenAI's newer name for system
    if (out.role != "system" && out.role != "user" && out.role != "assistant") {
      f.fail(badRequest(param + ".role '" + out.role +
                            "' is not one of system, developer, user, assistant",
                        param + ".role"));
      return;
    }
    for (auto it = msg.begin(); it != msg.end(); ++it)
      if (it.key() != "role" && it.key() != "content" && it.key() != "name") {
        f.fail(it.key() == "tool_calls" || it.key() == "function_call"
                   ? notSupportedYet(param + "." + it.key(), "tool calling")
                   : badRequest("Unrecognized message field: " + param + "." + it.key(),
                                param + "." + it.key(), "unknown_parameter"));
        return;
      }
    auto content = msg.find("content");
    if (content == msg.end() || content->is_null()) {
      if (out.role != "assistant") {
        f.fail(badRequest(param + ".content is required", param + ".content"));
        return;
      }
    } else if (content->is_string()) {
      out.content = content->get<std::string>();
    } else if (content->is_array()) {
      for (const json& part : *content) {
        const std::string type = stringField(part, "type");
        if (type != "text" || !part.contains("text") || !part["text"].is_string()) {
          f.fail(!type.empty() && type != "text"
                     ? notSupportedYet(param + ".content", "content of type '" + type + "'")
                     : badRequest(param + ".content parts must be {\"type\": \"text\", \"text\": ...}",
                                  param + ".content"));
          return;
        }
        out.content += part["text"].get<std::string>();
      }
    } else {
      f.typeError("content", "a string or an array of text parts");
      return;
    }
    r->messages.push_back(std::move(out));
  }
}

}  // namespace

ParseResult parseRequest(Endpoint endpoint, const std::string& body) {
  ParseResult result;
  json obj = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) {
    result.error = badRequest("the request body is not valid JSON", "", "invalid_json");
    return result;
  }
  if (!obj.is_object()) {
    result.error = badRequest("the request body must be a JSON object");
    return result;
  }
  ParsedRequest r;
  r.endpoint = endpoint;
  Fields f(obj);
  f.getString("model", &r.model);
  if (endpoint == Endpoint::kCompletions) parsePrompt(f, &r);
  else parseMessages(f, &r);
  f.getBool("stream", &r.stream);
  if (const json* so = f.find("stream_options")) {
    if (!so->is_object()) f.typeError("stream_options", "an object");
    for (auto it = so->begin(); so->is_object() && it != so->end(); ++it) {
      if (it.key() == "include_usage" && it->is_boolean()) r.include_usage = it->get<bool>();
      else if (it.key() == "continuous_usage_stats" && it->is_boolean() && !it->get<bool>()) {}
      else f.fail(badRequest("stream_options." + it.key() + " is not supported", "stream_options"));
    }
    if (!r.stream) f.fail(badRequest("'stream_options' is only allowed with stream: true", "stream_options"));
  }
  int64_t v = 0;
  if (f.getInt("max_tokens", 1, INT32_MAX, &v)) r.max_tokens = v;
  if (endpoint == Endpoint::kChat && f.getInt("max_completion_tokens", 1, INT32_MAX, &v)) r.max_tokens = v;
  f.getReal("temperature", 0, 2, &r.temperature);
  f.getReal("top_p", 0, 1, &r.top_p, /*lo_open=*/true);
  if (f.getInt("top_k", -1, INT32_MAX, &v)) r.top_k = v < 0 ? 0 : v;
  f.getReal("min_p", 0, 1, &r.min_p);
  f.getReal("repetition_penalty", 0, 10, &r.repetition_penalty, /*lo_open=*/true);
  f.getReal("presence_penalty", -2, 2, &r.presence_penalty);
  f.getReal("frequency_penalty", -2, 2, &r.frequency_penalty);
  if (f.getInt("seed", INT64_MIN, INT64_MAX, &v)) r.seed = static_cast<uint64_t>(v);
  f.getInt("n", 1, 128, &r.n);
  if (const json* s = f.find("stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array() && s->size() <= 16) {
      for (const json& x : *s) {
        if (!x.is_string() || x.get<std::string>().empty()) {
          f.typeError("stop", "a string or an array of up to 16 non-empty strings");
          break;
        }
        r.stop.push_back(x.get<std::string>());
      }
    } else {
      f.typeError("stop", "a string or an array of up to 16 non-empty strings");
    }
    if (r.stop.size() == 1 && r.stop[0].empty()) r.stop.clear();
  }
  f.getBool("include_stop_str_in_output", &r.include_stop_str_in_output);
  if (const json* ids = f.find("stop_token_ids"))
    if (!readIds(*ids, &r.stop_token_ids)) f.typeError("stop_token_ids", "an array of token ids");
  f.getBool("ignore_eos", &r.ignore_eos);
  f.getInt("min_tokens", 0, INT32_MAX, &r.min_tokens);
  if (endpoint == Endpoint::kCompletions) {
    if (f.getInt("logprobs", 0, 20, &v)) { r.logprobs = true; r.top_logprobs = v; }
    f.getBool("echo", &r.echo);
    f.neutral("suffix", emptyString, "'suffix' (insertion)");
    f.neutral("best_of", atMostOne, "best_of > 1");
  } else {
    f.getBool("logprobs", &r.logprobs);
    f.getInt("top_logprobs", 0, 20, &r.top_logprobs);
    if (r.top_logprobs > 0 && !r.logprobs)
      f.fail(badRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs"));
    f.neutral("tools", emptyContainer, "tool calling");
    f.neutral("tool_choice", isNone, "tool calling");
    f.neutral("functions", emptyContainer, "function calling");
    f.neutral("function_call", isNone, "function calling");
    f.neutral("response_format", textFormat, "a response_format other than text");
    f.neutral("modalities", textModality, "output other than text");
    f.neutral("audio", never, "audio output");
    f.neutral("prediction", never, "predicted outputs");
    f.neutral("reasoning_effort", never, "'reasoning_effort'");
    f.ignore("parallel_tool_calls");
    f.ignore("metadata");
    f.ignore("store");
  }
  f.neutral("logit_bias", emptyContainer, "logit_bias");
  f.ignore("user");
  f.ignore("service_tier");
  f.refuseUnknown();
  if (f.error_) {
    result.error = *f.error_;
    return result;
  }
  result.request = std::move(r);
  return result;
}

const char* finishName(Finish f) { return f == Finish::kStop ? "stop" : "length"; }

json Usage::toJson() const {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

namespace {
json envelope(const ParsedRequest& r, const std::string& id, int64_t created,
              const std::string& model, bool chunk) {
  const char* object = r.endpoint == Endpoint::kChat
                           ? (chunk ? "chat.completion.chunk" : "chat.completion")
                           : "text_completion";
  return json{{"id", id}, {"object", object}, {"created", created}, {"model", model}};
}
}  // namespace

json logprobsJson(const ParsedRequest& r, const std::vector<TokenLogprob>& tokens, int64_t offset) {
  if (!r.logprobs) return nullptr;
  auto bytes = [](const std::string& t) {
    json b = json::array();
    for (unsigned char c : t) b.push_back(static_cast<int>(c));
    return b;
  };
  // -inf (a token whose logit was -inf) is not JSON: OpenAI clients expect a number.
  auto lp = [](float v) { return std::isfinite(v) ? static_cast<double>(v) : -9999.0; };
  if (r.endpoint == Endpoint::kChat) {
    json content = json::array();
    for (const TokenLogprob& t : tokens) {
      json top = json::array();
      for (const auto& [tok, v] : t.top) top.push_back({{"token", tok}, {"logprob", lp(v)}, {"bytes", bytes(tok)}});
      content.push_back({{"token", t.token}, {"logprob", lp(t.logprob)}, {"bytes", bytes(t.token)},
                         {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenLogprob& t : tokens) {
    toks.push_back(t.token);
    lps.push_back(lp(t.logprob));
    json top = json::object();
    for (const auto& [tok, v] : t.top) top[tok] = lp(v);
    tops.push_back(top);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(t.token.size());
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json completionResponse(const ParsedRequest& r, const std::string& id, int64_t created,
                        const std::string& model, const std::string& text, Finish finish,
                        const Usage& usage, const std::vector<TokenLogprob>& logprobs) {
  json out = envelope(r, id, created, model, false);
  json choice = {{"index", 0}};
  if (r.endpoint == Endpoint::kChat)
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  else
    choice["text"] = text;
  choice["logprobs"] = logprobsJson(r, logprobs);
  choice["finish_reason"] = finishName(finish);
  out["choices"] = json::array({choice});
  out["usage"] = usage.toJson();
  return out;
}

json streamChunk(const ParsedRequest& r, const std::string& id, int64_t created,
                 const std::string& model, const std::string& text,
                 std::optional<Finish> finish, bool role_only,
                 const std::vector<TokenLogprob>& logprobs, int64_t text_offset) {
  json out = envelope(r, id, created, model, true);
  json choice = {{"index", 0}};
  if (r.endpoint == Endpoint::kChat) {
    if (role_only) choice["delta"] = {{"role", "assistant"}, {"content", ""}};
    else if (text.empty() && finish) choice["delta"] = json::object();
    else choice["delta"] = {{"content", text}};
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = role_only || logprobs.empty() ? json(nullptr) : logprobsJson(r, logprobs, text_offset);
  choice["finish_reason"] = finish ? json(finishName(*finish)) : json(nullptr);
  out["choices"] = json::array({choice});
  if (r.include_usage) out["usage"] = nullptr;
  return out;
}

json usageChunk(const ParsedRequest& r, const std::string& id, int64_t created,
                const std::string& model, const Usage& usage) {
  json out = envelope(r, id, created, model, true);
  out["choices"] = json::array();
  out["usage"] = usage.toJson();
  return out;
}

std::string sseEvent(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace ds::serve

// Session: the artifact's tokenizer and chat template around the Engine.
#include "api/session.h"

#include <algorithm>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/stop_strings.h"
#include "artifact/artifact_reader.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ds {

struct Session::Stream {
  std::unique_ptr<IncrementalDetokenizer> detokenizer;  // null without a tokenizer
  std::unique_ptr<StopStringMatcher> stops;             // null without stop strings
  int64_t group = 0;
  int32_t index = 0;
};

Session::~Session() = default;

StatusOr<std::unique_ptr<Session>> Session::create(const artifact::Artifact& artifact,
                                                   const EngineOptions& options,
                                                   const SessionOptions& session_options) {
  std::unique_ptr<Session> s(new Session());
  s->artifact_ = &artifact;
  std::map<std::string, std::string> files;
  if (const auto* blobs = artifact.meta()->tokenizer_files())
    for (const auto* blob : *blobs)
      if (blob->name() && blob->data())
        files[blob->name()->str()] = std::string(blob->data()->begin(), blob->data()->end());
  if (!files.empty()) {
    // A broken tokenizer fails the text calls, not the session: token ids still work.
    StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::fromFiles(files);
    if (!tok.isOk()) {
      s->tokenizer_error_ = artifact.path() + ": " + tok.status().message();
      files.clear();
    } else {
      s->tokenizer_ = std::move(tok).value();
    }
  }
  if (s->tokenizer_) {
    std::string source =
        artifact.meta()->chat_template() ? artifact.meta()->chat_template()->str() : "";
    if (source.empty()) source = s->tokenizer_->chatTemplate();
    if (source.empty()) {
      s->template_error_ = artifact.path() + " has no chat template (--chat)";
    } else {
      StatusOr<ChatTemplate> t = ChatTemplate::parse(source, session_options.chat_template_limits);
      if (t.isOk())
        s->chat_template_ = std::make_unique<ChatTemplate>(std::move(t).value());
      else
        s->template_error_ = artifact.path() + ": " + t.status().message();
    }
  }
  StatusOr<std::unique_ptr<Engine>> engine = Engine::create(artifact, options);
  if (!engine.isOk()) return engine.status();
  s->engine_ = std::move(engine).value();
  s->max_prompt_bytes_ = session_options.max_prompt_bytes;
  if (s->max_prompt_bytes_ == 0) {
    const int64_t context = s->engine_->maxModelLen() > 0 ? s->engine_->maxModelLen()
                                                          : s->engine_->kvCapacityTokens();
    s->max_prompt_bytes_ = std::max<uint64_t>(uint64_t{64} << 10, static_cast<uint64_t>(context) * 32);
  }
  return s;
}

Status Session::checkPromptSize(uint64_t bytes, const char* what) const {
  if (bytes <= max_prompt_bytes_) return Status::ok();
  return invalidArgument(std::string(what) + " is " + std::to_string(bytes) +
                         " bytes, more than the limit of " + std::to_string(max_prompt_bytes_) +
                         " bytes (max_prompt_bytes)");
}

Status Session::needTokenizer() const {
  if (tokenizer_) return Status::ok();
  if (!tokenizer_error_.empty()) return dataLoss(tokenizer_error_);
  return invalidArgument(artifact_->path() +
                         " carries no tokenizer: give token ids (ds-run --prompt-ids, --ids)");
}

StatusOr<std::string> Session::render(const TextPrompt& prompt) const {
  if (!prompt.chat) return prompt.text;
  DS_RETURN_IF_ERROR(needTokenizer());
  if (!chat_template_) return invalidArgument(template_error_);
  uint64_t content_bytes = prompt.messages.empty() ? prompt.text.size() : 0;
  for (const ChatMessage& m : prompt.messages) content_bytes += m.content.size() + m.role.size();
  DS_RETURN_IF_ERROR(checkPromptSize(content_bytes, "the conversation"));
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (prompt.messages.empty())
    messages.push_back({{"role", "user"}, {"content", prompt.text}});
  for (const ChatMessage& m : prompt.messages)
    messages.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::ordered_json ctx;
  ctx["messages"] = std::move(messages);
  ctx["add_generation_prompt"] = true;
  ctx["bos_token"] = tokenizer_->bosToken();
  ctx["eos_token"] = tokenizer_->eosToken();
  return chat_template_->render(ctx);
}

StatusOr<std::vector<int32_t>> Session::tokenize(const std::string& text,
                                                 bool add_special_tokens) const {
  DS_RETURN_IF_ERROR(needTokenizer());
  EncodeOptions opts;
  opts.add_special_tokens = add_special_tokens;
  auto ids = tokenizer_->encode(text, opts);
  if (!ids.isOk()) return ids.status();
  return std::vector<int32_t>(ids->begin(), ids->end());
}

StatusOr<std::vector<int32_t>> Session::encode(const TextPrompt& prompt) const {
  DS_RETURN_IF_ERROR(needTokenizer());
  StatusOr<std::string> text = render(prompt);
  if (!text.isOk()) return text.status();
  DS_RETURN_IF_ERROR(checkPromptSize(text->size(), prompt.chat ? "the rendered prompt" : "the prompt"));
  StatusOr<std::vector<int32_t>> ids = std::vector<int32_t>();
  if (prompt.chat && !prompt.parse_special) {
    ids = encodeChatContentsAsText(*text, prompt);
  } else {
    EncodeOptions opts;
    // A chat template writes BOS itself, as transformers renders it.
    opts.add_special_tokens = prompt.chat ? false : prompt.add_bos;
    opts.parse_special = prompt.parse_special;
    auto encoded = tokenizer_->encode(*text, opts);
    if (!encoded.isOk()) return encoded.status();
    ids = std::vector<int32_t>(encoded->begin(), encoded->end());
  }
  if (!ids.isOk()) return ids.status();
  if (ids->empty())
    return invalidArgument("the prompt encodes to no tokens (and the tokenizer adds no BOS)");
  return ids;
}

StatusOr<std::vector<int32_t>> Session::encodeChatContentsAsText(const std::string& rendered,
                                                                 const TextPrompt& prompt) const {
  std::vector<std::string> contents;
  if (prompt.messages.empty()) contents.push_back(prompt.text);
  for (const ChatMessage& m : prompt.messages) contents.push_back(m.content);
  std::vector<int32_t> out;
  auto append = [&](std::string_view piece, bool parse_special) -> Status {
    if (piece.empty()) return Status::ok();
    EncodeOptions opts;
    opts.add_special_tokens = false;
    opts.parse_special = parse_special;
    auto ids = tokenizer_->encode(std::string(piece), opts);
    if (!ids.isOk()) return ids.status();
    out.insert(out.end(), ids->begin(), ids->end());
    return Status::ok();
  };
  size_t at = 0;
  for (size_t i = 0; i < contents.size(); ++i) {
    if (contents[i].empty()) continue;
    const size_t found = rendered.find(contents[i], at);
    if (found == std::string::npos)
      return invalidArgument("message " + std::to_string(i) +
                             "'s content is not in the chat template's rendering verbatim, so it "
                             "cannot be kept apart as plain text (parse_special = false)");
    DS_RETURN_IF_ERROR(append(std::string_view(rendered).substr(at, found - at), true));
    DS_RETURN_IF_ERROR(append(std::string_view(rendered).substr(found, contents[i].size()), false));
    at = found + contents[i].size();
  }
  DS_RETURN_IF_ERROR(append(std::string_view(rendered).substr(at), true));
  return out;
}

StatusOr<std::string> Session::decode(const std::vector<int32_t>& ids) const {
  DS_RETURN_IF_ERROR(needTokenizer());
  return tokenizer_->decode(ids, /*skip_special_tokens=*/true);
}

Status Session::checkTextOptions(const TextRequest& request) const {
  DS_RETURN_IF_ERROR(StopStringMatcher::validate(request.stop));
  if (!request.stop.empty()) DS_RETURN_IF_ERROR(needTokenizer());  // stop strings match text
  return Status::ok();
}

StatusOr<int64_t> Session::submit(const TextRequest& request) {
  if (request.n != 1)
    return invalidArgument("n is " + std::to_string(request.n) +
                           ": submit() takes one completion, submitN() several");
  DS_RETURN_IF_ERROR(checkTextOptions(request));
  std::vector<int32_t> prompt = request.prompt_ids;
  if (prompt.empty()) {
    StatusOr<std::vector<int32_t>> ids = encode(request.prompt);
    if (!ids.isOk()) return ids.status();
    prompt = std::move(ids).value();
  }
  return submitOne(request, std::move(prompt), -1, 0);
}

StatusOr<std::vector<int64_t>> Session::submitN(const TextRequest& request) {
  if (request.n < 1 || request.n > 16)
    return invalidArgument("n must be in [1, 16], got " + std::to_string(request.n));
  DS_RETURN_IF_ERROR(checkTextOptions(request));
  std::vector<int32_t> prompt = request.prompt_ids;
  if (prompt.empty()) {
    StatusOr<std::vector<int32_t>> ids = encode(request.prompt);
    if (!ids.isOk()) return ids.status();
    prompt = std::move(ids).value();
  }
  std::vector<int64_t> ids;
  TextRequest one = request;
  for (int i = 0; i < request.n; ++i) {
    one.sampling.seed = request.sampling.seed + static_cast<uint64_t>(i);  // wraps mod 2^64
    StatusOr<int64_t> id = submitOne(one, prompt, ids.empty() ? -1 : ids[0], i);
    if (!id.isOk()) {
      for (int64_t done : ids) {
        engine_->finish(done);
        streams_.erase(done);
      }
      return id.status();
    }
    ids.push_back(*id);
  }
  return ids;
}

StatusOr<int64_t> Session::submitOne(const TextRequest& request, std::vector<int32_t> prompt,
                                     int64_t group, int32_t index) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling = request.sampling;
  r.max_new_tokens = request.max_new_tokens;
  if (tokenizer_ && !request.ignore_eos)
    r.stop_token_ids.assign(tokenizer_->stopIds().begin(), tokenizer_->stopIds().end());
  r.stop_token_ids.insert(r.stop_token_ids.end(), request.stop_token_ids.begin(),
                          request.stop_token_ids.end());
  StatusOr<int64_t> id = engine_->submit(std::move(r));
  if (!id.isOk()) return id.status();
  auto stream = std::make_unique<Stream>();
  if (tokenizer_)
    stream->detokenizer = std::make_unique<IncrementalDetokenizer>(
        tokenizer_->newDetokenizer(/*skip_special_tokens=*/true));
  if (!request.stop.empty())
    stream->stops =
        std::make_unique<StopStringMatcher>(request.stop, request.include_stop_str_in_output);
  stream->group = group < 0 ? *id : group;
  stream->index = index;
  streams_[*id] = std::move(stream);
  return id;
}

Status Session::abort(int64_t request) {
  DS_RETURN_IF_ERROR(engine_->abort(request));
  streams_.erase(request);
  return Status::ok();
}

Status Session::step(std::vector<TextEvent>* events) {
  token_events_.clear();
  DS_RETURN_IF_ERROR(engine_->step(&token_events_));
  for (TokenEvent& e : token_events_) {
    TextEvent out{e.request, e.token, "", e.finish, std::move(e.logprobs), e.request, 0};
    auto it = streams_.find(e.request);
    if (it != streams_.end()) {
      Stream& st = *it->second;
      out.group = st.group;
      out.index = st.index;
      std::string piece;
      if (st.detokenizer) {
        StatusOr<std::string> pushed = st.detokenizer->push(e.token);
        if (!pushed.isOk()) return pushed.status();
        piece = std::move(pushed).value();
        if (e.finish != FinishReason::kNone) piece += st.detokenizer->finish();
      }
      if (st.stops) {
        StopStringMatcher::Result r = st.stops->push(piece);
        out.text = std::move(r.text);
        if (r.stopped) {
          // The stop string wins over a length or stop-id finish of the same token.
          out.finish = FinishReason::kStop;
          if (e.finish == FinishReason::kNone) engine_->finish(e.request);
        } else if (e.finish != FinishReason::kNone) {
          out.text += st.stops->flush();
        }
      } else {
        out.text = std::move(piece);
      }
      if (out.finish != FinishReason::kNone) streams_.erase(it);
    }
    events->push_back(std::move(out));
  }
  return Status::ok();
}

}  // namespace ds

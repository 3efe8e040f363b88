// HTTP routes of ds-serve (docs/serving.md "Endpoints").
#include "http_server.h"
#include "http_util.h"

#include <sys/socket.h>

#include <cstdio>
#include <ctime>
#include <random>

namespace ds::serve {

namespace {

// Pending connections the kernel holds for accept (SOMAXCONN caps it).
constexpr int kListenBacklog = 1024;


// Compares without an early exit, so the time taken does not reveal the key's prefix.
bool sameSecret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}


Outcome outcomeOf(int status) {
  if (status == 401) return Outcome::kUnauthorized;
  if (status == 429 || status == 503) return Outcome::kRejected;
  if (status >= 500) return Outcome::kError;
  return Outcome::kInvalid;
}

}  // namespace

HttpServer::HttpServer(ServerCore& core, Metrics& metrics, HttpOptions options)
    : core_(core), metrics_(metrics), options_(std::move(options)),
      server_(std::make_unique<httplib::Server>()), created_(std::time(nullptr)) {
  const size_t threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_keep_alive_timeout(options_.keep_alive_seconds);
  // httplib's defaults (SO_REUSEADDR), and the socket kept: Debian's compiled cpp-httplib listens
  // with a backlog of 5, which drops or resets connections when dozens of clients connect at
  // once (bind() raises it).
  server_->set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = static_cast<int>(sock);
  });
  routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  const int port = options_.port == 0 ? server_->bind_to_any_port(options_.host)
                                      : (server_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  // listen() again on a listening socket sets its backlog (Linux): room for a burst of clients.
  if (port >= 0 && listen_fd_ >= 0) ::listen(listen_fd_, kListenBacklog);
  return port;
}

bool HttpServer::serve() { return server_->listen_after_bind(); }

void HttpServer::stop(std::chrono::milliseconds timeout) {
  {
    std::unique_lock<std::mutex> lock(active_mu_);
    idle_.wait_for(lock, timeout, [&] { return active_ == 0; });
  }
  server_->stop();
}

void HttpServer::enter() {
  std::lock_guard<std::mutex> lock(active_mu_);
  ++active_;
}

void HttpServer::leave() {
  std::lock_guard<std::mutex> lock(active_mu_);
  if (--active_ == 0) idle_.notify_all();
}

bool HttpServer::authorized(const httplib::Request& req) const {
  if (options_.api_key.empty()) return true;
  return sameSecret(req.get_header_value("Authorization"), "Bearer " + options_.api_key);
}

void HttpServer::routes() {
  httplib::Server& s = *server_;
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (core_.healthy() && !core_.stopping()) {
      res.status = 200;
      return;
    }
    sendError(res, httpError(503, core_.stopping() ? "the server is shutting down" : "the engine failed",
                             core_.stopping() ? "shutting_down" : "engine_failed"));
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(core_.stats(), core_.waiting(), engineCanAbort()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req)) {
      metrics_.request(Outcome::kUnauthorized);
      res.set_header("WWW-Authenticate", "Bearer");
      return sendError(res, httpError(401, "Incorrect API key provided (Authorization: Bearer <key>)",
                                      "invalid_api_key"));
    }
    json data = json::array();
    for (const std::string& name : options_.model_names)
      data.push_back({{"id", name}, {"object", "model"}, {"created", created_},
                      {"owned_by", "ds-compile"}, {"max_model_len", core_.maxModelLen()}});
    res.set_content(dumpJson({{"object", "list"}, {"data", data}}), kJson);
  });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(Endpoint::kCompletions, req, res);
  });
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(Endpoint::kChat, req, res);
  });
  // Statuses httplib sets itself (404 no route, 413 body too large, 400 bad HTTP) get the same
  // error body as ours.
  const size_t limit = options_.max_body_bytes;
  s.set_error_handler([limit](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "HTTP " + std::to_string(res.status);
    std::string code;
    if (res.status == 404) { message = "no route for " + req.method + " " + req.path; code = "not_found"; }
    if (res.status == 413) {
      message = "the request body is larger than the limit of " + std::to_string(limit) +
                " bytes (--max-request-bytes)";
      code = "request_too_large";
    }
    sendError(res, httpError(res.status, message, code));
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    sendError(res, httpError(500, what, "internal_error"));
  });
}

void HttpServer::generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
  auto refuse = [&](const ApiError& e) {
    metrics_.request(outcomeOf(e.status));
    if (e.status == 429) res.set_header("Retry-After", "1");
    sendError(res, e);
  };
  if (!authorized(req)) {
    res.set_header("WWW-Authenticate", "Bearer");
    return refuse(httpError(401, "Incorrect API key provided (Authorization: Bearer <key>)", "invalid_api_key"));
  }
  ParseResult parsed = parseRequest(endpoint, req.body);
  if (!parsed.request) return refuse(parsed.error);
  ParsedRequest& r = *parsed.request;
  bool known_model = r.model.empty();
  for (const std::string& name : options_.model_names) known_model |= name == r.model;
  if (!known_model) {
    ApiError e = httpError(404, "The model '" + r.model + "' does not exist (GET /v1/models lists the served names)",
                           "model_not_found");
    e.param = "model";
    return refuse(e);
  }
  if (std::optional<ApiError> e = checkSupported(r)) return refuse(*e);
  if (r.n > 1) return generateChoices(std::move(r), res);

  auto job = std::make_shared<Job>(std::move(r));
  if (!core_.submit(job)) return refuse(httpError(503, "the server is shutting down", "shutting_down"));
  enter();
  // Admission (prompt encoding, context and KV checks, the queue) happens on the engine thread.
  Job::Update first;
  do first = job->take(std::chrono::seconds(1));
  while (first.state == Job::State::kPending);
  if (first.error) {  // counted by the core
    if (first.error->status == 429) res.set_header("Retry-After", "1");
    sendError(res, *first.error);
    return leave();
  }
  if (job->request.stream) return streamResponse(job, std::move(first), res);

  std::string text = first.text;
  std::vector<TokenLogprob> logprobs = first.logprobs;
  Job::Update u = first;
  while (u.state != Job::State::kDone) {
    u = job->take(std::chrono::seconds(1));
    text += u.text;
    logprobs.insert(logprobs.end(), u.logprobs.begin(), u.logprobs.end());
  }
  if (u.error) {
    sendError(res, *u.error);
  } else {
    const std::string kind = endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-";
    Usage usage{u.prompt_tokens, u.completion_tokens};
    res.set_content(dumpJson(completionResponse(job->request, newId(kind.c_str()), std::time(nullptr),
                                                options_.model_names.front(), text, *u.finish, usage,
                                                logprobs)),
                    kJson);
  }
  leave();
}

namespace {
struct StreamState {
  std::shared_ptr<Job> job;
  std::string id, model;
  int64_t created = 0;
  bool opened = false, finished = false;
  int64_t text_offset = 0;  // completions' logprobs text_offset
  Job::Update first;
};
}  // namespace

void HttpServer::streamResponse(const std::shared_ptr<Job>& job, Job::Update first, httplib::Response& res) {
  auto st = std::make_shared<StreamState>();
  st->job = job;
  st->id = newId(job->request.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
  st->model = options_.model_names.front();
  st->created = std::time(nullptr);
  st->first = std::move(first);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto provider = [this, st](size_t, httplib::DataSink& sink) -> bool {
    const ParsedRequest& r = st->job->request;
    auto write = [&](const std::string& s) {
      if (sink.write(s.data(), s.size())) return true;
      core_.cancel(st->job);  // the client is gone: free its slot and blocks
      return false;
    };
    Job::Update u;
    const bool first_call = !st->opened;
    if (first_call) {
      st->opened = true;
      if (r.endpoint == Endpoint::kChat &&
          !write(sseEvent(streamChunk(r, st->id, st->created, st->model, "", std::nullopt, true))))
        return false;
      u = std::move(st->first);
    } else {
      u = st->job->take(std::chrono::seconds(2));
    }
    if ((!u.text.empty() || !u.logprobs.empty()) &&
        !write(sseEvent(streamChunk(r, st->id, st->created, st->model, u.text, std::nullopt, false,
                                    u.logprobs, st->text_offset))))
      return false;
    st->text_offset += static_cast<int64_t>(u.text.size());
    if (u.state != Job::State::kDone) {
      // Nothing new for a while (queued): an SSE comment, which also finds clients that left.
      return u.text.empty() && !first_call ? write(": keep-alive\n\n") : true;
    }
    if (u.error) {
      if (!write(sseEvent(u.error->body()))) return false;
    } else {
      if (!write(sseEvent(streamChunk(r, st->id, st->created, st->model, "", u.finish)))) return false;
      if (r.include_usage &&
          !write(sseEvent(usageChunk(r, st->id, st->created, st->model, {u.prompt_tokens, u.completion_tokens}))))
        return false;
    }
    if (!write("data: [DONE]\n\n")) return false;
    st->finished = true;
    sink.done();
    return true;
  };
  auto releaser = [this, st](bool) {
    if (!st->finished) core_.cancel(st->job);
    leave();
  };
  res.set_chunked_content_provider("text/event-stream", provider, releaser);
}

}  // namespace ds::serve

// The HTTP side of ds-serve: cpp-httplib routes (OpenAI endpoints, /health, /metrics), bearer
// authentication, request parsing, and the streaming of each Job's results as server-sent
// events. Handlers never touch the Session: they hand Jobs to ServerCore and wait on them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <httplib.h>

#include "metrics.h"
#include "server_core.h"

namespace ds::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                      // 0: any free port (the chosen one is printed)
  std::string api_key;                  // empty: no authentication
  size_t max_body_bytes = 16u << 20;    // larger request bodies: 413
  std::vector<std::string> model_names; // the first is the one responses name
  size_t threads = 64;                  // HTTP worker threads (one per open connection)
  int keep_alive_seconds = 5;
};

class HttpServer {
 public:
  HttpServer(ServerCore& core, Metrics& metrics, HttpOptions options);
  ~HttpServer();

  // Binds the socket; the port bound, or -1 (the reason is printed).
  int bind();
  // Serves until stop(); returns false if the server could not run.
  bool serve();
  // Waits up to `timeout` for in-flight responses to finish writing (shutdown), then stops.
  void stop(std::chrono::milliseconds timeout);

 private:
  void routes();
  bool authorized(const httplib::Request& req) const;
  void generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res);
  void streamResponse(const std::shared_ptr<Job>& job, Job::Update first, httplib::Response& res);
  // n > 1 (http_choices.cpp): n jobs of one completion each, answered as one response.
  void generateChoices(ParsedRequest r, httplib::Response& res);
  void enter();
  void leave();

  ServerCore& core_;
  Metrics& metrics_;
  HttpOptions options_;
  std::unique_ptr<httplib::Server> server_;
  int listen_fd_ = -1;  // the listening socket (its backlog is raised after bind)
  int64_t created_ = 0;  // the models' "created" time

  std::mutex active_mu_;
  std::condition_variable idle_;
  int64_t active_ = 0;  // responses being produced or streamed
};

}  // namespace ds::serve

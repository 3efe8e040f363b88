// ds-serve: an OpenAI-compatible HTTP server over one .dsa artifact (docs/serving.md).
// One engine thread steps the Session; HTTP threads parse requests, hand them over and stream
// the results. SIGTERM/SIGINT: stop taking requests, let running ones finish (or cancel them
// after --shutdown-timeout), exit 0.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/session.h"
#include "artifact/artifact_reader.h"
#include "common/exit_codes.h"
#include "common/numeric_flags.h"
#include "engine_adapter.h"
#include "http_server.h"
#include "metrics.h"
#include "server_core.h"

namespace {

struct Args {
  std::string artifact;
  ds::serve::EngineFlags engine;
  ds::serve::HttpOptions http;
  std::vector<std::string> trusted_keys;
  bool parse_special = false;
  double shutdown_timeout = 30;
  bool have_seed = false;
  uint64_t seed = 0;
};

[[noreturn]] void die(const std::string& message, int code = ds::tools::kExitFailure) {
  std::fprintf(stderr, "ds-serve: error: %s\n", message.c_str());
  std::exit(code);
}
[[noreturn]] void usageError(const std::string& message) { die(message, ds::tools::kExitUsage); }

void usage() {
  std::puts(
      "usage: ds-serve <model.dsa> [--host 127.0.0.1] [--port 8000] [--api-key KEY]\n"
      "                [--served-model-name NAME]... [--max-num-seqs 64] [--max-waiting 256]\n"
      "                [--max-model-len N] [--kv-cache-mem 256M] [--threads N]\n"
      "                [--max-request-bytes 16M] [--shutdown-timeout 30] [--seed S]\n"
      "                [--parse-special] [--trusted-key KEY.pub]... [--no-native-code]\n"
      "                [--gpu-memory-fraction 0.9] [--gpu-ordinal N] [--enforce-eager]\n"
      "An OpenAI-compatible server: POST /v1/completions, /v1/chat/completions (stream: true\n"
      "for server-sent events), GET /v1/models, /health, /metrics (docs/serving.md).\n"
      "  --port 0               any free port (printed on stdout)\n"
      "  --api-key KEY          /v1 requests need 'Authorization: Bearer KEY' (else 401);\n"
      "                         also read from $DS_SERVE_API_KEY\n"
      "  --served-model-name    the name(s) requests may give as 'model' (default: the\n"
      "                         artifact's file name without .dsa)\n"
      "  --max-num-seqs N       requests generating at once; --max-waiting M more are queued,\n"
      "                         beyond that 429 with Retry-After\n"
      "  --kv-cache-mem SIZE    KV cache (default 256M on the CPU, a GPU's budget otherwise)\n"
      "  --max-request-bytes    larger request bodies get 413\n"
      "  --shutdown-timeout S   on SIGTERM/SIGINT, seconds running requests get to finish\n"
      "  --seed S               base seed of requests that give none (default: random)\n"
      "  --parse-special        special-token text in prompts/messages is a control token\n"
      "                         (Hugging Face's default; off: it is plain text, no injection)\n"
      "A .dsa with generated code is an executable: for artifacts from elsewhere use\n"
      "--trusted-key or --no-native-code.");
}

template <typename T>
T check(const ds::tools::Parsed<T>& p) {
  if (!p.value) usageError(p.error);
  return *p.value;
}

Args parseArgs(int argc, char** argv) {
  namespace t = ds::tools;
  Args a;
  int64_t threads_http = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") { usage(); std::exit(0); }
    else if (arg == "--host") a.http.host = value();
    else if (arg == "--port") a.http.port = static_cast<int>(check(t::parseIntFlag(arg, value(), 0, 65535)));
    else if (arg == "--api-key") a.http.api_key = value();
    else if (arg == "--served-model-name") a.http.model_names.push_back(value());
    else if (arg == "--max-num-seqs") a.engine.max_num_seqs = check(t::parseIntFlag(arg, value(), 1, 4096));
    else if (arg == "--max-waiting") a.engine.max_waiting = check(t::parseIntFlag(arg, value(), 0, 1 << 16));
    else if (arg == "--max-model-len") a.engine.max_model_len = check(t::parseIntFlag(arg, value(), 1, INT32_MAX));
    else if (arg == "--kv-cache-mem") a.engine.kv_cache_bytes = check(t::parseSizeFlag(arg, value(), 1, 1ull << 50));
    else if (arg == "--threads") a.engine.threads = static_cast<int>(check(t::parseIntFlag(arg, value(), 0, 1024)));
    else if (arg == "--http-threads") threads_http = check(t::parseIntFlag(arg, value(), 1, 4096));
    else if (arg == "--max-request-bytes") a.http.max_body_bytes = check(t::parseSizeFlag(arg, value(), 1024, 1ull << 30));
    else if (arg == "--shutdown-timeout") a.shutdown_timeout = check(t::parseRealFlag(arg, value(), 0, 3600));
    else if (arg == "--seed") { a.seed = static_cast<uint64_t>(check(t::parseIntFlag(arg, value(), 0, INT64_MAX))); a.have_seed = true; }
    else if (arg == "--parse-special") a.parse_special = true;
    else if (arg == "--trusted-key") a.trusted_keys.push_back(value());
    else if (arg == "--no-native-code") a.engine.allow_native_code = false;
    else if (arg == "--enforce-eager") a.engine.enforce_eager = true;
    else if (arg == "--gpu-memory-fraction") a.engine.gpu_memory_fraction = check(t::parseRealFlag(arg, value(), 0.01, 1));
    else if (arg == "--gpu-ordinal") a.engine.gpu_ordinal = static_cast<int>(check(t::parseIntFlag(arg, value(), 0, 1023)));
    else if (!arg.empty() && arg[0] == '-') usageError("unknown option " + arg + " (see --help)");
    else if (a.artifact.empty()) a.artifact = arg;
    else usageError("unexpected argument '" + arg + "'");
  }
  if (a.artifact.empty()) { usage(); std::exit(ds::tools::kExitUsage); }
  if (a.http.host.empty()) usageError("--host needs a non-empty value");
  for (const std::string& name : a.http.model_names)
    if (name.empty()) usageError("--served-model-name needs a non-empty value");
  if (a.http.api_key.empty())
    if (const char* env = std::getenv("DS_SERVE_API_KEY")) a.http.api_key = env;
  if (a.http.model_names.empty()) {
    std::string base = a.artifact.substr(a.artifact.find_last_of('/') + 1);
    if (base.size() > 4 && base.compare(base.size() - 4, 4, ".dsa") == 0) base.resize(base.size() - 4);
    a.http.model_names.push_back(base);
  }
  // One HTTP thread per open connection: enough for every running and queued request plus a
  // few for /health, /metrics and the requests answered 429.
  a.http.threads = static_cast<size_t>(
      threads_http > 0 ? threads_http : a.engine.max_num_seqs + a.engine.max_waiting + 16);
  return a;
}

// SIGTERM/SIGINT write their number into a pipe that the stopper thread reads: a handler runs
// on whichever thread the kernel picks (libraries start threads before main, so blocking the
// signals everywhere for sigwait is not possible).
int g_signal_pipe[2] = {-1, -1};
extern "C" void onSignal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  ssize_t ignored = write(g_signal_pipe[1], &b, 1);
  (void)ignored;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parseArgs(argc, argv);
  // A closed socket is an error return, not SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  if (pipe(g_signal_pipe) != 0) die("cannot create the signal pipe");
  struct sigaction sa = {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  ds::artifact::Artifact::Options open_options;
  for (const std::string& f : a.trusted_keys) {
    auto key = ds::artifact::readPublicKeyFile(f);
    if (!key.isOk()) die(key.status().message());
    open_options.trusted_keys.push_back(key.value());
  }
  auto art = ds::artifact::Artifact::open(a.artifact, open_options);
  if (!art.isOk()) die(art.status().message());
  auto session = ds::Session::create(**art, ds::serve::toEngineOptions(a.engine));
  if (!session.isOk()) die(session.status().message());

  ds::serve::Metrics metrics;
  ds::serve::CoreOptions core_options;
  core_options.max_num_seqs = a.engine.max_num_seqs;
  core_options.max_waiting = a.engine.max_waiting;
  core_options.parse_special = a.parse_special;
  core_options.seed_base = a.have_seed ? a.seed : std::random_device{}();
  ds::serve::ServerCore core(**session, core_options, metrics);
  ds::serve::HttpServer http(core, metrics, a.http);
  const int port = http.bind();
  if (port < 0) die("cannot listen on " + a.http.host + ":" + std::to_string(a.http.port));
  std::printf("ds-serve: serving '%s' on http://%s:%d (context %lld tokens, KV cache %lld tokens)\n",
              a.http.model_names.front().c_str(), a.http.host.c_str(), port,
              static_cast<long long>(core.maxModelLen()),
              static_cast<long long>((*session)->engine().kvCapacityTokens()));
  std::fflush(stdout);

  std::thread engine([&core] { core.run(); });
  std::mutex serve_mu;
  std::condition_variable serve_cv;
  bool serve_returned = false;
  const auto grace = std::chrono::milliseconds(static_cast<int64_t>(a.shutdown_timeout * 1000));
  std::thread stopper([&] {
    unsigned char sig = 0;
    while (read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    std::fprintf(stderr, "ds-serve: signal %d: shutting down (running requests get %.0f s)\n", sig,
                 a.shutdown_timeout);
    core.beginShutdown(grace);
    engine.join();
    http.stop(std::chrono::seconds(5));  // lets the last streams write their ends
    // httplib's serve() returns once its threads end, and a client's idle keep-alive connection
    // holds one for up to its timeout: every response is written by now, so exit without it.
    std::unique_lock<std::mutex> lock(serve_mu);
    if (!serve_cv.wait_for(lock, std::chrono::seconds(1), [&] { return serve_returned; })) {
      std::fprintf(stderr, "ds-serve: stopped\n");
      std::fflush(nullptr);
      std::_Exit(ds::tools::kExitOk);
    }
  });
  const bool served = http.serve();
  {
    std::lock_guard<std::mutex> lock(serve_mu);
    serve_returned = true;
  }
  serve_cv.notify_all();
  if (!served) {
    std::fprintf(stderr, "ds-serve: error: the HTTP server stopped unexpectedly\n");
    onSignal(SIGTERM);
  }
  stopper.join();
  std::fprintf(stderr, "ds-serve: stopped\n");
  return served ? ds::tools::kExitOk : ds::tools::kExitFailure;
}

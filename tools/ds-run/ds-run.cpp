// ds-run: compile-once, run-anywhere text generation from a .dsa artifact on the CPU.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "api/session.h"
#include "artifact/artifact_reader.h"
#include "common/exit_codes.h"
#include "common/numeric_flags.h"

namespace {

struct Args {
  std::string artifact;
  std::vector<std::string> prompts;
  std::vector<std::vector<int32_t>> prompt_ids;
  int64_t max_new_tokens = 64;
  ds::SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings
  bool chat = false, print_ids = false, ignore_eos = false, no_bos = false, stats = false;
  bool show_prompt = false, parse_special = true;
  int64_t max_model_len = 0;
  uint64_t kv_cache_bytes = 0;  // 0: a GPU's budget (--gpu-memory-fraction), 256 MiB on the CPU
  int threads = 0;
  std::vector<std::string> trusted_keys;  // public key files (docs/artifact.md)
  bool native_code = true;
  double gpu_memory_fraction = 0.9;  // GPU artifacts (docs/cuda.md)
  bool enforce_eager = false;        // no CUDA graphs
  int gpu_ordinal = 0;
};

[[noreturn]] void die(const std::string& message, int code = ds::tools::kExitFailure) {
  std::fprintf(stderr, "ds-run: error: %s\n", message.c_str());
  std::exit(code);
}
// A command-line mistake: exit code 2 (docs/tools.md).
[[noreturn]] void usageError(const std::string& message) { die(message, ds::tools::kExitUsage); }

void usage() {
  std::puts(
      "usage: ds-run <model.dsa> [-p PROMPT]... [--prompt-ids 1,2,3]... [-n N]\n"
      "              [--temperature T] [--top-k K] [--top-p P] [--seed S] [--chat]\n"
      "              [--min-p P] [--presence-penalty X] [--frequency-penalty X] (X in [-2, 2])\n"
      "              [--stop STR]... (up to 16; the text ends before it) [--logprobs N]\n"
      "              (N in [0, 20]: each token's logprob and the top N, on stderr)\n"
      "              [--ids] [--ignore-eos] [--no-bos] [--kv-cache-mem 256M] [--threads N] [--stats]\n"
      "              (--kv-cache-mem: default 256M on the CPU; on a GPU what\n"
      "              --gpu-memory-fraction leaves after weights and activations)\n"
      "              [--show-prompt] (prints each prompt as rendered and its ids on stderr)\n"
      "              [--max-model-len N] (context limit per request; default: the model's)\n"
      "              [--no-parse-special] (special-token text in -p, or in the --chat message, is\n"
      "              plain text: no role injection; the chat template's own tokens still count)\n"
      "              [--trusted-key KEY.pub]... (refuse artifacts not signed by one of them)\n"
      "              [--no-native-code] (never load the artifact's generated code; same tokens)\n"
      "              [--gpu-memory-fraction 0.9] [--gpu-ordinal N] (GPU artifacts: the share of\n"
      "              the GPU's memory used for weights, activations and KV blocks; which GPU)\n"
      "              [--enforce-eager] (GPU: run decode steps launch by launch, no CUDA graphs)\n"
      "Several prompts run as one batch. An empty prompt starts from BOS alone.\n"
      "A .dsa with generated code is an executable: for artifacts from elsewhere use\n"
      "--trusted-key or --no-native-code.");
}

template <typename T>
T check(const ds::tools::Parsed<T>& p) {
  if (!p.value) usageError(p.error);
  return *p.value;
}

Args parseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") { usage(); std::exit(0); }
    else if (arg == "-p" || arg == "--prompt") a.prompts.push_back(value());
    else if (arg == "--prompt-ids") a.prompt_ids.push_back(check(ds::tools::parseIntListFlag(arg, value(), 0, INT32_MAX)));
    else if (arg == "-n" || arg == "--max-new-tokens") a.max_new_tokens = check(ds::tools::parseIntFlag(arg, value(), 1, 1 << 30));
    else if (arg == "--temperature") a.sampling.temperature = static_cast<float>(check(ds::tools::parseRealFlag(arg, value(), 0, 100)));
    else if (arg == "--top-k") a.sampling.top_k = static_cast<int>(check(ds::tools::parseIntFlag(arg, value(), 0, INT32_MAX)));
    else if (arg == "--top-p") a.sampling.top_p = static_cast<float>(check(ds::tools::parseRealFlag(arg, value(), 0, 1)));
    else if (arg == "--min-p") a.sampling.min_p = static_cast<float>(check(ds::tools::parseRealFlag(arg, value(), 0, 1)));
    else if (arg == "--presence-penalty") a.sampling.presence_penalty = static_cast<float>(check(ds::tools::parseRealFlag(arg, value(), -2, 2)));
    else if (arg == "--frequency-penalty") a.sampling.frequency_penalty = static_cast<float>(check(ds::tools::parseRealFlag(arg, value(), -2, 2)));
    else if (arg == "--logprobs") a.sampling.logprobs = static_cast<int>(check(ds::tools::parseIntFlag(arg, value(), 0, ds::kMaxLogprobs)));
    else if (arg == "--stop") a.stop.push_back(value());
    else if (arg == "--seed") a.sampling.seed = static_cast<uint64_t>(check(ds::tools::parseIntFlag(arg, value(), 0, INT64_MAX)));
    else if (arg == "--kv-cache-mem") a.kv_cache_bytes = check(ds::tools::parseSizeFlag(arg, value(), 1, 1ull << 50));
    else if (arg == "--threads") a.threads = static_cast<int>(check(ds::tools::parseIntFlag(arg, value(), 0, 1024)));
    else if (arg == "--chat") a.chat = true;
    else if (arg == "--ids") a.print_ids = true;
    else if (arg == "--ignore-eos") a.ignore_eos = true;
    else if (arg == "--no-bos") a.no_bos = true;
    else if (arg == "--stats") a.stats = true;
    else if (arg == "--show-prompt") a.show_prompt = true;
    else if (arg == "--no-parse-special") a.parse_special = false;
    else if (arg == "--max-model-len") a.max_model_len = check(ds::tools::parseIntFlag(arg, value(), 1, INT32_MAX));
    else if (arg == "--trusted-key") a.trusted_keys.push_back(value());
    else if (arg == "--no-native-code") a.native_code = false;
    else if (arg == "--enforce-eager") a.enforce_eager = true;
    else if (arg == "--gpu-memory-fraction") a.gpu_memory_fraction = check(ds::tools::parseRealFlag(arg, value(), 0.01, 1));
    else if (arg == "--gpu-ordinal") a.gpu_ordinal = static_cast<int>(check(ds::tools::parseIntFlag(arg, value(), 0, 1023)));
    else if (!arg.empty() && arg[0] == '-') usageError("unknown option " + arg + " (see --help)");
    else if (a.artifact.empty()) a.artifact = arg;
    else usageError("unexpected argument '" + arg + "'");
  }
  if (a.artifact.empty()) { usage(); std::exit(ds::tools::kExitUsage); }
  if (a.prompts.empty() && a.prompt_ids.empty()) a.prompts.push_back("");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parseArgs(argc, argv);
  auto t0 = std::chrono::steady_clock::now();
  ds::artifact::Artifact::Options open_options;
  for (const std::string& f : a.trusted_keys) {
    auto key = ds::artifact::readPublicKeyFile(f);
    if (!key.isOk()) die(key.status().message());
    open_options.trusted_keys.push_back(key.value());
  }
  auto art = ds::artifact::Artifact::open(a.artifact, open_options);
  if (!art.isOk()) die(art.status().message());
  ds::EngineOptions eo;
  eo.allow_native_code = a.native_code;
  eo.gpu_memory_fraction = a.gpu_memory_fraction;
  eo.enforce_eager = a.enforce_eager;
  eo.device_ordinal = a.gpu_ordinal;
  eo.kv_cache_bytes = a.kv_cache_bytes;
  eo.cpu_kv_cache_bytes = 256ull << 20;
  eo.num_threads = a.threads;
  eo.max_model_len = a.max_model_len;
  auto session = ds::Session::create(**art, eo);
  if (!session.isOk()) die(session.status().message());
  ds::Session& s = **session;
  auto t1 = std::chrono::steady_clock::now();

  std::vector<ds::TextRequest> requests;
  for (const auto& ids : a.prompt_ids) {
    ds::TextRequest r;
    r.prompt_ids = ids;
    requests.push_back(r);
  }
  for (const std::string& p : a.prompts) {
    ds::TextRequest r;
    r.prompt.text = p;
    r.prompt.chat = a.chat;
    r.prompt.add_bos = !a.no_bos;
    r.prompt.parse_special = a.parse_special;
    if (a.show_prompt) {
      auto rendered = s.render(r.prompt);
      if (!rendered.isOk()) die(rendered.status().message());
      auto ids = s.encode(r.prompt);
      if (!ids.isOk()) die(ids.status().message());
      std::fprintf(stderr, "prompt: %s\nprompt ids:", rendered->c_str());
      for (auto id : *ids) std::fprintf(stderr, " %d", static_cast<int>(id));
      std::fprintf(stderr, "\n");
    }
    requests.push_back(r);
  }
  std::vector<int64_t> ids;
  for (ds::TextRequest& r : requests) {
    r.sampling = a.sampling;
    r.max_new_tokens = a.max_new_tokens;
    r.ignore_eos = a.ignore_eos;
    r.stop = a.stop;
    auto id = s.submit(r);
    if (!id.isOk()) die(id.status().message());
    ids.push_back(*id);
  }
  const bool stream = requests.size() == 1 && !a.print_ids;
  std::vector<ds::TextEvent> events;
  std::map<int64_t, std::string> texts;  // events' text: stops before a stop string
  int64_t generated = 0, steps = 0;
  while (s.hasWork()) {
    events.clear();
    ds::Status st = s.step(&events);
    if (!st.isOk()) die(st.message());
    ++steps;
    for (const ds::TextEvent& e : events) {
      ++generated;
      texts[e.request] += e.text;
      if (e.logprobs) {
        std::fprintf(stderr, "logprobs [%lld] %d %.6f", static_cast<long long>(e.request),
                     static_cast<int>(e.token), e.logprobs->logprob);
        for (const ds::TopLogprob& t : e.logprobs->top)
          std::fprintf(stderr, " %d:%.6f", static_cast<int>(t.token), t.logprob);
        std::fprintf(stderr, "\n");
      }
      if (!stream) continue;
      std::fwrite(e.text.data(), 1, e.text.size(), stdout);
      std::fflush(stdout);
    }
  }
  if (stream) {
    std::fputc('\n', stdout);
  } else {
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::vector<int32_t>& out = s.generated(ids[i]);
      if (a.print_ids) {
        for (size_t j = 0; j < out.size(); ++j) std::printf("%s%d", j ? " " : "", out[j]);
        std::printf("\n");
      } else if (s.tokenizer()) {
        std::printf("[%zu] %s\n", i, texts[ids[i]].c_str());
      } else {
        auto text = s.decode(out);  // the error naming the artifact
        if (!text.isOk()) die(text.status().message());
      }
    }
  }
  auto t2 = std::chrono::steady_clock::now();
  if (a.stats) {
    double load = std::chrono::duration<double>(t1 - t0).count();
    double run = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr, "ds-run: load %.3f s, %lld tokens in %lld steps, %.3f s, %.1f tokens/s\n",
                 load, static_cast<long long>(generated), static_cast<long long>(steps), run,
                 run > 0 ? generated / run : 0.0);
  }
  return 0;
}

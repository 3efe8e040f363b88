// ds-bench: measures an artifact: teacher-forced perplexity over a token file, decode and
// prefill throughput. Speed belongs here, not in unit tests.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/exit_codes.h"
#include "common/numeric_flags.h"
#include "base/read_file.h"
#include "engine/engine.h"
#include "artifact/artifact_info.h"
#include "artifact/artifact_reader.h"
#include "exec/model_runner.h"
#include "sweep.h"

namespace {

[[noreturn]] void die(const std::string& m, int code = ds::tools::kExitFailure) {
  std::fprintf(stderr, "ds-bench: error: %s\n", m.c_str());
  std::exit(code);
}
// A command-line mistake: exit code 2 (docs/tools.md).
[[noreturn]] void usageError(const std::string& m) { die(m, ds::tools::kExitUsage); }

int64_t count(const std::string& flag, const std::string& v, int64_t lo = 0, int64_t hi = 1 << 30) {
  ds::tools::Parsed<int64_t> p = ds::tools::parseIntFlag(flag, v, lo, hi);
  if (!p.value) usageError(p.error);
  return *p.value;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// exp(mean NLL) of tokens[1..] given their prefixes, in chunks of `chunk` tokens per step.
double perplexity(ds::ModelRunner& runner, const std::vector<int32_t>& tokens, int64_t chunk) {
  int64_t n = static_cast<int64_t>(tokens.size()), bs = runner.blockSize();
  ds::StepBatch b;
  b.num_seqs = 1;
  b.max_blocks_per_seq = (n + bs - 1) / bs;
  for (int64_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_table.push_back(static_cast<int32_t>(i));
  int64_t vocab = runner.vocabSize();
  double nll = 0;
  int64_t count = 0;
  std::vector<float> logits;
  for (int64_t start = 0; start + 1 < n; start += chunk) {
    int64_t end = std::min(n - 1, start + chunk);
    b.token_ids.assign(tokens.begin() + start, tokens.begin() + end);
    b.positions.clear();
    b.logit_rows.clear();
    for (int64_t p = start; p < end; ++p) {
      b.positions.push_back(static_cast<int32_t>(p));
      b.logit_rows.push_back(static_cast<int32_t>(p - start));
    }
    b.token_seq.assign(end - start, 0);
    ds::Status st = stepToHost(runner, b, &logits);
    if (!st.isOk()) die(st.message());
    for (int64_t r = 0; r < end - start; ++r) {
      const float* row = logits.data() + r * vocab;
      double mx = row[0];
      for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, double(row[v]));
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - mx);
      nll += std::log(sum) + mx - row[tokens[start + r + 1]];
      ++count;
    }
  }
  return std::exp(nll / count);
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, ids_file;
  bool sweep = false;
  ds::bench::SweepOptions sweep_options;
  int64_t decode_tokens = 0, prefill_tokens = 0, threads = 0;
  std::vector<std::string> trusted_keys;  // public key files (docs/artifact.md)
  bool native_code = true;
  double gpu_memory_fraction = 0.9;  // GPU artifacts (docs/cuda.md)
  bool enforce_eager = false;
  int64_t gpu_ordinal = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usageError(a + " needs a value");
      return argv[++i];
    };
    if (a == "--perplexity") ids_file = value();
    else if (a == "--sweep") sweep = true;
    else if (a == "--json") sweep_options.json = true;
    else if (a == "--batches") {
      auto v = ds::tools::parseIntListFlag(a, value(), 1, 4096);
      if (!v.value || v.value->empty()) usageError(v.value ? a + " needs at least one size" : v.error);
      sweep_options.batches.assign(v.value->begin(), v.value->end());
    } else if (a == "--prompts") {
      auto v = ds::tools::parseIntListFlag(a, value(), 1, 1 << 20);
      if (!v.value || v.value->empty()) usageError(v.value ? a + " needs at least one length" : v.error);
      sweep_options.prompts.assign(v.value->begin(), v.value->end());
    } else if (a == "--context") sweep_options.context = count(a, value(), 1, 1 << 20);
    else if (a == "--decode-steps") sweep_options.decode_steps = count(a, value(), 1, 1 << 16);
    else if (a == "--decode") decode_tokens = count(a, value());
    else if (a == "--prefill") prefill_tokens = count(a, value());
    else if (a == "--threads") threads = count(a, value(), 0, 1024);
    else if (a == "--trusted-key") trusted_keys.push_back(value());
    else if (a == "--no-native-code") native_code = false;
    else if (a == "--enforce-eager") enforce_eager = true;
    else if (a == "--gpu-memory-fraction") {
      ds::tools::Parsed<double> f = ds::tools::parseRealFlag(a, value(), 0.01, 1);
      if (!f.value) usageError(f.error);
      gpu_memory_fraction = *f.value;
    } else if (a == "--gpu-ordinal") gpu_ordinal = count(a, value(), 0, 1023);
    else if (a == "-h" || a == "--help") {
      std::puts("usage: ds-bench <model.dsa> [--perplexity ids.txt] [--decode N] [--prefill N] [--threads N]\n"
                "                [--trusted-key KEY.pub]... [--no-native-code]\n"
                "                [--gpu-memory-fraction 0.9] [--gpu-ordinal N] [--enforce-eager]\n"
                "                [--sweep [--batches 1,8,32,128] [--prompts 128,512,2048] [--context 128]\n"
                "                 [--decode-steps 16] [--json]]\n"
                "  --sweep: decode tokens/s per batch size and prefill time per prompt length, beside the\n"
                "           cost model's prediction and the fraction of this machine's measured roofline\n"
                "  --perplexity: whitespace-separated token ids (BOS is prepended when the model has one)\n"
                "  --trusted-key: refuse artifacts not signed by one of these keys\n"
                "  --no-native-code: never load the artifact's generated code (library kernels)\n"
                "  --gpu-memory-fraction: GPU artifacts: share of the GPU's memory to use (default 0.9)\n"
                "  --gpu-ordinal: GPU artifacts: which GPU (default 0)\n"
                "  --enforce-eager: GPU artifacts: decode steps launch by launch (no CUDA graphs)");
      return 0;
    } else if (path.empty()) path = a;
    else if (!a.empty() && a[0] == '-') usageError("unknown option " + a + " (see --help)");
    else usageError("unexpected argument " + a);
  }
  if (path.empty()) usageError("usage: ds-bench <model.dsa> ... (see --help)");
  ds::artifact::Artifact::Options open_options;
  for (const std::string& f : trusted_keys) {
    auto key = ds::artifact::readPublicKeyFile(f);
    if (!key.isOk()) die(key.status().message());
    open_options.trusted_keys.push_back(key.value());
  }
  auto art = ds::artifact::Artifact::open(path, open_options);
  if (!art.isOk()) die(art.status().message());
  // Numbers from a synthetic artifact are speed numbers only: say so before any of them.
  const bool synthetic = (*art)->meta()->synthetic_weights();
  if (synthetic)
    std::printf("weights: synthetic-random (seed %llu, %.1f MiB filled into memory at load): "
                "speed is meaningful, the tokens and perplexity are not\n",
                static_cast<unsigned long long>((*art)->meta()->synthetic_seed()),
                ds::artifact::weightBytes(*(*art)->meta()) / 1048576.0);
  if (!ids_file.empty()) {
    std::string text;
    ds::Status read = ds::readRegularFile(ids_file, &text);
    if (!read.isOk()) die(read.message());
    std::vector<int32_t> tokens;
    int32_t bos = (*art)->meta()->model()->bos_token_id();
    if (bos >= 0) tokens.push_back(bos);
    const int32_t vocab = static_cast<int32_t>((*art)->meta()->model()->vocab_size());
    ds::tools::Parsed<std::vector<int32_t>> ids =
        ds::tools::parseIntListFlag(ids_file, text, 0, std::max(vocab - 1, 0));
    if (!ids.value) die(ids.error);
    tokens.insert(tokens.end(), ids.value->begin(), ids.value->end());
    if (tokens.size() < 2) die(ids_file + ": needs at least one token to predict");
    ds::RunnerOptions ro;
    const auto* plan = (*art)->meta()->plan();
    const int64_t block = plan && plan->kv_cache() ? plan->kv_cache()->block_size() : 0;
    if (block <= 0) die(path + ": the artifact's plan has no KV block size");
    // One sequence over all the tokens, in the artifact's block size (not an assumed 16).
    ro.num_kv_blocks = (static_cast<int64_t>(tokens.size()) + block - 1) / block + 1;
    ro.num_threads = static_cast<int>(threads);
    ro.allow_native_code = native_code;
    ro.gpu_memory_fraction = gpu_memory_fraction;
    ro.device_ordinal = static_cast<int>(gpu_ordinal);
    ro.enforce_eager = enforce_eager;
    auto runner = ds::ModelRunner::create(**art, ro);
    if (!runner.isOk()) die(runner.status().message());
    double ppl = perplexity(**runner, tokens, 64);
    std::printf("perplexity %.6f over %zu tokens\n", ppl, tokens.size() - 1);
  }
  if (sweep) {
    sweep_options.engine.num_threads = static_cast<int>(threads);
    sweep_options.engine.allow_native_code = native_code;
    sweep_options.engine.gpu_memory_fraction = gpu_memory_fraction;
    sweep_options.engine.enforce_eager = enforce_eager;
    sweep_options.engine.device_ordinal = static_cast<int>(gpu_ordinal);
    const int rc = ds::bench::runSweep(**art, sweep_options);
    if (rc) return rc;
  }
  if (decode_tokens > 0 || prefill_tokens > 0) {
    ds::EngineOptions eo;
    eo.num_threads = static_cast<int>(threads);
    eo.allow_native_code = native_code;
    eo.gpu_memory_fraction = gpu_memory_fraction;
    eo.enforce_eager = enforce_eager;
    eo.device_ordinal = static_cast<int>(gpu_ordinal);
    eo.max_step_tokens = std::max<int64_t>(prefill_tokens, 1);
    const double load0 = now();
    auto engine = ds::Engine::create(**art, eo);
    if (!engine.isOk()) die(engine.status().message());
    if (synthetic) {
      const double seconds = now() - load0;
      std::printf("load (synthetic fill): %.3f s (%.2f GB/s)\n", seconds,
                  ds::artifact::weightBytes(*(*art)->meta()) / 1e9 / std::max(seconds, 1e-9));
    }
    ds::GenerationRequest r;
    r.prompt.assign(std::max<int64_t>(prefill_tokens, 1), 1);
    r.max_new_tokens = std::max<int64_t>(decode_tokens, 1);
    auto id = (*engine)->submit(r);
    if (!id.isOk()) die(id.status().message());
    std::vector<ds::TokenEvent> ev;
    double t0 = now();
    ds::Status st = (*engine)->step(&ev);  // the prefill step (whole prompt) + first token
    if (!st.isOk()) die(st.message());
    double t1 = now();
    while ((*engine)->hasWork()) {
      st = (*engine)->step(&ev);
      if (!st.isOk()) die(st.message());
    }
    double t2 = now();
    std::printf("prefill %lld tokens: %.3f ms (%.1f tokens/s)\n", static_cast<long long>(r.prompt.size()),
                (t1 - t0) * 1e3, r.prompt.size() / (t1 - t0));
    if (decode_tokens > 1)
      std::printf("decode %lld tokens: %.1f tokens/s (%.3f ms/token)\n",
                  static_cast<long long>(decode_tokens - 1), (decode_tokens - 1) / (t2 - t1),
                  (t2 - t1) * 1e3 / (decode_tokens - 1));
  }
  return 0;
}

// Encode throughput of a tokenizer (default: deepseek-llm) on a long English + Chinese + code text.
// Usage: ds-bench-tokenizer [tokenizer.json|model-dir] [megabytes]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <time.h>

#include "tokenizer/tokenizer.h"

namespace {

// Varied so that the word cache sees realistic reuse rather than one repeated paragraph.
std::string makeText(size_t bytes) {
  const char* english[] = {
      "The quick brown fox jumps over the lazy dog while the committee reviews the 2024 budget. ",
      "In 1969, astronauts landed on the Moon; it's remembered as humanity's giant leap. ",
      "Researchers didn't expect the results: accuracy rose from 71.3% to 88.9% after tuning! ",
      "She said, \"We'll ship version 3.2.1 on Friday,\" and everyone nodded. ",
  };
  const char* chinese[] = {
      "\xE6\xB7\xB1\xE5\xBA\xA6\xE6\xB1\x82\xE7\xB4\xA2\xE6\x98\xAF\xE4\xB8\x80\xE5\xAE\xB6\xE4\xBA\xBA\xE5\xB7\xA5"
      "\xE6\x99\xBA\xE8\x83\xBD\xE5\x85\xAC\xE5\x8F\xB8\xEF\xBC\x8C\xE8\x87\xB4\xE5\x8A\x9B\xE4\xBA\x8E\xE5\xA4\xA7"
      "\xE8\xAF\xAD\xE8\xA8\x80\xE6\xA8\xA1\xE5\x9E\x8B\xE7\x9A\x84\xE7\xA0\x94\xE7\xA9\xB6\xE3\x80\x82",
      "\xE4\xBB\x8A\xE5\xA4\xA9\xE5\xA4\xA9\xE6\xB0\x94\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x8C\xE6\x88\x91\xE4\xBB\xAC"
      "\xE5\x8E\xBB\xE5\x85\xAC\xE5\x9B\xAD\xE6\x95\xA3\xE6\xAD\xA5\xE5\x90\xA7\xEF\xBC\x81 ",
  };
  const char* code[] = {
      "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n",
      "for (int i = 0; i < n; ++i) {\n  sum += a[i] * b[i];  // dot product\n}\n",
      "    const auto& [key, value] = *map.find(\"token_\" + std::to_string(id));\n",
  };
  std::string s;
  unsigned k = 0;
  while (s.size() < bytes) {
    s += english[k % 4];
    s += chinese[k % 2];
    s += code[k % 3];
    s += "item_" + std::to_string(k * 7919 % 100000) + " = " + std::to_string(k % 997) + "\n";
    ++k;
  }
  return s;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of this thread: on a shared machine wall time mostly measures the neighbours.
double cpuNow() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : std::string(DS_SHARED_DATA_DIR) + "/tokenizers/deepseek-llm/tokenizer.json";
  double mb = argc > 2 ? std::atof(argv[2]) : 16.0;
  std::string text = makeText(static_cast<size_t>(mb * 1e6));
  double t0 = now();
  auto tok = ds::Tokenizer::fromPath(path);
  if (!tok.isOk()) {
    std::fprintf(stderr, "ds-bench-tokenizer: %s\n", tok.status().toString().c_str());
    return 1;
  }
  std::printf("load: %.3f s (%s)\n", now() - t0, path.c_str());
  // Chunks of ~4 KB, as a server sees prompts; the first pass starts with an empty word cache.
  const size_t chunk = 4096;
  for (int pass = 0; pass < 2; ++pass) {
    size_t tokens = 0;
    double start = now(), cpu_start = cpuNow();
    for (size_t off = 0; off < text.size();) {
      size_t end = std::min(text.size(), off + chunk);
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
      auto ids = (*tok)->encode(std::string_view(text).substr(off, end - off), false);
      if (!ids.isOk()) {
        std::fprintf(stderr, "ds-bench-tokenizer: %s\n", ids.status().toString().c_str());
        return 1;
      }
      tokens += ids->size();
      off = end;
    }
    double wall = now() - start, secs = cpuNow() - cpu_start;
    std::printf("pass %d (%s cache): %.1f MB in %.3f s CPU (%.3f s wall) = %.1f MB/s, %.2f M tokens/s "
                "(%zu tokens, %.2f bytes/token)\n",
                pass, pass == 0 ? "cold" : "warm", text.size() / 1e6, secs, wall, text.size() / 1e6 / secs,
                tokens / 1e6 / secs, tokens, static_cast<double>(text.size()) / static_cast<double>(tokens));
  }
  return 0;
}

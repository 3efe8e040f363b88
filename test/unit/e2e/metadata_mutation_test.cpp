// Random mutations of real artifacts' metadata with valid checksums (what a careless tool or an
// attacker can produce): every one is refused at open, refused when the runner binds the plan,
// or runs a step to a status; none may crash or hang. Run it under ASan (README) to also catch
// silent out-of-bounds accesses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "artifact/format.h"
#include "artifact/layout.h"
#include "e2e_util.h"
#include "exec/model_runner.h"

namespace ds::test {
namespace {

std::vector<uint8_t> readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

struct Outcome {
  int refused_at_open = 0, refused_at_bind = 0, step_error = 0, step_ok = 0;
};

void mutateAndRun(const std::string& model, int count, uint32_t seed, Outcome* o) {
  const std::vector<uint8_t> original = readAll(artifactPath(model));
  ASSERT_GT(original.size(), sizeof(artifact::FileHeader));
  artifact::FileHeader h;
  std::memcpy(&h, original.data(), sizeof(h));
  const std::string path = ::testing::TempDir() + "ds_mutation_" + std::to_string(::getpid()) + ".dsa";
  std::mt19937 rng(seed);
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> file = original;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      const uint64_t at = h.metadata_offset + rng() % h.metadata_size;
      file[at] = static_cast<uint8_t>(rng());
    }
    artifact::FileHeader m = h;
    m.metadata_xxh64 = artifact::checksum(file.data() + h.metadata_offset, h.metadata_size);
    m.header_xxh64 = artifact::headerChecksum(m);
    std::memcpy(file.data(), &m, sizeof(m));
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
    }
    if (std::getenv("DS_MUTATION_TRACE")) {
      std::fprintf(stderr, "%s #%d\n", model.c_str(), i);
      std::ofstream(path + ".last", std::ios::binary)
          .write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
    }
    auto art = artifact::Artifact::open(path);
    if (!art.isOk()) {
      ++o->refused_at_open;
      EXPECT_NE(art.status().message().find(path), std::string::npos) << art.status().message();
      continue;
    }
    RunnerOptions ro;
    ro.num_kv_blocks = 8;
    ro.num_threads = 1;
    auto runner = ModelRunner::create(**art, ro);
    if (!runner.isOk()) {
      ++o->refused_at_bind;
      continue;
    }
    const int32_t vocab = static_cast<int32_t>(std::min<int64_t>((*runner)->vocabSize(), 1 << 30));
    StepBatch b;
    for (int32_t t = 0; t < 3; ++t) {
      b.token_ids.push_back(vocab > 0 ? (t + 1) % vocab : 0);
      b.positions.push_back(t);
      b.token_seq.push_back(0);
    }
    b.logit_rows = {2};
    b.num_seqs = 1;
    b.max_blocks_per_seq = 2;
    b.block_table = {0, 1};
    auto view = (*runner)->step(b);
    ++(view.isOk() ? o->step_ok : o->step_error);
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

TEST(MetadataMutation, NeverCrashes) {
  Outcome o;
  // DS_MUTATIONS=N runs N per model (a longer soak, e.g. under ASan); CI runs 100.
  const char* env = std::getenv("DS_MUTATIONS");
  const int per_model = env ? std::max(1, std::atoi(env)) : 100;
  const char* models[] = {"tiny-llama", "tiny-deepseek-v3", "tiny-deepseek-v3.tp2", "tiny-qwen2"};
  for (size_t m = 0; m < std::size(models); ++m)
    mutateAndRun(models[m], per_model, static_cast<uint32_t>(1234 + m), &o);
  RecordProperty("refused_at_open", o.refused_at_open);
  RecordProperty("refused_at_bind", o.refused_at_bind);
  RecordProperty("step_error", o.step_error);
  RecordProperty("step_ok", o.step_ok);
  std::printf("mutations: %d refused at open, %d at bind, %d step errors, %d steps ran\n",
              o.refused_at_open, o.refused_at_bind, o.step_error, o.step_ok);
  EXPECT_EQ(o.refused_at_open + o.refused_at_bind + o.step_error + o.step_ok,
            per_model * static_cast<int>(std::size(models)));
}

}  // namespace
}  // namespace ds::test

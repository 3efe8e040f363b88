// Mutations of real artifacts' metadata with valid checksums (what a careless tool or an attacker
// can produce): every one is refused at open, refused when the runner binds the plan, or runs a
// step to a status; none may crash, hang or (under -DDS_ENABLE_ASAN=ON) touch memory it does not
// own. A fixed seed list of 2,500 mutants (500 per artifact) runs in CI; DS_MUTATIONS=N runs N
// per artifact for a longer soak. The libFuzzer variant is test/fuzz/artifact_metadata.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <random>

#include "mutant_runner.h"

namespace ds::test {
namespace {

std::string artifactPath(const std::string& model) {
  return std::string(DS_MUTATION_ARTIFACTS) + "/" + model + ".dsa";
}

void mutateAndRun(const std::string& model, int count, uint32_t seed, MutantOutcome* o) {
  const std::vector<uint8_t> original = readWholeFile(artifactPath(model));
  const std::vector<uint8_t> metadata = metadataOf(original);
  ASSERT_FALSE(metadata.empty()) << artifactPath(model);
  std::mt19937 rng(seed);
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> md = metadata;
    const int rounds = 1 + static_cast<int>(rng() % 2);
    for (int r = 0; r < rounds; ++r) mutate(&md, &rng);
    if (std::getenv("DS_MUTATION_TRACE")) std::fprintf(stderr, "%s #%d\n", model.c_str(), i);
    std::string error;
    const int refused_before = o->refused_at_open;
    runMutant(withMetadata(original, md.data(), md.size()), o, &error);
    // A refusal names the file and says what is wrong.
    if (o->refused_at_open > refused_before) {
      EXPECT_NE(error.find("/proc/self/fd/"), std::string::npos) << error;
    }
  }
}

TEST(MetadataMutation, NeverCrashes) {
  MutantOutcome o;
  const char* env = std::getenv("DS_MUTATIONS");
  const int per_model = env ? std::max(1, std::atoi(env)) : 500;
  const char* models[] = {"tiny-llama", "tiny-deepseek-v3", "tiny-deepseek-v3.tp2", "tiny-qwen2",
                          "tiny-deepseek-v3.ep2"};
  for (size_t m = 0; m < std::size(models); ++m)
    mutateAndRun(models[m], per_model, static_cast<uint32_t>(1234 + m), &o);
  RecordProperty("refused_at_open", o.refused_at_open);
  RecordProperty("refused_at_bind", o.refused_at_bind);
  RecordProperty("step_error", o.step_error);
  RecordProperty("step_ok", o.step_ok);
  std::printf("%d mutants: %d refused at open, %d at bind, %d step errors, %d steps ran\n", o.total(),
              o.refused_at_open, o.refused_at_bind, o.step_error, o.step_ok);
  EXPECT_EQ(o.total(), per_model * static_cast<int>(std::size(models)));
  // Most mutants must be caught before anything runs (a sanity check that mutations land).
  EXPECT_GT(o.refused_at_open, o.total() / 4);
}

}  // namespace
}  // namespace ds::test

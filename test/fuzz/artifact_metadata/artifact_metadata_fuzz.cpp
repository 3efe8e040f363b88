// libFuzzer: arbitrary bytes as the metadata of a real artifact (valid checksums), opened, bound
// to the CPU device and stepped once. Any crash, hang or sanitizer report is a loader bug.
//   DS_FUZZ_ARTIFACT=build/test/artifacts/tiny-deepseek-v3.dsa \
//     build/test/fuzz/artifact_metadata/artifact_metadata_fuzz corpus/ -max_len=65536
// The real artifact's metadata is the best seed: DS_FUZZ_WRITE_SEED=corpus/seed writes it there
// at start (then run the fuzzer on corpus/).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "mutant_runner.h"

namespace {

const std::vector<uint8_t>& original() {
  static const std::vector<uint8_t> file = [] {
    const char* env = std::getenv("DS_FUZZ_ARTIFACT");
    const std::string path = env ? env : DS_DEFAULT_FUZZ_ARTIFACT;
    std::vector<uint8_t> f = ds::test::readWholeFile(path);
    if (f.size() < 64) {
      std::fprintf(stderr, "artifact_metadata_fuzz: cannot read %s (set DS_FUZZ_ARTIFACT)\n", path.c_str());
      std::abort();
    }
    if (const char* seed = std::getenv("DS_FUZZ_WRITE_SEED")) {
      const std::vector<uint8_t> md = ds::test::metadataOf(f);
      std::ofstream(seed, std::ios::binary).write(reinterpret_cast<const char*>(md.data()),
                                                  static_cast<std::streamsize>(md.size()));
    }
    return f;
  }();
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ds::test::MutantOutcome outcome;
  ds::test::runMutant(ds::test::withMetadata(original(), data, size), &outcome);
  return 0;
}

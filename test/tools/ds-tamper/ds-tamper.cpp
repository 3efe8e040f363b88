// ds-tamper (test only): writes a tampered copy of an artifact with every checksum recomputed.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "artifact_tamper.h"

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fputs("usage: ds-tamper IN OUT --flip-code-byte N | --strip-signature\n", stderr);
    return 2;
  }
  const std::string in = argv[1], out = argv[2], what = argv[3];
  std::vector<uint8_t> file = ds::test::readFileBytes(in);
  std::string error;
  if (what == "--flip-code-byte" && argc == 5) {
    error = ds::test::flipCodeByte(&file, std::strtoull(argv[4], nullptr, 10));
  } else if (what == "--strip-signature" && argc == 4) {
    error = ds::test::stripSignature(&file);
  } else {
    std::fputs("ds-tamper: bad arguments\n", stderr);
    return 2;
  }
  if (!error.empty()) {
    std::fprintf(stderr, "ds-tamper: %s: %s\n", in.c_str(), error.c_str());
    return 1;
  }
  if (!ds::test::writeFileBytes(out, file)) {
    std::fprintf(stderr, "ds-tamper: cannot write %s\n", out.c_str());
    return 1;
  }
  return 0;
}

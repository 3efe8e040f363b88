// ds-keygen: writes an Ed25519 key pair for ds-compile --sign and --trusted-key (docs/artifact.md).
#include <cstdio>
#include <string>

#include "artifact/signing_keys.h"
#include "common/exit_codes.h"

namespace {

constexpr const char* kUsage =
    "usage: ds-keygen PREFIX\n"
    "  writes PREFIX.key (the secret key, mode 0600: give it to ds-compile --sign) and\n"
    "  PREFIX.pub (the public key: give it to ds-run / ds-bench --trusted-key); never replaces\n"
    "  an existing file\n";

int fail(const std::string& message, int code = ds::tools::kExitFailure) {
  std::fprintf(stderr, "ds-keygen: error: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string prefix;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return ds::tools::kExitOk;
    }
    if (!arg.empty() && arg[0] == '-')
      return fail("unknown option '" + arg + "'\n" + kUsage, ds::tools::kExitUsage);
    if (!prefix.empty())
      return fail("more than one prefix given ('" + prefix + "', '" + arg + "')",
                  ds::tools::kExitUsage);
    prefix = arg;
  }
  if (prefix.empty()) return fail(std::string("no prefix given\n") + kUsage, ds::tools::kExitUsage);
  auto keys = ds::artifact::generateKeyPair();
  if (!keys.isOk()) return fail(keys.status().message());
  ds::Status s = ds::artifact::writeKeyFiles(prefix, keys.value());
  if (!s.isOk()) return fail(s.message());
  std::printf("ds-keygen: wrote %s.key and %s.pub (key id %s)\n", prefix.c_str(), prefix.c_str(),
              ds::artifact::keyId(keys->public_key).c_str());
  return ds::tools::kExitOk;
}

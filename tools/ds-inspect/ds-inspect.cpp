// ds-inspect: prints a summary of a .dsa artifact (text or --json); errors as one line, exit 1
// (2 for a command-line mistake, docs/tools.md).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "common/exit_codes.h"
#include "exec/model_runner.h"
#include "hal/cpu/generated_kernels.h"
#include "summary.h"

namespace {

constexpr const char* kUsage =
    "usage: ds-inspect [--json] [--tensors] [--verify-weights] <file.dsa>\n"
    "  --json            print the summary as JSON\n"
    "  --tensors         list every tensor (default: the first 10)\n"
    "  --verify-weights  also check every weight segment's checksum (reads all weights)\n";

int fail(const std::string& message, int code = ds::tools::kExitFailure) {
  std::fprintf(stderr, "ds-inspect: error: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  bool json_out = false;
  ds::inspect::SummaryOptions options;
  ds::artifact::Artifact::Options open_options;
  open_options.verify_weights = false;  // inspecting a 700 GB artifact must not read it all
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json_out = true;
    } else if (arg == "--tensors") {
      options.all_tensors = true;
    } else if (arg == "--verify-weights") {
      open_options.verify_weights = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "'\n" + kUsage, ds::tools::kExitUsage);
    } else if (!path.empty()) {
      return fail("more than one artifact given ('" + path + "', '" + arg + "')",
                  ds::tools::kExitUsage);
    } else {
      path = arg;
    }
  }
  if (path.empty()) return fail(std::string("no artifact given\n") + kUsage, ds::tools::kExitUsage);
  options.weights_verified = open_options.verify_weights;

  auto artifact = ds::artifact::Artifact::open(path, open_options);
  if (!artifact.isOk()) return fail(artifact.status().message());
  try {
    nlohmann::json summary = ds::inspect::summarize(**artifact, options);
    // The loader's verdict beyond the metadata: a device for the target, code this CPU runs
    // (checked without mapping the code).
    const ds::Status here = ds::ModelRunner::checkRunsHere(**artifact);
    summary["runs_here"] = here.isOk() ? nlohmann::json(true) : nlohmann::json(here.message());
    // The host code object this CPU would load (one of several in a fat host artifact).
    if (ds::StatusOr<int> host = ds::chooseHostCodeObject(**artifact);
        host.isOk() && *host >= 0 && static_cast<size_t>(*host) < summary["code"].size())
      summary["code"][*host]["runs_here"] = true;
    // Names come from the file: replace invalid UTF-8 rather than fail the whole summary.
    const std::string out =
        json_out ? summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"
                 : ds::inspect::renderText(summary) + "runs here: " +
                       (here.isOk() ? std::string("yes") : "no: " + here.message()) + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  } catch (const std::exception& e) {
    return fail(path + ": " + e.what());
  }
  return std::fflush(stdout) == 0 ? 0 : fail("writing the summary failed");
}

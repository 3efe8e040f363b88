// Exit codes shared by every ds-* tool (docs/tools.md): 0 success, 1 the work failed (a bad
// file, artifact, model folder or request: the message names it), 2 the command line is wrong
// (unknown flag, missing or malformed value, missing argument). Never a crash, never 128+.
#pragma once

namespace ds::tools {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace ds::tools

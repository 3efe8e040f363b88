#!/usr/bin/env bash
# expect_exit.sh CODE COMMAND...: runs COMMAND (stdout and stderr discarded) and fails unless it
# exits with CODE. For lit tests of the tools' exit-code contract (docs/tools.md).
want="$1"; shift
"$@" > /dev/null 2>&1
got=$?
if [ "$got" != "$want" ]; then
  echo "expected exit code $want, got $got: $*" >&2
  exit 1
fi

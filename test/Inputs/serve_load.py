#!/usr/bin/env python3
"""The ds-serve load acceptance (test/runtime/serve_load.test, issue #12): starts ds-serve on a
free port with a KV cache small enough to force preemptions, runs bench/serve/load_check.py
(concurrent streaming clients, a shared system prompt, every greedy output compared with the
same request run alone, /metrics after the run), then SIGTERM: exit 0.
usage: serve_load.py --bin BUILD/bin --artifact stories.dsa [load_check.py flags...]
"""
import os
import re
import select
import signal
import subprocess
import sys

args = sys.argv[1:]
bin_dir = args[args.index("--bin") + 1]
artifact = args[args.index("--artifact") + 1]
rest = [a for i, a in enumerate(args) if a not in ("--bin", "--artifact") and
        (i == 0 or args[i - 1] not in ("--bin", "--artifact"))]
signal.alarm(300)
server = subprocess.Popen([os.path.join(bin_dir, "ds-serve"), artifact, "--port", "0",
                           "--kv-cache-mem", "768K", "--max-num-seqs", "64", "--max-waiting", "1000",
                           "--served-model-name", "stories"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
ready, _, _ = select.select([server.stdout], [], [], 60)
banner = server.stdout.readline() if ready else ""
m = re.search(r"http://[^:]+:(\d+) ", banner)
if not m:
    server.kill()
    sys.exit("ds-serve did not start: %r %s" % (banner, server.stderr.read()[:500]))
load = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "serve", "load_check.py")
r = subprocess.run([sys.executable, load, "--url", "http://127.0.0.1:" + m.group(1), "--model", "stories"] + rest,
                   capture_output=True, text=True, timeout=280)
print(r.stdout, end="")
print(r.stderr, end="", file=sys.stderr)
server.send_signal(signal.SIGTERM)
code = server.wait(60)
if r.returncode != 0 or code != 0:
    sys.exit("load_check exit %d, ds-serve exit %d" % (r.returncode, code))
print("serve load: ok")

#!/usr/bin/env python3
"""Signals ds-compile while it writes an artifact and checks that nothing is left behind.

Makes a llama checkpoint big enough (~270 MB of f32 weights, a sparse file) that the artifact
write takes a while, starts `ds-compile <model> -o <out>/a.dsa`, waits until the process holds
a file open in <out> (the O_TMPFILE descriptor, or the named temp file where O_TMPFILE is
unsupported), sends the signal, and fails unless the process died of it and <out> is empty.
Usage: kill_mid_write.py <ds-compile> <ds-make-synthetic.py> <work-dir> SIGKILL|SIGTERM|SIGINT...
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

compiler, synthetic, work = sys.argv[1], sys.argv[2], sys.argv[3]
signals = [getattr(signal, name) for name in sys.argv[4:]]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
config = {"model_type": "llama", "vocab_size": 32768, "hidden_size": 1024,
          "intermediate_size": 1024, "num_hidden_layers": 1, "num_attention_heads": 8,
          "max_position_embeddings": 512, "tie_word_embeddings": False}
with open(os.path.join(work, "config.json"), "w") as f:
    json.dump(config, f)
model = os.path.join(work, "model")
subprocess.run([sys.executable, synthetic, os.path.join(work, "config.json"), model, "--dtype", "F32"],
               check=True, stdout=subprocess.DEVNULL)


def writing_into(pid, out):
    """True once the process has a file in `out` open (readlink of /proc/<pid>/fd/*)."""
    fd_dir = "/proc/%d/fd" % pid
    try:
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(os.path.join(fd_dir, fd)).startswith(out + "/"):
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


failures = 0
for sig in signals:
    out = os.path.realpath(os.path.join(work, "out-" + sig.name))
    os.makedirs(out)
    # As from an interactive shell: lit may start us with SIGINT ignored, which children inherit.
    proc = subprocess.Popen([compiler, model, "-o", os.path.join(out, "a.dsa"), "--quiet"],
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while proc.poll() is None and not writing_into(proc.pid, out) and time.time() < deadline:
        time.sleep(0.002)
    if proc.poll() is not None:
        print("%s: ds-compile finished (exit %d) before it could be signalled mid-write"
              % (sig.name, proc.returncode))
        failures += 1
        continue
    time.sleep(0.05)  # some megabytes into the write
    proc.send_signal(sig)
    code = proc.wait()
    left = sorted(os.listdir(out))
    print("%s: exit %d, left in the output folder: %s" % (sig.name, code, left or "nothing"))
    if code == 0 or left:
        failures += 1
sys.exit(1 if failures else 0)

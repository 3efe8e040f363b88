#!/usr/bin/env python3
"""ds-serve end to end over real HTTP (test/runtime/serve.test, docs/serving.md).

Starts ds-serve on free ports (--port 0) and drives it with curl, raw HTTP (urllib, sockets)
and the official openai client: both endpoints, streaming and not, greedy output equal to
ds-run's, every error case, client disconnects, the bounded queue, SIGTERM. Exits non-zero on
the first failed check; bounded by an alarm.
usage: serve_e2e.py --bin BUILD/bin --stories stories.dsa --chat chat.dsa
"""
import argparse
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openai

ARGS = None


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Server:
    def __init__(self, artifact, *flags):
        self.cmd = [os.path.join(ARGS.bin, "ds-serve"), artifact, "--port", "0"] + list(flags)
        self.err = open(os.path.join(ARGS.tmp, "serve.%d.err" % id(self)), "w+")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.err, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        check(ready, "ds-serve did not start within 60 s: %s" % self.cmd)
        self.banner = self.proc.stdout.readline()
        m = re.search(r"http://[^:]+:(\d+) \(context (\d+) tokens, KV cache (\d+) tokens\)", self.banner)
        check(m, "no banner from ds-serve: %r (stderr: %s)" % (self.banner, self.stderr()))
        self.port, self.context, self.kv_tokens = int(m.group(1)), int(m.group(2)), int(m.group(3))
        self.url = "http://127.0.0.1:%d" % self.port

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("ds-serve did not exit within %d s of SIGTERM" % timeout)
        check(code == 0, "ds-serve exited %d after SIGTERM (stderr: %s)" % (code, self.stderr()))

    def client(self, key="unused"):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=60)


def request(server, method, path, body=None, headers=None, raw=None):
    """Returns (status, headers, body as text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request(server.url + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def expect_error(server, path, body, status, code=None, param=None, raw=None, headers=None, what=""):
    st, hdrs, text = request(server, "POST", path, body, headers=headers, raw=raw)
    check(st == status, "%s: expected %d, got %d: %s" % (what or body, status, st, text))
    try:
        err = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        fail("%s: not an OpenAI error body: %r" % (what or body, text))
    for key in ("message", "type", "param", "code"):
        check(key in err, "%s: error body lacks %s: %s" % (what, key, text))
    check(err["message"], "empty error message")
    if code is not None:
        check(err["code"] == code, "%s: code %r, expected %r (%s)" % (what or body, err["code"], code, text))
    if param is not None:
        check(err["param"] == param, "%s: param %r, expected %r" % (what or body, err["param"], param))
    return hdrs, err


def metrics(server):
    st, _, text = request(server, "GET", "/metrics")
    check(st == 200, "/metrics answered %d" % st)
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def ds_run(artifact, *flags):
    r = subprocess.run([os.path.join(ARGS.bin, "ds-run"), artifact] + list(flags),
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "ds-run failed: %s" % r.stderr)
    return r.stdout


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "60"] + list(args), capture_output=True, text=True, timeout=90)
    check(r.returncode == 0, "curl failed: %s" % r.stderr)
    return r.stdout


def sse_events(text):
    events = [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]
    check(events and events[-1] == "[DONE]", "stream does not end in data: [DONE]: %r" % text[-200:])
    return [json.loads(e) for e in events[:-1]]


def completions(server, name):
    prompt = "Once upon a time"
    want = ds_run(ARGS.stories, "-p", prompt, "-n", "32", "--no-parse-special")[:-1]  # ds-run adds \n
    want_ids = ds_run(ARGS.stories, "-p", prompt, "-n", "32", "--ids").split()
    body = {"model": name, "prompt": prompt, "max_tokens": 32, "temperature": 0}
    # curl, not streamed.
    r = json.loads(curl(server.url + "/v1/completions", "-H", "Content-Type: application/json", "-d", json.dumps(body)))
    check(r["object"] == "text_completion" and r["model"] == name, "completion envelope: %s" % r)
    check(r["choices"][0]["text"] == want, "greedy text %r != ds-run's %r" % (r["choices"][0]["text"], want))
    check(r["usage"]["completion_tokens"] == len(want_ids), "completion_tokens %s, ds-run made %d" % (r["usage"], len(want_ids)))
    check(r["usage"]["prompt_tokens"] > 1 and r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + len(want_ids), "usage %s" % r["usage"])
    check(r["choices"][0]["finish_reason"] == ("length" if len(want_ids) == 32 else "stop"), "finish_reason %s" % r)
    # curl, streamed: the chunks concatenate to the same text.
    chunks = sse_events(curl("-N", server.url + "/v1/completions", "-H", "Content-Type: application/json",
                             "-d", json.dumps(dict(body, stream=True))))
    check("".join(c["choices"][0]["text"] for c in chunks) == want, "streamed text differs")
    check(chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length"), "last chunk: %s" % chunks[-1])
    check(all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]), "finish_reason before the end")
    # The openai client, both ways; stream_options.include_usage.
    c = server.client()
    r = c.completions.create(model=name, prompt=prompt, max_tokens=32, temperature=0)
    check(r.choices[0].text == want and r.usage.completion_tokens == len(want_ids), "openai completion: %s" % r)
    text, usage = "", None
    for chunk in c.completions.create(model=name, prompt=prompt, max_tokens=32, temperature=0, stream=True,
                                      stream_options={"include_usage": True}):
        if chunk.choices:
            text += chunk.choices[0].text
        if chunk.usage:
            usage = chunk.usage
    check(text == want, "openai stream text %r" % text)
    check(usage and usage.completion_tokens == len(want_ids), "openai stream usage %s" % usage)
    # finish_reason length, prompt as token ids, the default model, seeded sampling is repeatable.
    r = c.completions.create(model=name, prompt=[1, 403, 407], max_tokens=3, temperature=0, extra_body={"ignore_eos": True})
    check(r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3 and r.usage.prompt_tokens == 3, "ids prompt: %s" % r)
    st, _, t = request(server, "POST", "/v1/completions", {"prompt": prompt, "max_tokens": 4})
    check(st == 200 and json.loads(t)["model"] == name, "no model field: %d %s" % (st, t))
    a = c.completions.create(model=name, prompt=prompt, max_tokens=16, temperature=0.9, seed=7)
    b = c.completions.create(model=name, prompt=prompt, max_tokens=16, temperature=0.9, seed=7)
    check(a.choices[0].text == b.choices[0].text, "same seed, different text")
    print("completions: ok")


def chat(server, name):
    want = ds_run(ARGS.chat, "--chat", "-p", "Hello there", "-n", "12", "--no-parse-special")[:-1]
    want_ids = ds_run(ARGS.chat, "--chat", "-p", "Hello there", "-n", "12", "--ids").split()
    c = server.client()
    msgs = [{"role": "user", "content": "Hello there"}]
    r = c.chat.completions.create(model=name, messages=msgs, max_tokens=12, temperature=0)
    check(r.object == "chat.completion" and r.choices[0].message.role == "assistant", "chat envelope: %s" % r)
    check(r.choices[0].message.content == want, "chat text %r != ds-run --chat %r" % (r.choices[0].message.content, want))
    check(r.usage.completion_tokens == len(want_ids), "chat usage %s vs %d" % (r.usage, len(want_ids)))
    pieces, roles, finish, usage = [], [], None, None
    for chunk in c.chat.completions.create(model=name, messages=msgs, max_tokens=12, temperature=0, stream=True,
                                           stream_options={"include_usage": True}):
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            roles += [ch.delta.role] if ch.delta.role else []
            pieces.append(ch.delta.content or "")
            finish = ch.finish_reason or finish
    check("".join(pieces) == want and roles == ["assistant"], "chat stream %r roles %s" % ("".join(pieces), roles))
    check(finish in ("stop", "length") and usage.completion_tokens == len(want_ids), "chat stream end %s %s" % (finish, usage))
    # curl, streamed, a system message and content parts.
    body = {"model": name, "stream": True, "max_tokens": 4, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    chunks = sse_events(curl("-N", server.url + "/v1/chat/completions", "-H", "Content-Type: application/json",
                             "-d", json.dumps(body)))
    check(chunks[0]["object"] == "chat.completion.chunk" and chunks[0]["choices"][0]["delta"]["role"] == "assistant", "%s" % chunks[0])
    # The KV cache (--kv-cache-mem) is smaller than the context: a request that can never fit.
    check(server.kv_tokens < server.context, "the chat server's KV cache should be smaller than its context")
    _, err = expect_error(server, "/v1/chat/completions", {"model": name, "messages": msgs, "max_tokens": server.kv_tokens},
                          400, code="kv_cache_too_small", param="max_tokens")
    check(str(server.kv_tokens) in err["message"], "the KV error does not name the sizes: %s" % err["message"])
    # The openai client maps errors to its exception types.
    try:
        c.chat.completions.create(model="nope", messages=msgs)
        fail("unknown model accepted")
    except openai.NotFoundError:
        pass
    try:
        c.chat.completions.create(model=name, messages=msgs, temperature=7)
        fail("temperature 7 accepted")
    except openai.BadRequestError as e:
        check(e.body and e.body.get("param") == "temperature", "temperature error body %s" % e.body)
    print("chat: ok")


def bad_requests(server, name):
    p = "/v1/completions"
    good = {"model": name, "prompt": "Hi", "max_tokens": 2}
    expect_error(server, p, None, 400, code="invalid_json", raw=b'{"prompt": "Hi", ', what="truncated JSON")
    expect_error(server, p, None, 400, raw=b"[1, 2]", what="array body")
    expect_error(server, p, None, 400, raw=b"\xff\xfe", what="binary body")
    for field, value in [("max_tokens", "12"), ("max_tokens", 0), ("max_tokens", -1), ("max_tokens", 1.5),
                         ("temperature", "hot"), ("temperature", 3), ("temperature", -0.1), ("top_p", 0),
                         ("top_p", 1.5), ("top_k", -2), ("repetition_penalty", 0), ("stream", "yes"),
                         ("seed", "x"), ("n", 0), ("stop_token_ids", ["a"]), ("prompt", {"a": 1}), ("prompt", []),
                         ("prompt", [-1]), ("model", 5), ("stop", 3)]:
        expect_error(server, p, dict(good, **{field: value}), 400, param=field, what="%s=%r" % (field, value))
    expect_error(server, p, dict(good, max_token=3), 400, code="unknown_parameter", param="max_token")
    expect_error(server, p, dict(good, model="other"), 404, code="model_not_found", param="model")
    expect_error(server, p, dict(good, n=17), 400, param="n", what="n=17")
    for field, value in [("echo", True), ("best_of", 2),
                         ("logit_bias", {"1": 2}), ("prompt", ["a", "b"])]:
        expect_error(server, p, dict(good, **{field: value}), 400, code="not_supported_yet", param=field,
                     what="%s=%r" % (field, value))
    # Neutral values of those fields are fine, as are the ignored ones.
    st, _, t = request(server, "POST", p, dict(good, n=1, stop=[], presence_penalty=0, user="u", logit_bias={}))
    check(st == 200, "neutral fields refused: %s" % t)
    # The context: a prompt longer than it, and prompt + max_tokens beyond it.
    expect_error(server, p, dict(good, prompt=[5] * (server.context + 8)), 400, code="context_length_exceeded", param="prompt")
    expect_error(server, p, dict(good, prompt="Hi " * (server.context + 8)), 400, code="context_length_exceeded", param="prompt")
    expect_error(server, p, dict(good, max_tokens=server.context), 400, code="context_length_exceeded", param="max_tokens")
    expect_error(server, p, dict(good, prompt=[1, 99999]), 400, what="id outside the vocabulary")
    c = "/v1/chat/completions"
    msgs = [{"role": "user", "content": "Hi"}]
    for body in [{"model": name}, {"messages": []}, {"messages": "Hi"}, {"messages": [{"role": "wizard", "content": "x"}]},
                 {"messages": [{"role": "user"}]}, {"messages": [{"role": "user", "content": 5}]},
                 {"messages": msgs, "logprobs": "yes"}, {"messages": msgs, "top_logprobs": 2}]:
        expect_error(server, c, body, 400, what="chat %s" % body)
    expect_error(server, c, {"messages": msgs, "tools": [{"type": "function"}]}, 400, code="not_supported_yet")
    # This artifact has no chat template: a clear 400, not a crash.
    expect_error(server, c, {"messages": msgs, "max_tokens": 2}, 400, param="messages", what="no template")
    st, _, t = request(server, "GET", "/v1/nothing")
    check(st == 404 and "error" in json.loads(t), "unknown route: %d %s" % (st, t))
    st, _, _ = request(server, "GET", "/health")
    check(st == 200, "not healthy after the bad requests")
    m = metrics(server)
    check(m['ds_serve_requests_total{outcome="invalid"}'] >= 40, "invalid requests not counted: %s" % m)
    print("bad requests: ok")


def disconnect_and_queue(server, name):
    """--max-num-seqs 1 --max-waiting 0: a second request while one runs is 429; a client that
    leaves mid-stream has its request cancelled."""
    body = json.dumps({"model": name, "prompt": "Once", "max_tokens": server.context - 8, "stream": True,
                       "ignore_eos": True, "temperature": 0}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json", "Authorization": "Bearer sesame"})
    resp = conn.getresponse()
    check(resp.status == 200, "long request: %d" % resp.status)
    line = resp.readline()
    while line.startswith(b":") or line == b"\n":  # SSE comments (keep-alive)
        line = resp.readline()
    check(line.startswith(b"data: "), "no first chunk: %r" % line)
    hdrs, _ = expect_error(server, "/v1/completions", {"model": name, "prompt": "x", "max_tokens": 2}, 429,
                           code="queue_full", headers={"Authorization": "Bearer sesame"}, what="full queue")
    check(hdrs.get("Retry-After") == "1", "429 without Retry-After: %s" % hdrs)
    before = metrics(server)['ds_serve_requests_total{outcome="cancelled"}']
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    deadline = time.time() + 20
    while metrics(server)['ds_serve_requests_total{outcome="cancelled"}'] == before:
        check(time.time() < deadline, "the disconnected request was not cancelled")
        time.sleep(0.05)
    m = metrics(server)
    if m['ds_serve_engine_stats_known{stat="abort"}'] == 1:
        # The engine aborts: the slot frees at once and, where reported, so do its blocks.
        deadline = time.time() + 10
        while metrics(server)["ds_serve_num_requests_running"] != 0:
            check(time.time() < deadline, "the cancelled request still runs")
            time.sleep(0.05)
        if m['ds_serve_engine_stats_known{stat="kv_blocks_used"}'] == 1:
            check(metrics(server)["ds_serve_kv_blocks_used"] == 0, "blocks not freed")
    # Whether aborted or run out, the server takes requests again.
    deadline = time.time() + 30
    while True:
        st, _, t = request(server, "POST", "/v1/completions", {"model": name, "prompt": "x", "max_tokens": 2},
                           headers={"Authorization": "Bearer sesame"})
        if st == 200:
            break
        check(st == 429 and time.time() < deadline, "after the cancel: %d %s" % (st, t))
        time.sleep(0.1)
    print("disconnect and queue: ok")


def auth_and_limits(server, name):
    body = {"model": name, "prompt": "Hi", "max_tokens": 2}
    expect_error(server, "/v1/completions", body, 401, code="invalid_api_key", what="no key")
    expect_error(server, "/v1/completions", body, 401, headers={"Authorization": "Bearer wrong"}, what="wrong key")
    st, _, _ = request(server, "GET", "/v1/models")
    check(st == 401, "/v1/models without a key: %d" % st)
    check(request(server, "GET", "/health")[0] == 200, "/health needs no key")
    try:
        server.client("wrong").models.list()
        fail("a wrong key was accepted")
    except openai.AuthenticationError:
        pass
    models = server.client("sesame").models.list()
    check([m.id for m in models.data] == [name, "alias"], "models: %s" % models)
    r = server.client("sesame").completions.create(model="alias", prompt="Hi", max_tokens=2)
    check(r.model == name, "alias answered as %s" % r.model)
    # Oversized body (--max-request-bytes 4K).
    expect_error(server, "/v1/completions", dict(body, prompt="x" * 8000), 413, code="request_too_large",
                 headers={"Authorization": "Bearer sesame"}, what="8000-byte body")
    print("auth and limits: ok")


def sigterm_mid_stream(server, name):
    """SIGTERM while a stream runs: the stream still ends properly, and the server exits 0."""
    body = json.dumps({"model": name, "prompt": "Once", "max_tokens": 200, "stream": True, "ignore_eos": True,
                       "stream_options": {"include_usage": True}}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json", "Authorization": "Bearer sesame"})
    resp = conn.getresponse()
    check(resp.status == 200, "stream before SIGTERM: %d" % resp.status)
    first = resp.readline()
    server.proc.send_signal(signal.SIGTERM)
    rest = first + resp.read()
    chunks = sse_events(rest.decode())
    check(chunks[-2]["choices"][0]["finish_reason"] == "length", "the stream was cut by SIGTERM: %s" % chunks[-2:])
    check(chunks[-1]["usage"]["completion_tokens"] == 200, "usage after SIGTERM: %s" % chunks[-1])
    code = server.proc.wait(30)
    check(code == 0, "exit code %d after SIGTERM" % code)
    print("sigterm: ok")


def load_generator(server):
    """bench/serve/load.py runs against the server and reports every request."""
    load = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "serve", "load.py")
    out = os.path.join(ARGS.tmp, "load.json")
    r = subprocess.run([sys.executable, load, "--url", server.url, "-n", "8", "-c", "4", "--max-tokens", "8",
                        "--ignore-eos", "--json", out], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "load.py failed: %s %s" % (r.stdout, r.stderr))
    report = json.load(open(out))
    check(report["succeeded"] == 8 and report["output_tokens"] == 64, "load.py report: %s" % report)
    check("TTFT ms: p50" in r.stdout and report["ttft_ms_p99"] > 0, "load.py output: %s" % r.stdout)
    print("load generator: ok")


def sampling_extras(server, name):
    """Stop strings (also spanning tokens), logprobs, min_p and the penalties (docs/serving.md)."""
    p = "/v1/completions"
    base = {"model": name, "prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}
    st, _, t = request(server, "POST", p, base)
    check(st == 200, "plain request: %s" % t)
    full = json.loads(t)["choices"][0]["text"]
    check(len(full) > 12, "too little text to cut: %r" % full)
    # A stop string from the middle of the greedy text: the answer ends right before it.
    stop = full[7:11]
    cut = full[:full.index(stop)]
    st, _, t = request(server, "POST", p, dict(base, stop=[stop, "zzzz"]))
    r = json.loads(t)
    check(st == 200 and r["choices"][0]["text"] == cut and r["choices"][0]["finish_reason"] == "stop",
          "stop %r: %r (want %r)" % (stop, r["choices"][0], cut))
    st, _, t = request(server, "POST", p, dict(base, stop=[stop], include_stop_str_in_output=True))
    check(json.loads(t)["choices"][0]["text"] == cut + stop, "include_stop_str_in_output: %s" % t)
    streamed = sse_events(curl(server.url + p, "-N", "-H", "Content-Type: application/json",
                               "-d", json.dumps(dict(base, stop=[stop], stream=True))))
    text = "".join(e["choices"][0]["text"] for e in streamed if e["choices"])
    check(text == cut and streamed[-1]["choices"][0]["finish_reason"] == "stop", "streamed stop: %r" % text)
    # Log probabilities: one entry per generated token; greedy picks the top one.
    st, _, t = request(server, "POST", p, dict(base, logprobs=3))
    r = json.loads(t)
    lp = r["choices"][0]["logprobs"]
    n = r["usage"]["completion_tokens"]
    check(st == 200 and len(lp["tokens"]) == n == len(lp["token_logprobs"]) == len(lp["top_logprobs"]), "logprobs shape: %s" % lp)
    for k in range(n):
        top = lp["top_logprobs"][k]
        check(len(top) <= 3 and lp["token_logprobs"][k] <= 0, "logprob entry %d: %s" % (k, lp))
        check(abs(max(top.values()) - lp["token_logprobs"][k]) < 1e-5, "greedy token is not the top one at %d" % k)
    check("".join(lp["tokens"]) == r["choices"][0]["text"], "logprob tokens %r != text" % lp["tokens"])
    streamed = sse_events(curl(server.url + p, "-N", "-H", "Content-Type: application/json",
                               "-d", json.dumps(dict(base, logprobs=1, stream=True))))
    got = sum(len(e["choices"][0]["logprobs"]["tokens"]) for e in streamed
              if e["choices"] and e["choices"][0]["logprobs"])
    check(got == n, "streamed logprobs cover %d of %d tokens" % (got, n))
    # The openai client: stop, logprobs and the penalties through its own types.
    client = server.client()
    r = client.completions.create(model=name, prompt="Once upon a time", max_tokens=24, temperature=0,
                                  stop=[stop], logprobs=2)
    check(r.choices[0].text == cut and r.choices[0].logprobs is not None, "openai client: %s" % r)
    for extra in ({"min_p": 0.05}, {"presence_penalty": 1.5}, {"frequency_penalty": -1.0}):
        st, _, t = request(server, "POST", p, dict(base, **extra))
        check(st == 200, "%s refused: %s" % (extra, t))
    # The first 24 greedy tokens repeat too little for a penalty to win; 48 show it.
    st, _, t1 = request(server, "POST", p, dict(base, max_tokens=48))
    st, _, t2 = request(server, "POST", p, dict(base, max_tokens=48, frequency_penalty=2.0))
    check(json.loads(t1)["choices"][0]["text"] != json.loads(t2)["choices"][0]["text"],
          "a frequency penalty of 2 changed nothing")
    # n completions: choice i is the single request with seed + i, streamed or not.
    seeded = dict(base, temperature=1.0, seed=7, max_tokens=12)
    st, _, t = request(server, "POST", p, dict(seeded, n=3))
    r = json.loads(t)
    check(st == 200 and [c["index"] for c in r["choices"]] == [0, 1, 2], "n=3: %s" % t)
    singles = []
    for i in range(3):
        _, _, ti = request(server, "POST", p, dict(seeded, seed=7 + i))
        singles.append(json.loads(ti))
    check([c["text"] for c in r["choices"]] == [x["choices"][0]["text"] for x in singles],
          "n=3 choices differ from seeds 7, 8, 9: %s vs %s" % (r["choices"], singles))
    check(r["usage"]["completion_tokens"] == sum(x["usage"]["completion_tokens"] for x in singles), "n=3 usage: %s" % r["usage"])
    streamed = sse_events(curl(server.url + p, "-N", "-H", "Content-Type: application/json",
                               "-d", json.dumps(dict(seeded, n=3, stream=True))))
    texts, finishes = ["", "", ""], [None, None, None]
    for e in streamed:
        for c in e["choices"]:
            texts[c["index"]] += c["text"]
            finishes[c["index"]] = c["finish_reason"] or finishes[c["index"]]
    check(texts == [c["text"] for c in r["choices"]] and all(finishes), "streamed n=3: %s %s" % (texts, finishes))
    # Every request has finished: no KV block is held (the prefix cache may keep free ones).
    m = metrics(server)
    check(m["ds_serve_kv_blocks_used"] == 0, "KV blocks still used after the requests: %s" % m)
    print("sampling extras: ok")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--stories", required=True)
    ap.add_argument("--chat", required=True)
    ap.add_argument("--tmp", required=True)
    ARGS = ap.parse_args()
    signal.alarm(240)  # the whole run is bounded

    s = Server(ARGS.stories)
    completions(s, "stories")
    bad_requests(s, "stories")
    sampling_extras(s, "stories")
    load_generator(s)
    s.stop()
    s = Server(ARGS.chat, "--served-model-name", "tiny-chat", "--kv-cache-mem", "512K")
    chat(s, "tiny-chat")
    s.stop()
    s = Server(ARGS.stories, "--api-key", "sesame", "--served-model-name", "stories", "--served-model-name", "alias",
               "--max-num-seqs", "1", "--max-waiting", "0", "--max-request-bytes", "4K")
    auth_and_limits(s, "stories")
    disconnect_and_queue(s, "stories")
    sigterm_mid_stream(s, "stories")
    print("all ok")


if __name__ == "__main__":
    main()

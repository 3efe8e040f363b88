#!/usr/bin/env python3
"""Acceptance load check for an OpenAI-compatible server (ds-serve, llama-server); the plain
load generator is load.py.

Concurrent streaming clients send a synthetic chat or completion workload (prompt and output
lengths drawn from ranges, an optional shared system prompt), then report throughput and
time-to-first-token / inter-token-latency percentiles. With --check-alone, every request is
run again alone (one at a time, after the load) and its greedy text must be identical to the
one it got under load (the scheduler's contract: batching and preemption never change a
greedy output). Standard library only (http.client, threads), so it runs anywhere.

usage: load_check.py --url http://127.0.0.1:8000 --model NAME [--requests 500] [--concurrency 64]
               [--prompt-words 8:64] [--max-tokens 4:48] [--system-prompt TEXT] [--chat]
               [--seed 0] [--check-alone] [--json] [--timeout 600]
Exit status: 0 when every request succeeded (and, with --check-alone, matched), else 1.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

from load import percentile  # bench/serve/load.py, beside this file

WORDS = ("the of and a to in is you that it he was for on are as with his they at be this have "
         "from or one had by word but not what all were we when your can said there use an each "
         "which she do how their if will up other about out many then them these so some her "
         "would make like him into time has look two more write go see number no way could people "
         "my than first water been call who oil its now find long down day did get come made may "
         "part once upon a little girl named lily went to the park with her mom and saw a big "
         "red ball").split()


def parse_range(text):
    lo, _, hi = text.partition(":")
    lo, hi = int(lo), int(hi or lo)
    if lo < 1 or hi < lo:
        raise argparse.ArgumentTypeError(f"bad range '{text}' (LO:HI, 1 <= LO <= HI)")
    return lo, hi


class Client:
    def __init__(self, url, timeout, api_key=None):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port or 80
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = "Bearer " + api_key

    def stream(self, path, body):
        """POSTs a streaming request; returns (text, finish_reason, ttft, itls, error)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, json.dumps(body), self.headers)
            r = conn.getresponse()
            if r.status != 200:
                return None, None, None, [], f"HTTP {r.status}: {r.read()[:300]!r}"
            text, finish, ttft, last, itls = [], None, None, None, []
            for raw in r:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                choice = chunk["choices"][0]
                piece = choice.get("text")
                if piece is None:
                    piece = (choice.get("delta") or {}).get("content") or ""
                now = time.perf_counter()
                if piece:
                    if ttft is None:
                        ttft = now - t0
                    elif last is not None:
                        itls.append(now - last)
                    last = now
                    text.append(piece)
                finish = choice.get("finish_reason") or finish
            return "".join(text), finish, ttft, itls, None
        except Exception as e:  # a dropped connection is an error of the run, not a crash
            return None, None, None, [], f"{type(e).__name__}: {e}"
        finally:
            conn.close()

    def get(self, path):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", path, headers=self.headers)
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            conn.close()


def make_requests(args):
    rng = random.Random(args.seed)
    out = []
    for i in range(args.requests):
        words = rng.randint(*args.prompt_words)
        prompt = " ".join(rng.choice(WORDS) for _ in range(words))
        max_tokens = rng.randint(*args.max_tokens)
        if args.chat:
            messages = ([{"role": "system", "content": args.system_prompt}] if args.system_prompt else [])
            messages.append({"role": "user", "content": prompt})
            body = {"model": args.model, "messages": messages, "max_tokens": max_tokens,
                    "temperature": 0, "stream": True}
            out.append(("/v1/chat/completions", body))
        else:
            text = (args.system_prompt + "\n" if args.system_prompt else "") + prompt
            body = {"model": args.model, "prompt": text, "max_tokens": max_tokens,
                    "temperature": 0, "stream": True}
            out.append(("/v1/completions", body))
    return out


def run_load(client, requests, concurrency):
    results = [None] * len(requests)
    next_index = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(requests):
                return
            path, body = requests[i]
            results[i] = client.stream(path, body)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--api-key")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--prompt-words", type=parse_range, default=(8, 64))
    ap.add_argument("--max-tokens", type=parse_range, default=(4, 48))
    ap.add_argument("--system-prompt", default="")
    ap.add_argument("--chat", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-alone", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--check-metrics", action="store_true",
                    help="after the run, /metrics must show no KV block in use (ds-serve's names)")
    ap.add_argument("--expect-preemptions", action="store_true")
    ap.add_argument("--expect-prefix-hits", action="store_true")
    args = ap.parse_args()
    if args.requests < 1 or args.concurrency < 1:
        ap.error("--requests and --concurrency must be >= 1")

    client = Client(args.url, args.timeout, args.api_key)
    requests = make_requests(args)
    results, wall = run_load(client, requests, args.concurrency)
    errors = [(i, r[4]) for i, r in enumerate(results) if r[4]]
    ok = [r for r in results if not r[4]]
    ttfts = [r[2] for r in ok if r[2] is not None]
    itls = [x for r in ok for x in r[3]]
    chars = sum(len(r[0]) for r in ok)
    pieces = sum(len(r[3]) + (1 if r[2] is not None else 0) for r in ok)
    report = {
        "requests": len(requests), "concurrency": args.concurrency, "errors": len(errors),
        "wall_s": round(wall, 3), "requests_per_s": round(len(ok) / wall, 3),
        "output_chunks_per_s": round(pieces / wall, 2), "output_chars": chars,
        "ttft_ms": {q: round(1e3 * percentile(ttfts, q), 2) for q in (50, 90, 99)},
        "itl_ms": {q: round(1e3 * percentile(itls, q), 2) for q in (50, 90, 99)},
    }
    mismatches = []
    if args.check_alone:
        for i, (path, body) in enumerate(requests):
            if results[i][4]:
                continue
            alone = client.stream(path, body)
            if alone[4] or alone[0] != results[i][0]:
                mismatches.append(i)
        report["alone_mismatches"] = len(mismatches)
    metric_failures = []
    if args.check_metrics:
        status, text = client.get("/metrics")
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        used = values.get("ds_serve_kv_blocks_used", float("nan"))
        report["kv_blocks_used_after"] = used
        report["preemptions"] = values.get("ds_serve_num_preemptions_total", float("nan"))
        report["prefix_cache_hit_rate"] = values.get("ds_serve_prefix_cache_hit_rate", float("nan"))
        if status != 200 or used != 0:
            metric_failures.append(f"/metrics: {used} KV blocks still used after the run")
        if args.expect_preemptions and not report["preemptions"] > 0:
            metric_failures.append("no preemption happened (raise the load or lower --kv-cache-mem)")
        if args.expect_prefix_hits and not report["prefix_cache_hit_rate"] > 0:
            metric_failures.append("the prefix cache never hit")
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['requests']} requests, concurrency {args.concurrency}: {len(errors)} errors, "
              f"{report['requests_per_s']} req/s, {report['output_chunks_per_s']} output chunks/s, "
              f"TTFT ms p50/p90/p99 {report['ttft_ms'][50]}/{report['ttft_ms'][90]}/{report['ttft_ms'][99]}, "
              f"ITL ms p50/p90/p99 {report['itl_ms'][50]}/{report['itl_ms'][90]}/{report['itl_ms'][99]}"
              + (f", {len(mismatches)} differ from the request run alone" if args.check_alone else "")
              + (f"; after: {report['kv_blocks_used_after']:.0f} KV blocks used, "
                 f"{report['preemptions']:.0f} preemptions, prefix hit rate "
                 f"{report['prefix_cache_hit_rate']:.3f}" if args.check_metrics else ""))
    for f in metric_failures:
        print(f, file=sys.stderr)
    for i, e in errors[:5]:
        print(f"request {i}: {e}", file=sys.stderr)
    for i in mismatches[:5]:
        print(f"request {i}: under load {results[i][0]!r} != alone", file=sys.stderr)
    sys.exit(1 if errors or mismatches or metric_failures else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load generator for ds-serve (or any OpenAI-compatible server): streams N requests at a
given concurrency and/or Poisson arrival rate and reports requests/s, output tokens/s, time to
first token (TTFT), inter-token latency (ITL: gaps between streamed chunks) and time per output
token (TPOT: a request's decode time over its tokens after the first), p50/p90/p99.

Standard library only (threads + http.client, SSE parsed here), so the timings are taken where
the bytes arrive. Usage:
  build/bin/ds-serve model.dsa --port 8000 &
  python3 bench/serve/load.py --url http://127.0.0.1:8000 -n 64 -c 8 --max-tokens 64
  python3 bench/serve/load.py ... --rate 4 --chat --json results.json
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

PROMPTS = ["Once upon a time", "The little dog", "One day, a girl named Lily", "Tom and his friend",
           "In a small town there was", "The sun was shining and"]


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Result:
    def __init__(self):
        self.ok = False
        self.error = ""
        self.ttft = None
        self.itl = []
        self.tokens = 0
        self.prompt_tokens = 0
        self.latency = 0.0


def one_request(args, url, index):
    r = Result()
    prompt = args.prompt or PROMPTS[index % len(PROMPTS)]
    body = {"model": args.model, "max_tokens": args.max_tokens, "stream": True,
            "stream_options": {"include_usage": True}, "temperature": args.temperature,
            "seed": args.seed + index}
    if args.ignore_eos:
        body["ignore_eos"] = True
    if args.chat:
        path, body["messages"] = "/v1/chat/completions", [{"role": "user", "content": prompt}]
    else:
        path, body["prompt"] = "/v1/completions", prompt
    if not args.model:
        del body["model"]
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = "Bearer " + args.api_key
    start = time.perf_counter()
    last = None
    try:
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)
        conn.request("POST", path, json.dumps(body), headers)
        resp = conn.getresponse()
        if resp.status != 200:
            r.error = "HTTP %d: %s" % (resp.status, resp.read()[:200].decode(errors="replace"))
            return r
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                r.ok = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                r.error = chunk["error"].get("message", "stream error")
                break
            if chunk.get("usage"):
                r.tokens = chunk["usage"]["completion_tokens"]
                r.prompt_tokens = chunk["usage"]["prompt_tokens"]
            choices = chunk.get("choices") or []
            text = ""
            for c in choices:
                text += (c.get("delta") or {}).get("content") or c.get("text") or ""
            if text:
                now = time.perf_counter()
                if r.ttft is None:
                    r.ttft = now - start
                else:
                    r.itl.append(now - last)
                last = now
        conn.close()
    except (OSError, http.client.HTTPException, ValueError) as e:
        r.error = "%s: %s" % (type(e).__name__, e)
    r.latency = time.perf_counter() - start
    return r


def run(args):
    url = urllib.parse.urlparse(args.url)
    results = [None] * args.num_requests
    rng = random.Random(args.seed)
    arrivals, t = [], 0.0
    for _ in range(args.num_requests):
        arrivals.append(t)
        if args.rate > 0:
            t += rng.expovariate(args.rate)
    next_index = [0]
    lock = threading.Lock()
    start = time.perf_counter()

    def worker():
        while True:
            with lock:
                i = next_index[0]
                if i >= args.num_requests:
                    return
                next_index[0] += 1
            delay = start + arrivals[i] - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            results[i] = one_request(args, url, i)

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    duration = time.perf_counter() - start
    ok = [r for r in results if r.ok]
    ttft = [r.ttft for r in ok if r.ttft is not None]
    itl = [x for r in ok for x in r.itl]
    tpot = [(r.latency - r.ttft) / (r.tokens - 1) for r in ok if r.ttft is not None and r.tokens > 1]
    out_tokens = sum(r.tokens for r in ok)
    report = {
        "requests": args.num_requests, "succeeded": len(ok), "failed": args.num_requests - len(ok),
        "duration_s": duration, "requests_per_s": len(ok) / duration,
        "output_tokens": out_tokens, "output_tokens_per_s": out_tokens / duration,
        "prompt_tokens": sum(r.prompt_tokens for r in ok),
        "concurrency": args.concurrency, "rate": args.rate or "inf",
    }
    for name, values in (("ttft_ms", ttft), ("itl_ms", itl), ("tpot_ms", tpot)):
        for p in (50, 90, 99):
            report["%s_p%d" % (name, p)] = percentile(values, p) * 1000
    errors = sorted({r.error for r in results if not r.ok})
    return report, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--model", default="", help="model name (default: the server's)")
    ap.add_argument("-n", "--num-requests", type=int, default=32)
    ap.add_argument("-c", "--concurrency", type=int, default=8, help="requests in flight at most")
    ap.add_argument("--rate", type=float, default=0, help="Poisson arrivals per second (0: all at once)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ignore-eos", action="store_true", help="always generate max-tokens (vLLM's ignore_eos)")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt", default="", help="one prompt for every request (default: a small set)")
    ap.add_argument("--chat", action="store_true", help="/v1/chat/completions instead of /v1/completions")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", default="", help="also write the report to this file")
    args = ap.parse_args()
    if args.num_requests < 1 or args.concurrency < 1 or args.max_tokens < 1:
        ap.error("--num-requests, --concurrency and --max-tokens must be positive")
    report, errors = run(args)
    print("requests: %d ok, %d failed in %.2f s" % (report["succeeded"], report["failed"], report["duration_s"]))
    print("throughput: %.2f req/s, %.1f output tok/s (%d output tokens)" %
          (report["requests_per_s"], report["output_tokens_per_s"], report["output_tokens"]))
    for name, label in (("ttft_ms", "TTFT"), ("itl_ms", "ITL"), ("tpot_ms", "TPOT")):
        print("%-4s ms: p50 %.2f  p90 %.2f  p99 %.2f" % (label, report[name + "_p50"], report[name + "_p90"],
                                                       report[name + "_p99"]))
    for e in errors[:5]:
        print("error: " + e, file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if report["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

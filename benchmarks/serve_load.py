"""Load benchmark for `rag serve`: N concurrent streaming clients on loopback, bounded in count and time.

Starts the server in-process on 127.0.0.1 over an existing collection (default: the demo's), sends
`--requests` streaming chat completions from `--clients` threads with the official openai client
(a 429 is retried after 0.25 s, a bounded number of times), and reports throughput, latency p50/p95, time to first token, clean 429s and errors. A baseline
is measured in the same run: the same questions answered one at a time through the server.

    python benchmarks/serve_load.py [--collection demo] [--clients 8] [--requests 40] [--max-seconds 300]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
import uvicorn  # noqa: E402

from rag.datasets import find_local  # noqa: E402
from rag.server import create_app  # noqa: E402
from rag.settings import Settings  # noqa: E402


def start(settings: Settings) -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v1", server, thread


def one(client: openai.OpenAI, model: str, question: str) -> dict:
    t0 = time.perf_counter()
    first = None
    try:
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], stream=True
        )
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - t0
        return {"ok": True, "seconds": time.perf_counter() - t0, "ttft": first}
    except openai.RateLimitError:
        return {"ok": False, "status": 429, "seconds": time.perf_counter() - t0}
    except Exception as exc:  # counted, reported, never crashes the benchmark
        return {"ok": False, "status": type(exc).__name__, "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default="demo")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--server-concurrency", type=int, default=4)
    parser.add_argument("--retries", type=int, default=40, help="Retries of a 429 (0.25 s apart) before giving up.")
    args = parser.parse_args()

    path = find_local("scholarqa_bio", "questions.jsonl", data_dir=Settings().data_dir)
    if path is None:
        sys.exit("scholarqa_bio/questions.jsonl not found (set RAG_DATA_DIR)")
    rows = [json.loads(line)["question"] for line in path.read_text().split("\n") if line.strip()]
    questions = random.Random(0).sample(rows, args.requests)

    settings = Settings()
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"max_concurrent": args.server_concurrency})}
    )
    url, server, thread = start(settings)
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
    one(client, args.collection, "warm-up: vitamin D and bone density")

    base = [one(client, args.collection, q) for q in questions[: min(8, len(questions))]]
    base_lat = [r["seconds"] for r in base if r["ok"]]

    results: list[dict] = []
    lock = threading.Lock()
    queue = list(questions)
    deadline = time.monotonic() + args.max_seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    return
                q = queue.pop()
            rejected = 0
            r = one(client, args.collection, q)
            while not r["ok"] and r.get("status") == 429 and rejected < args.retries and time.monotonic() < deadline:
                rejected += 1  # a polite client: back off and retry, as OpenAI SDK users do
                time.sleep(0.25)
                r = one(client, args.collection, q)
            r["rejected"] = rejected
            with lock:
                results.append(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    server.should_exit = True
    thread.join(timeout=10)

    ok = [r for r in results if r["ok"]]
    lat = [r["seconds"] for r in ok]
    ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
    statuses: dict[str, int] = {}
    for r in results:
        if not r["ok"]:
            statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    print(
        f"collection {args.collection}; {args.clients} streaming clients, {len(results)} requests in {wall:.1f} s "
        f"(server concurrency {args.server_concurrency})"
    )
    print(f"answered     {len(ok)}  -> {len(ok) / wall:.2f} answers/s")
    if lat:
        print(f"latency      p50 {np.percentile(lat, 50):.2f} s   p95 {np.percentile(lat, 95):.2f} s")
        print(f"first token  p50 {np.percentile(ttft, 50):.2f} s   p95 {np.percentile(ttft, 95):.2f} s")
    retried = sum(r.get("rejected", 0) for r in results)
    others = {k: v for k, v in statuses.items() if k != "429"} or "none"
    print(
        f"rejected     {retried} clean 429s (retried); {statuses.get('429', 0)} requests gave up after retries; errors: {others}"
    )
    if base_lat:
        print(
            f"baseline     one at a time: p50 {np.percentile(base_lat, 50):.2f} s -> {1 / np.mean(base_lat):.2f} answers/s"
        )
        print(f"ratio        throughput under load / sequential = {(len(ok) / wall) * np.mean(base_lat):.2f}")


if __name__ == "__main__":
    main()

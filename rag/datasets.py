"""The public data sets the demo and the evals use: found locally, or fetched and verified.

Lookup order for a data set's ``corpus.jsonl``: ``<data_dir>/<name>/`` (``RAG_DATA_DIR``), a ``shared/data/<name>/``
folder beside or above the working directory or this checkout, then a cached download. A download
comes from the data set's published source, is checked against the git blob hash (and size) that
pins it, and is converted to our corpus format (``{"doc_id","title","abstract","year","meta"}``).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import tokenize
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import DatasetError

Converter = Callable[[bytes], Iterator[dict[str, Any]]]


@dataclass(frozen=True)
class Source:
    """Where a data set's corpus is published, and how to check and convert it."""

    url: str
    git_blob_sha1: str  # git's hash of the file: sha1(b"blob <size>\0" + content)
    size: int | None
    convert: Converter


def git_blob_sha1(data: bytes) -> str:
    """The hash git gives a file's content (what GitHub shows as the blob id)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def _pubmedqa(data: bytes) -> Iterator[dict[str, Any]]:
    records = json.loads(data)
    for pmid, rec in records.items():
        sections = [{"label": label, "text": text} for label, text in zip(rec["LABELS"], rec["CONTEXTS"], strict=True)]
        abstract = "\n\n".join(
            s["text"] if s["label"] == "UNLABELLED" else f"{s['label']}: {s['text']}" for s in sections
        )
        year = rec.get("YEAR")
        yield {
            "doc_id": f"pubmed:{pmid}",
            "title": "",  # PubMedQA ships no titles (the question usually is the title)
            "abstract": abstract,
            "year": int(year) if year and str(year).isdigit() else None,
            "meta": {"pmid": pmid, "sections": sections, "meshes": rec.get("MESHES", []), "conclusion_removed": True},
        }


def _numpy_string_list(text: str) -> list[str]:
    # The CSV holds numpy's repr of an array of strings: "['a' 'b']" (no commas), so read it
    # with Python's tokenizer, one string literal per sentence.
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [ast.literal_eval(t.string) for t in tokens if t.type == tokenize.STRING]


def _scifact(data: bytes) -> Iterator[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        name = next((n for n in archive.namelist() if n.endswith("corpus_train.csv")), None)
        if name is None:
            raise DatasetError("scifact archive has no corpus_train.csv")
        text = archive.read(name).decode("utf-8")
    for row in csv.DictReader(io.StringIO(text)):
        sentences = [s.strip() for s in _numpy_string_list(row["abstract"])]
        yield {
            "doc_id": f"s2orc:{row['doc_id']}",
            "title": row["title"].strip(),
            "abstract": " ".join(sentences),
            "meta": {
                "s2orc_id": int(row["doc_id"]),
                "structured": row.get("structured", "").strip().lower() == "true",
                "sentences": sentences,
            },
        }


SOURCES: dict[str, Source] = {
    "pubmedqa": Source(
        url="https://raw.githubusercontent.com/pubmedqa/pubmedqa/1cbae8e92f72f20c8d3747cbb3bf5bc53554d997/data/ori_pqal.json",
        git_blob_sha1="38db7750761c78950ed32303e7545bdaa513390c",
        size=2_584_787,
        convert=_pubmedqa,
    ),
    "scifact": Source(
        url="https://raw.githubusercontent.com/sumithra-p-v/claimverifier/b42f1c3444b28884ddcfadffafbfe223646c6c37/data/scifact.zip",
        git_blob_sha1="f7dc63ef6833a230ad499aa7ec404affa85e4121",
        size=None,
        convert=_scifact,
    ),
}


def local_data_dirs(data_dir: Path | None = None) -> list[Path]:
    """Folders that may hold ``<name>/corpus.jsonl``, most specific first: ``data_dir`` (the
    ``data_dir`` setting, ``RAG_DATA_DIR``), then ``shared/data`` beside or above the working
    directory or this checkout."""
    dirs = [data_dir] if data_dir else []
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for parent in [start, *start.parents]:
            dirs.append(parent / "shared" / "data")
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def find_local(name: str, filename: str = "corpus.jsonl", data_dir: Path | None = None) -> Path | None:
    """The local copy of a data set's file, if there is one."""
    for folder in local_data_dirs(data_dir):
        path = folder / name / filename
        if path.is_file():
            return path
    return None


def fetch(
    name: str,
    cache_dir: Path,
    sources: dict[str, Source] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download (once), verify and convert a data set's corpus; returns the cached ``corpus.jsonl``.

    >>> fetch("scifact", Path("~/.cache/rag/datasets").expanduser())  # doctest: +SKIP
    PosixPath('.../scifact/corpus.jsonl')
    """
    sources = SOURCES if sources is None else sources
    if name not in sources:
        raise DatasetError(f"Unknown data set {name!r}; known: {', '.join(sorted(sources))}.")
    source = sources[name]
    target = cache_dir / name / "corpus.jsonl"
    if target.is_file():
        return target
    try:
        with urllib.request.urlopen(source.url, timeout=timeout) as response:
            data = response.read()
    except OSError as exc:
        raise DatasetError(
            f"Cannot download {name} from {source.url}: {exc}. "
            "Point RAG_DATA_DIR at a folder holding <name>/corpus.jsonl to work offline."
        ) from exc
    if source.size is not None and len(data) != source.size:
        raise DatasetError(f"{name}: downloaded {len(data):,} bytes, expected {source.size:,} ({source.url}).")
    digest = git_blob_sha1(data)
    if digest != source.git_blob_sha1:
        raise DatasetError(f"{name}: checksum mismatch (got {digest}, expected {source.git_blob_sha1}); not used.")
    try:
        records = list(source.convert(data))
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{name}: cannot convert {source.url}: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(target)
    return target


def corpus_path(
    name: str, cache_dir: Path, sources: dict[str, Source] | None = None, data_dir: Path | None = None
) -> Path:
    """A data set's corpus: the local copy when present, else a verified download."""
    return find_local(name, data_dir=data_dir) or fetch(name, cache_dir, sources)

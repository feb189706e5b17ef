"""The bundled embedder and tiktoken work with no network and no prior cache."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from rag.embed import LocalEmbedder
from rag.settings import EmbedSettings
from rag.store import ChromaEmbedding


def test_tiktoken_loads_from_the_wheel_into_an_empty_cache(tmp_path):
    cache = tmp_path / "tk"
    code = (
        "from rag.tokens import ensure_offline_tiktoken, encoding;"
        f"ensure_offline_tiktoken(__import__('pathlib').Path({str(cache)!r}));"
        "import tiktoken;"
        "print(len(tiktoken.get_encoding('cl100k_base').encode('vitamin D')),"
        " len(tiktoken.get_encoding('o200k_base').encode('vitamin D')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}
    # An unroutable proxy: any download attempt would fail loudly instead of silently succeeding.
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3"]
    names = {p.name for p in cache.iterdir()}
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    assert hashlib.sha1(url.encode()).hexdigest() in names


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbedder()


def test_default_vectors_do_not_depend_on_batch_mates(embedder):
    texts = ["short", "a much longer sentence about osteoporosis and fractures in older women " * 3]
    assert np.array_equal(embedder.embed(texts), np.vstack([embedder.embed([t]) for t in texts]))


def test_embeddings_are_normalised_and_semantic(embedder):
    texts = [
        "Vitamin D supplementation increases bone mineral density.",
        "Bone density rose in patients given cholecalciferol.",
        "The stock market fell sharply on Tuesday.",
    ]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.4 and sims[0, 1] > sims[0, 2] + 0.3


def test_length_sorted_batching_keeps_input_order():
    embedder = LocalEmbedder(EmbedSettings(batch_size=4, quantize=False))
    texts = [
        "short",
        "a much longer sentence about osteoporosis and fractures in older women " * 3,
        "mid length text here",
    ]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)
    assert embedder.embed([]).shape == (0, 384)


def test_quantised_variant_stays_close(tmp_path):
    fast = LocalEmbedder(EmbedSettings(quantize=True), cache_dir=tmp_path)
    embedder = LocalEmbedder(EmbedSettings(quantize=False))
    assert fast.name.endswith("-dynq") and fast.name != embedder.name
    texts = ["Calcium and vitamin D reduce hip fractures.", "Insulin resistance in type 2 diabetes."]
    cos = (fast.embed(texts) * embedder.embed(texts)).sum(axis=1)
    assert (cos > 0.98).all()
    assert list((tmp_path / "models").glob("*.onnx"))  # prepared once, cached


def test_chroma_adapter_round_trips_its_config():
    ef = ChromaEmbedding("local:minilm-l6-int8")
    rebuilt = ChromaEmbedding.build_from_config(ef.get_config())
    assert rebuilt.get_config() == {"embedder": "local:minilm-l6-int8"}
    assert ChromaEmbedding.name() == "rag"
    assert len(rebuilt(["bone"])[0]) == 384


def test_token_vectors_name_their_word_pieces(embedder):
    (pieces, vectors), (more, _) = embedder.embed_tokens(["bone density", "CD44v6 marks stem cells"])
    assert pieces == ["bone", "density"] and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert more[:2] == ["cd", "##44"]  # word pieces, without [CLS] and [SEP]


def test_cache_survives_its_own_eviction(embedder):
    from rag.embed import CachedEmbedder

    cached = CachedEmbedder(embedder, max_items=3, max_token_rows=2)
    cached.embed(["alpha", "beta", "gamma"])
    # two known rows and two new ones: the bound is crossed and the cache cleared mid-call
    rows = cached.embed(["alpha", "delta", "beta", "epsilon"])
    assert np.allclose(rows, embedder.embed(["alpha", "delta", "beta", "epsilon"]), atol=1e-5)
    cached.embed_tokens(["alpha", "beta"])
    pieces = [p for p, _ in cached.embed_tokens(["alpha", "gamma", "beta"])]
    assert pieces == [["alpha"], ["gamma"], ["beta"]]
    assert sum(len(m) for _, m in cached._tokens.values()) <= 2  # bounded in rows, not texts
    many = cached.embed_tokens(["a much longer text than the whole budget"])
    assert len(many[0][1]) > 2 and "a much longer text than the whole budget" not in cached._tokens


def test_token_pass_also_fills_the_vector_cache(embedder):
    from rag.embed import CachedEmbedder

    cached = CachedEmbedder(embedder)
    cached.embed(["known sentence"])
    tokens = cached.embed_tokens(["known sentence", "a new sentence about bone"])
    assert [p for p, _ in tokens] == [["known", "sentence"], ["a", "new", "sentence", "about", "bone"]]
    assert "a new sentence about bone" in cached._cache  # the vector came with the token pass
    assert np.allclose(
        cached.embed(["a new sentence about bone"]), embedder.embed(["a new sentence about bone"]), atol=1e-4
    )


def test_cache_of_nothing_has_the_inner_embedders_width(embedder):
    from rag.embed import CachedEmbedder

    class Wide:
        name = "test:wide"

        def embed(self, texts, progress=None):
            return np.zeros((len(texts), 1536), dtype=np.float32)

    assert CachedEmbedder(embedder).embed([]).shape == (0, 384)
    assert CachedEmbedder(Wide()).embed([]).shape == (0, 1536)

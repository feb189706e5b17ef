from pathlib import Path

import pytest

from rag import ConfigError, Settings


def test_env_prefix_and_nesting(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_HOME", str(tmp_path))
    monkeypatch.setenv("RAG_CHROMA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RAG_CHUNK__MAX_TOKENS", "123")
    s = Settings()
    assert s.home == Path(tmp_path)
    assert s.chroma_url == "http://127.0.0.1:9"
    assert s.chunk.max_tokens == 123
    assert s.chroma_path == Path(tmp_path) / "chroma"


def test_presets_merge_overrides(tmp_path):
    s = Settings.preset("exact", home=tmp_path, embed={"batch_size": 2})
    assert s.embed.quantize is False and s.embed.batch_size == 2
    assert Settings.preset("default", home=tmp_path).embed.quantize is True
    assert Settings.preset("fast", home=tmp_path).chunk.max_tokens == 400


def test_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="Unknown preset 'turbo'"):
        Settings.preset("turbo")


def test_invalid_value_is_rejected():
    with pytest.raises(ValueError):
        Settings(chunk={"max_tokens": 1})


def test_with_retrieve_changes_only_the_retrieval_settings_it_names():
    base = Settings(home=Path("/tmp/rag-home-x"), retrieve={"query_adapter": True, "per_paper": 2})
    changed = base.with_retrieve(query_adapter=False, per_paper=5)
    assert (changed.retrieve.query_adapter, changed.retrieve.per_paper) == (False, 5)
    assert changed.retrieve.dense_weight == base.retrieve.dense_weight and changed.home == base.home
    assert (base.retrieve.query_adapter, base.retrieve.per_paper) == (True, 2)  # the original is untouched

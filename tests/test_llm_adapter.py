"""The OpenAI-compatible adapter against a real local HTTP server (no mocks of the SDK)."""

import numpy as np
import pytest

from rag.draft.structured import answer_schema
from rag.errors import ConfigError, LLMResponseError, LLMUnavailableError
from rag.llm import Budget, Message, OpenAIChat, OpenAIEmbedder
from rag.settings import LLMSettings, Settings
from tests.fake_openai import FakeOpenAI

MESSAGES = [Message("system", "Be brief."), Message("user", "Say hello.")]


def chat_for(url: str, **kw) -> OpenAIChat:
    return OpenAIChat(
        LLMSettings(
            base_url=url, model="fake-model", timeout=kw.pop("timeout", 5), max_retries=kw.pop("max_retries", 2), **kw
        )
    )


async def test_completion_and_usage():
    with FakeOpenAI([("text", "Hello there [S1].")]) as fake:
        done = await chat_for(fake.url).complete(MESSAGES)
    # always streamed (a slow model's reply is not cut off by the timeout); the usage is what the stream reported
    assert done.text == "Hello there [S1]." and done.prompt_tokens == 11 and done.completion_tokens == 4
    sent = fake.requests[0]
    assert sent["stream"] is True and not done.truncated
    assert sent["model"] == "fake-model" and [m["role"] for m in sent["messages"]] == ["system", "user"]


async def test_streaming_delivers_tokens_in_order():
    pieces = []
    with FakeOpenAI([("text", "Vitamin D helps bones a little.")]) as fake:
        done = await chat_for(fake.url).complete(MESSAGES, on_token=pieces.append)
    assert "".join(pieces) == done.text == "Vitamin D helps bones a little."
    assert len(pieces) > 3 and fake.requests[0]["stream"] is True


async def test_429_and_500_are_retried_then_succeed():
    with FakeOpenAI([("status", 429), ("status", 500), ("text", "ok")]) as fake:
        done = await chat_for(fake.url, max_retries=3).complete(MESSAGES)
    assert done.text == "ok" and len(fake.requests) == 3


async def test_persistent_5xx_becomes_unavailable_after_retries():
    with FakeOpenAI([("status", 503)]) as fake, pytest.raises(LLMUnavailableError, match="after 3 attempts"):
        await chat_for(fake.url, max_retries=2).complete(MESSAGES)
    assert len(fake.requests) == 3


async def test_a_timeout_is_retried_once_whatever_max_retries_says():
    with FakeOpenAI([("sleep", 2.0)]) as fake, pytest.raises(LLMUnavailableError, match="after 2 attempts"):
        await chat_for(fake.url, timeout=0.5, max_retries=3).complete(MESSAGES)
    assert len(fake.requests) == 2
    with FakeOpenAI([("sleep", 2.0), ("text", "ok")]) as fake:  # and the retry can succeed
        assert (await chat_for(fake.url, timeout=0.5, max_retries=3).complete(MESSAGES)).text == "ok"


async def test_a_refused_connection_is_not_retried():
    """Nothing listens on port 9 (discard is not served here): one attempt, and a message that says what to do."""
    with pytest.raises(LLMUnavailableError, match=r"Nothing answers at http://127\.0\.0\.1:9/v1 .*start the model"):
        await chat_for("http://127.0.0.1:9/v1", max_retries=3).complete(MESSAGES)
    with pytest.raises(LLMUnavailableError, match=r"Nothing answers at http://no-such-host\.invalid"):
        await chat_for("http://no-such-host.invalid/v1", max_retries=3).complete(MESSAGES)


async def test_one_deadline_for_all_of_an_answers_calls():
    """Calls wrapped in one Budget share its seconds: a slow second call fails when the first used most."""
    with FakeOpenAI([("sleep", 0.6), ("sleep", 0.6)]) as fake:
        chat = Budget(chat_for(fake.url, timeout=5, max_retries=0), 1.0)
        assert (await chat.complete(MESSAGES)).text == "Late reply."
        with pytest.raises(LLMUnavailableError, match=r"deadline of 1 s \(RAG_LLM__DEADLINE_S\)"):
            await chat.complete(MESSAGES)
        with pytest.raises(LLMUnavailableError, match="deadline"):  # spent: no request is sent at all
            await chat.complete(MESSAGES)
    assert len(fake.requests) == 2


async def test_malformed_json_and_auth_and_404_are_typed():
    with FakeOpenAI([("garbage", "this is not json")]) as fake, pytest.raises(LLMResponseError):
        await chat_for(fake.url, max_retries=0).complete(MESSAGES)
    with FakeOpenAI([("status", 401)]) as fake, pytest.raises(ConfigError, match="rejected the API key"):
        await chat_for(fake.url).complete(MESSAGES)
    with FakeOpenAI([("status", 404)]) as fake, pytest.raises(LLMResponseError, match="404"):
        await chat_for(fake.url).complete(MESSAGES)


async def test_empty_answer_is_an_error():
    with FakeOpenAI([("text", "")]) as fake, pytest.raises(LLMResponseError, match="empty"):
        await chat_for(fake.url).complete(MESSAGES)


def test_missing_key_for_openai_proper_is_actionable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIChat(LLMSettings(model="gpt-4o-mini"))


def test_openai_embeddings_option_uses_the_endpoint():
    with FakeOpenAI() as fake:
        settings = Settings(llm={"base_url": fake.url, "model": "fake-model"}, embed={"provider": "openai"})
        vectors = OpenAIEmbedder(settings).embed(["a", "bbb"])
    assert vectors.shape == (2, 3)
    assert fake.requests[0]["model"] == "text-embedding-3-small"


def test_remote_embeddings_go_in_bounded_concurrent_batches_in_order_and_are_retried():
    texts = [f"text number {'x' * i}" for i in range(10)]
    with FakeOpenAI(script=[("status", 503), ("text", "")]) as fake:  # the first request fails once, then all pass
        settings = Settings(
            llm={"base_url": fake.url, "model": "fake-model", "max_retries": 2},
            embed={"provider": "openai", "remote_batch": 3, "remote_concurrency": 2},
        )
        done: list[int] = []
        vectors = OpenAIEmbedder(settings).embed(texts, progress=done.append)
    batches = [r["input"] for r in fake.requests if "input" in r]
    assert sorted(len(b) for b in batches) == [1, 3, 3, 3, 3]  # 4 batches of ≤ 3, one sent twice (the 503)
    assert sorted(done) == [1, 3, 3, 3] and vectors.shape == (10, 3)
    # the fake's vector starts with the text's length: order is kept across concurrent batches
    lengths = vectors[:, 0] / vectors[:, 1]
    assert list(np.round(lengths).astype(int)) == [len(t) for t in texts]


async def test_a_call_can_cap_its_reply_and_ask_for_json():
    with FakeOpenAI([("text", "{}")]) as fake:
        await chat_for(fake.url).complete(MESSAGES, max_tokens=130, json_object=True)
        await chat_for(fake.url).complete(MESSAGES, max_tokens=99_999)
        await chat_for(fake.url, json_mode=False).complete(MESSAGES, json_object=True)
    capped, over, plain = fake.requests
    assert capped["response_format"] == {"type": "json_object"} and 130 in (
        capped.get("max_tokens"),
        capped.get("max_completion_tokens"),
    )
    assert 1500 in (over.get("max_tokens"), over.get("max_completion_tokens"))  # never above RAG_LLM__MAX_TOKENS
    assert "response_format" not in plain


async def test_a_call_can_ask_for_json_of_a_schema():
    schema = answer_schema(3, 4)
    with FakeOpenAI([("text", "{}")]) as fake:
        await chat_for(fake.url).complete(MESSAGES, json_object=schema)
    sent = fake.requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema
    assert sent["json_schema"]["strict"] is False  # strict mode would reject the length limits


def test_a_dead_endpoint_is_found_before_anything_else_runs(settings, monkeypatch):
    """The reachability check fails a refused port or an unknown host at once, and the answer fails before its
    retrieval starts (the collection named does not even exist); behind a proxy it tries nothing."""
    from rag.llm import check_reachable
    from rag.pipeline import answer

    for url in ("http://127.0.0.1:9/v1", "http://no-such-host.invalid/v1"):
        with pytest.raises(LLMUnavailableError, match=r"Nothing answers at .* start the model server"):
            check_reachable(LLMSettings(base_url=url, model="m"))
    stages: list[str] = []
    dead = settings.model_copy(update={"llm": LLMSettings(base_url="http://127.0.0.1:9/v1", model="m")})
    with pytest.raises(LLMUnavailableError, match="Nothing answers"):
        answer("Q?", collection="no-such-collection", settings=dead, on_stage=stages.append)
    assert stages == []
    with FakeOpenAI([("text", "")]) as fake:  # something listens: the check passes, and sends nothing
        check_reachable(LLMSettings(base_url=fake.url, model="m"))
    assert fake.requests == []
    for proxy in ("HTTP_PROXY", "ALL_PROXY"):
        with monkeypatch.context() as env:
            env.setenv(proxy, "http://127.0.0.1:9")
            check_reachable(LLMSettings(base_url="http://no-such-host.invalid/v1", model="m"))

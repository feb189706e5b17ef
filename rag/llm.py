"""The one seam to language models: LangChain + the OpenAI client live here and nowhere else.

:class:`ChatModel` is the small protocol the drafter and checker use. :class:`OpenAIChat` speaks
to any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp) through LangChain's
``ChatOpenAI``; :class:`ScriptedChat` is the fake that tests use. Retries (tenacity, on 429,
5xx, timeouts and connection errors) happen in :func:`retrying` and only there, with the project's
one policy (:mod:`rag.retry`).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from rag.errors import ConfigError, LLMBudgetError, LLMError, LLMResponseError, LLMUnavailableError
from rag.retry import retrying as _retrying
from rag.settings import LLMSettings, Settings
from rag.tokens import count_tokens
from rag.types import LLMCall, Usage

JSONAsk = bool | dict[str, Any]  # what a call asks of its reply: any JSON object (True), or one of this schema


@dataclass
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    truncated: bool = False  # the model stopped at max_tokens, not at the end of its answer

    def usage(self) -> Usage:
        """What this call cost, as one call of an answer's :class:`~rag.types.Usage`."""
        return Usage(llm_calls=1, prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)


class ChatModel(Protocol):
    """What the pipeline needs from a chat model."""

    name: str

    async def complete(
        self,
        messages: Sequence[Message],
        on_token: Callable[[str], None] | None = None,
        *,
        max_tokens: int | None = None,
        json_object: JSONAsk = False,
    ) -> Completion:
        """The whole reply; with ``on_token``, stream it piece by piece as it arrives. ``max_tokens`` caps this
        reply below the configured one; ``json_object`` asks for one JSON object (where the endpoint can), or
        given a JSON schema, for one object of that shape."""
        ...


def _refused(exc: BaseException) -> bool:
    """Nothing listens there, or the host name does not resolve: asking again will not help. Read off the
    root of the chain (LangChain wraps the SDK's error, which wraps a vendored httpx's)."""
    import errno
    import socket

    import openai

    if not isinstance(exc, openai.APIConnectionError) or isinstance(exc, openai.APITimeoutError):
        return False
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, (ConnectionRefusedError, socket.gaierror)):
            return True
        if isinstance(link, OSError) and link.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return True
        link = link.__cause__ or link.__context__
    return False


def _timed_out(exc: BaseException) -> bool:
    import openai

    return isinstance(exc, openai.APITimeoutError)


def _transient(exc: BaseException) -> bool:
    import openai

    kinds = (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError)
    return isinstance(exc, kinds) and not _refused(exc)


def retrying(settings: LLMSettings, asynchronous: bool = True) -> Any:
    """The retry policy for every model call: :func:`rag.retry.retrying` on the endpoint's transient errors;
    a timeout is retried once (a model that took ``timeout`` seconds once is likely to again), a refused
    connection not at all."""
    return _retrying(_transient, settings.max_retries, asynchronous=asynchronous, max_wait=8.0, once=_timed_out)


def _translate(exc: Exception, where: str, attempts: int = 1) -> LLMError | ConfigError:
    import openai

    if isinstance(exc, openai.AuthenticationError):
        return ConfigError(f"The endpoint {where} rejected the API key (401). Set OPENAI_API_KEY or RAG_LLM_API_KEY.")
    if isinstance(exc, openai.NotFoundError):
        return LLMResponseError(
            f"The endpoint {where} answered 404: wrong RAG_LLM_BASE_URL or unknown RAG_LLM_MODEL ({exc})."
        )
    if _refused(exc):
        return LLMUnavailableError(_nothing_answers(where))
    if _transient(exc):
        return LLMUnavailableError(
            f"The endpoint {where} is unavailable after {attempts} attempt{'s' * (attempts != 1)}: "
            f"{type(exc).__name__}: {exc}"
        )
    if isinstance(exc, openai.APIStatusError):
        return LLMResponseError(f"The endpoint {where} answered {exc.status_code}: {exc.message}")
    return LLMResponseError(f"The endpoint {where} sent an unusable reply: {type(exc).__name__}: {exc}")


def _nothing_answers(where: str) -> str:
    return (
        f"Nothing answers at {where} (connection refused, or no such host): start the model server, or fix "
        "RAG_LLM_BASE_URL."
    )


_REACH_S = 1.0  # a connect to localhost or a LAN host takes milliseconds: a slower one is the call's to judge


def check_reachable(settings: LLMSettings) -> None:
    """Fail at once (LLMUnavailableError) when nothing listens at the endpoint or its host name does not resolve:
    called before retrieval and before the model client loads (a second or more of both), so a dead endpoint
    costs a connect. A slow or filtered one is left to the call, its timeout and its retry; behind a proxy the
    proxy is what connects, so nothing is tried here."""
    import socket
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    where = settings.base_url or "https://api.openai.com/v1"
    parts = urlsplit(where)
    host = parts.hostname or ""
    proxies = getproxies()  # HTTP(S)_PROXY, ALL_PROXY: as the client reads them
    if not host or ({parts.scheme, "all"} & proxies.keys() and not proxy_bypass(host)):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((host, port), timeout=_REACH_S).close()
    except (ConnectionRefusedError, socket.gaierror) as exc:
        raise LLMUnavailableError(_nothing_answers(where)) from exc
    except (OSError, ValueError):  # timed out, unreachable for now, a malformed port: the call will say
        return


def _api_key(settings: LLMSettings) -> str:
    import os

    if settings.api_key:
        return settings.api_key.get_secret_value()
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ["OPENAI_API_KEY"]
    if settings.base_url:
        return "not-needed"  # local servers (Ollama, llama.cpp, vLLM) accept any key
    raise ConfigError(
        "RAG_LLM_MODEL is set without RAG_LLM_BASE_URL, which means api.openai.com, but no API key was found: "
        "export OPENAI_API_KEY=sk-... (or set RAG_LLM_BASE_URL for a local server)."
    )


class OpenAIChat:
    """Any OpenAI-compatible chat endpoint, through LangChain's ``ChatOpenAI``."""

    def __init__(self, settings: LLMSettings) -> None:
        from langchain_openai import ChatOpenAI

        if not settings.configured:
            raise ConfigError("No LLM endpoint configured: set RAG_LLM_BASE_URL and RAG_LLM_MODEL.")
        self.settings = settings
        self.model = settings.model or "gpt-4o-mini"
        self.name = f"llm:{self.model}"
        self.where = settings.base_url or "https://api.openai.com/v1"
        self._chat = ChatOpenAI(
            model=self.model,
            base_url=settings.base_url,
            api_key=_api_key(settings),  # type: ignore[arg-type]
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,  # type: ignore[call-arg]
            timeout=settings.timeout,
            max_retries=0,  # tenacity retries, in one place
            stream_usage=True,
        )

    @staticmethod
    def _lc_messages(messages: Sequence[Message]) -> list[Any]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        return [kinds[m.role](content=m.content) for m in messages]

    async def complete(
        self,
        messages: Sequence[Message],
        on_token: Callable[[str], None] | None = None,
        *,
        max_tokens: int | None = None,
        json_object: JSONAsk = False,
    ) -> Completion:
        lc = self._lc_messages(messages)
        options: dict[str, Any] = {"max_tokens": min(max_tokens, self.settings.max_tokens)} if max_tokens else {}
        if json_object and self.settings.json_mode:  # constrained decoding where served: a small model's JSON parses
            # in the body as it is: as a keyword, LangChain would take the stricter structured-output stream
            options["extra_body"] = {"response_format": response_format(json_object)}
        attempts = 0
        try:
            async for attempt in retrying(self.settings):
                attempts += 1
                with attempt:
                    # always streamed: the timeout is then the longest wait for the next token, so a slow model
                    # that is still writing (a small one on CPU, a long answer) is not cut off and asked again
                    text, usage, finish = await self._stream(lc, on_token, options)
        except (ConfigError, LLMError):
            raise
        except Exception as exc:
            raise _translate(exc, self.where, attempts) from exc
        if not text.strip():
            raise LLMResponseError(f"The endpoint {self.where} returned an empty answer.")
        prompt_tokens = (usage or {}).get("input_tokens") or sum(count_tokens(m.content) for m in messages)
        completion_tokens = (usage or {}).get("output_tokens") or count_tokens(text)
        return Completion(text, int(prompt_tokens), int(completion_tokens), self.model, finish == "length")

    async def _stream(
        self, lc: list[Any], on_token: Callable[[str], None] | None, options: dict[str, Any]
    ) -> tuple[str, Any, str | None]:
        parts: list[str] = []
        usage = finish = None
        stream: AsyncIterator[Any] = self._chat.astream(lc, **options)
        async for chunk in stream:
            piece = _text(chunk.content)
            if piece:
                parts.append(piece)
                if on_token:
                    on_token(piece)
            usage = getattr(chunk, "usage_metadata", None) or usage
            finish = (getattr(chunk, "response_metadata", None) or {}).get("finish_reason") or finish
        return "".join(parts), usage, finish


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    raise LLMResponseError(f"Unexpected message content of type {type(content).__name__}.")


@dataclass
class ScriptedChat:
    """A fake chat model for tests: replies are scripted strings, or callables of the messages."""

    replies: list[str | Callable[[Sequence[Message]], str]]
    name: str = "llm:scripted"
    calls: list[list[Message]] = field(default_factory=list)
    options: list[dict[str, Any]] = field(default_factory=list)  # each call's max_tokens and json_object

    async def complete(
        self,
        messages: Sequence[Message],
        on_token: Callable[[str], None] | None = None,
        *,
        max_tokens: int | None = None,
        json_object: JSONAsk = False,
    ) -> Completion:
        self.options.append({"max_tokens": max_tokens, "json_object": json_object})
        if not self.replies:
            raise LLMResponseError("ScriptedChat ran out of replies")
        self.calls.append(list(messages))
        reply = self.replies.pop(0)
        text = reply(messages) if callable(reply) else reply
        if on_token:
            for i in range(0, len(text), 7):
                on_token(text[i : i + 7])
        return Completion(text, sum(count_tokens(m.content) for m in messages), count_tokens(text), "scripted")


T = TypeVar("T")


def response_format(ask: JSONAsk) -> dict[str, Any]:
    """The ``response_format`` for a JSON reply. A schema is sent not ``strict``: OpenAI's strict mode rejects
    length limits, which llama.cpp, vLLM and Ollama enforce in their grammars, and which OpenAI's models keep to
    without being forced."""
    if isinstance(ask, dict):
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": ask, "strict": False}}
    return {"type": "json_object"}


def read_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model's reply, code fence or chatter around it (ValueError when there is none)."""
    m = re.search(r"\{.*\}", text, re.DOTALL)
    if not m:
        raise ValueError("no JSON object in the reply")
    data = json.loads(m.group(0))
    if not isinstance(data, dict):
        raise ValueError("the reply is not a JSON object")
    return data


def json_reply_tokens(items: int) -> int:
    """Room for a JSON reply of ``items`` short verdicts, each an id, a score or stance and a quoted sentence
    (~60 tokens; 90 with slack), and the braces around them: a cap that stops a small model that will not."""
    return 40 + 90 * items


async def complete_parsed(
    chat: ChatModel,
    messages: Sequence[Message],
    parse: Callable[[str], T],
    unusable: str,
    *,
    max_tokens: int | None = None,
    json_object: JSONAsk = False,
) -> tuple[T | None, LLMCall]:
    """One auxiliary call (judge, meter) whose reply must parse: the parsed reply and what the call
    cost, or None and a note starting with ``unusable`` when the endpoint failed or the reply did not parse."""
    completion: Completion | None = None
    try:
        completion = await chat.complete(messages, max_tokens=max_tokens, json_object=json_object)
        return parse(completion.text), LLMCall(usage=completion.usage())
    except (LLMError, ValueError) as exc:
        note = f"{unusable}: {exc}"
        return None, (LLMCall(usage=completion.usage(), note=note) if completion else LLMCall(note=note))


class Budget:
    """A chat model for one answer: its calls, retries and waits included, share one deadline, and at most
    ``calls`` of them are made."""

    def __init__(self, chat: ChatModel, seconds: float | None, calls: int | None = None) -> None:
        self.chat, self.name, self.seconds, self.calls = chat, chat.name, seconds, calls
        self.made = 0
        self._ends = time.monotonic() + seconds if seconds else None

    async def complete(
        self,
        messages: Sequence[Message],
        on_token: Callable[[str], None] | None = None,
        *,
        max_tokens: int | None = None,
        json_object: JSONAsk = False,
    ) -> Completion:
        if self.calls is not None and self.made >= self.calls:
            raise LLMBudgetError(f"the answer's {self.calls} model calls (RAG_LLM__MAX_CALLS) were spent")
        self.made += 1
        options: dict[str, Any] = {"max_tokens": max_tokens, "json_object": json_object}
        if self._ends is None:
            return await self.chat.complete(messages, on_token, **options)
        left = self._ends - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            async with asyncio.timeout(left):
                return await self.chat.complete(messages, on_token, **options)
        except TimeoutError:
            raise LLMUnavailableError(
                f"The model did not answer within the answer's deadline of {self.seconds:g} s "
                "(RAG_LLM__DEADLINE_S); try a faster model or endpoint, or raise the deadline."
            ) from None


def make_chat(settings: Settings) -> ChatModel | None:
    """The configured chat model, or None when no endpoint is configured (offline mode); LLMUnavailableError
    at once when nothing listens there (:func:`check_reachable`, before the client library loads)."""
    if not settings.llm.configured:
        return None
    check_reachable(settings.llm)
    return OpenAIChat(settings.llm)


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint (used when ``RAG_EMBED__PROVIDER=openai``)."""

    def __init__(self, settings: Settings, model: str | None = None) -> None:
        import openai

        self.model = model or settings.embed.openai_model
        base_url = settings.embed.openai_base_url or settings.llm.base_url
        llm = settings.llm.model_copy(update={"base_url": base_url})
        self._settings = llm
        self._embed = settings.embed
        self._client = openai.OpenAI(base_url=base_url, api_key=_api_key(llm), max_retries=0, timeout=llm.timeout)
        self.where = base_url or "https://api.openai.com/v1"

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Batches of ``embed.remote_batch`` texts, ``embed.remote_concurrency`` requests in flight, each
        retried by the one policy; the vectors come back in the texts' order."""
        from concurrent.futures import ThreadPoolExecutor

        size = self._embed.remote_batch
        batches = [list(texts[i : i + size]) for i in range(0, len(texts), size)]

        def one(batch: list[str]) -> list[list[float]]:
            attempts = 0
            try:
                for attempt in retrying(self._settings, asynchronous=False):
                    attempts += 1
                    with attempt:
                        response = self._client.embeddings.create(model=self.model, input=batch)
            except Exception as exc:
                raise _translate(exc, self.where, attempts) from exc
            if progress:
                progress(len(batch))
            return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

        with ThreadPoolExecutor(max_workers=self._embed.remote_concurrency, thread_name_prefix="rag-embed") as pool:
            out = [vector for vectors in pool.map(one, batches) for vector in vectors]
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        arr = np.asarray(out, dtype=np.float32)
        return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)

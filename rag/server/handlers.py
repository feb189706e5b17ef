"""What the routes do: pick the collection, read the question, answer (whole or streamed)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from rag.errors import InputError, RagError
from rag.pipeline import Pipeline
from rag.server.schemas import AnswerRequest, ChatRequest, error, extra
from rag.settings import Settings
from rag.store import Store
from rag.types import Answer

_BUSY = "Too many answers in progress; retry shortly."


class Handlers:
    """The server's state (pipeline, store, concurrency gate) and one method per route."""

    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings, self.pipeline = settings, pipeline
        self.opts = settings.server
        self.store = Store(settings)
        self.gate = asyncio.Semaphore(self.opts.max_concurrent)

    def collection_for(self, model: str | None) -> str:
        names = self.store.list_collections()
        if model and model in names:
            return model
        default = self.settings.collection
        return default if default in names or not names else names[0]

    def question_of(self, body: ChatRequest) -> tuple[str, str]:
        users = [m.text().strip() for m in body.messages if m.role == "user" and m.text().strip()]
        if not users:
            raise InputError("messages", "no user message with text")
        question = users[-1]
        self.check_length(question)
        # a follow-up ("and in children?") is retrieved together with the question before it
        query = question if len(users) == 1 else f"{question} (context: {users[-2]})"
        return question, query

    def check_length(self, question: str) -> None:
        if len(question) > self.opts.max_question_chars:
            raise InputError("question", f"longer than {self.opts.max_question_chars} characters")

    async def run(self, question: str, collection: str, on_token: Any = None, **overrides: Any) -> Answer:
        return await self.pipeline.aanswer(
            question, collection=collection, settings=self.settings, on_token=on_token, **overrides
        )

    async def models(self) -> dict[str, Any]:
        names = await asyncio.to_thread(self.store.list_collections)
        return {
            "object": "list",
            "data": [{"id": n, "object": "model", "created": 0, "owned_by": "rag"} for n in names],
        }

    # A RagError raised here becomes its HTTP answer in the app's exception handler (schemas.failure).
    async def answer(self, body: AnswerRequest) -> Any:
        self.check_length(body.question)
        if self.gate.locked():
            return error(429, _BUSY, "rate_limit_error")
        async with self.gate:
            overrides: dict[str, Any] = {"evidence_k": body.k} if body.k else {}
            if body.find:
                overrides["find"] = body.find
            if body.filters:
                overrides["filters"] = body.filters
            return await self.run(body.question, body.collection or self.collection_for(None), **overrides)

    async def chat(self, body: ChatRequest) -> Any:
        question, query = self.question_of(body)
        collection = self.collection_for(body.model)
        if self.gate.locked():
            return error(429, _BUSY, "rate_limit_error")
        ids = (f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), collection)
        if body.stream:
            await self.gate.acquire()  # held until the stream ends
            return StreamingResponse(
                self._stream(ids, question, query, body.find),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        async with self.gate:
            result = await self.run(question, collection, query=query, find=body.find or None)
        return _completion(ids, result)

    async def _stream(self, ids: tuple[str, int, str], question: str, query: str, find: bool) -> AsyncIterator[str]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        async def produce() -> Answer:
            try:
                return await self.run(question, ids[2], on_token=queue.put_nowait, query=query, find=find or None)
            finally:
                queue.put_nowait(None)

        try:
            yield _chunk(ids, {"role": "assistant", "content": ""})
            task = asyncio.create_task(produce())
            while (piece := await queue.get()) is not None:
                yield _chunk(ids, {"content": piece})
            try:
                result = await task
            except RagError as exc:
                yield f"data: {json.dumps({'error': {'message': str(exc), 'type': type(exc).__name__}})}\n\n"
            else:
                yield _chunk(ids, {}, finish="stop", rag=extra(result))
            yield "data: [DONE]\n\n"
        finally:
            self.gate.release()


def _completion(ids: tuple[str, int, str], result: Answer) -> dict[str, Any]:
    completion_id, created, collection = ids
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": collection,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": result.markdown}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.prompt_tokens + result.usage.completion_tokens,
        },
        "rag": extra(result),
    }


def _chunk(
    ids: tuple[str, int, str], delta: dict[str, Any], finish: str | None = None, rag: dict[str, Any] | None = None
) -> str:
    completion_id, created, collection = ids
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": collection,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if rag is not None:
        body["rag"] = rag
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

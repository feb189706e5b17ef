"""`rag serve`: an OpenAI-compatible HTTP API over the pipeline (FastAPI).

- ``POST /v1/chat/completions`` — OpenAI chat format; ``stream: true`` answers as server-sent
  events in the OpenAI chunk format. The last user message is the question; earlier user turns
  add context to retrieval for follow-ups. ``model`` names a collection (see ``GET /v1/models``);
  an unknown name falls back to the default collection. The content is the cited answer's
  Markdown; the sources, citations and grounding receipt ride along in an extra ``rag`` field
  (on the completion, or on the final chunk when streaming).
- ``POST /v1/answer`` — the full :class:`~rag.types.Answer` as JSON.
- ``GET /v1/models``, ``GET /healthz``, and the OpenAPI document at ``/openapi.json``.
- ``GET /`` — a single-page chat (plain HTML/JS, no build step): streaming answers, clickable
  ``[n]`` citations that show the source and the quoted passage, a grounding badge per sentence.

Bearer-token auth when ``RAG_API_KEYS`` is set; request-size and question-length limits; at most
``max_concurrent`` answers at once (429 beyond); CORS origins configurable. Errors are JSON in
OpenAI's shape: ``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.answer import aanswer
from rag.errors import CollectionNotFoundError, ConfigError, LLMError, RagError
from rag.llm import ChatModel
from rag.settings import Settings
from rag.store import Store
from rag.types import Answer


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"] = Field(description="Who said it.")
    content: str | list[dict[str, Any]] | None = Field(None, description="Text, or OpenAI content parts.")

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if isinstance(p, dict))
        return self.content or ""


class ChatRequest(BaseModel):
    model: str | None = Field(None, description="A collection name (GET /v1/models); default collection otherwise.")
    messages: list[ChatMessage] = Field(
        min_length=1, description="The conversation; the last user message is the question."
    )
    stream: bool = Field(False, description="Answer as server-sent events.")

    model_config = {"extra": "allow"}  # temperature, max_tokens, … are accepted and ignored


class AnswerRequest(BaseModel):
    question: str = Field(min_length=1, description="The research question.")
    collection: str | None = Field(None, description="Collection to answer from.")
    k: int | None = Field(None, ge=1, le=100, description="Evidence chunks for the drafter.")


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Bad request (malformed JSON, missing fields, question too long)",
        401: "Missing or invalid bearer token",
        404: "Unknown collection",
        413: "Request body too large",
        429: "Too many answers in progress",
        502: "The LLM endpoint failed",
    }.items()
}


def _error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": code}}, status_code=status, headers=headers
    )


def _extra(answer: Answer) -> dict[str, Any]:
    return {
        "title": answer.title,
        "answerable": answer.answerable,
        "drafter": answer.drafter,
        "sources": [s.model_dump() for s in answer.sources],
        "citations": [c.model_dump() for c in answer.citations],
        "grounding": answer.grounding.model_dump() if answer.grounding else None,
        "consensus": answer.consensus.model_dump() if answer.consensus else None,
        "usage": answer.usage.model_dump(),
    }


def create_app(settings: Settings | None = None, chat: ChatModel | None = None) -> FastAPI:
    """The ASGI app (``uvicorn rag.server:app`` uses the environment's settings)."""
    settings = settings or Settings()
    opts = settings.server
    app = FastAPI(
        title="rag",
        version="0.1.0",
        description="Sectioned, cited, citation-checked answers from a corpus of scientific papers.",
    )
    if opts.cors_origins:
        origins = [o.strip() for o in opts.cors_origins.split(",") if o.strip()]
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])
    gate = asyncio.Semaphore(opts.max_concurrent)
    keys = opts.keys()
    store = Store(settings)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if keys and request.url.path.startswith("/v1/"):
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if token not in keys:
                return _error(401, "Missing or invalid bearer token.", "authentication_error", "invalid_api_key")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > opts.max_body_bytes:
            return _error(413, f"Request body over {opts.max_body_bytes} bytes.", code="request_too_large")
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _error(exc.status_code, str(exc.detail), kind, headers=dict(exc.headers or {}))  # e.g. Allow on 405

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            message = "Malformed JSON body."
        return _error(400, f"{where}: {message}" if where else message)

    def collection_for(model: str | None) -> str:
        names = store.list_collections()
        if model and model in names:
            return model
        return settings.collection if settings.collection in names or not names else names[0]

    def question_of(body: ChatRequest) -> tuple[str, str]:
        users = [m.text().strip() for m in body.messages if m.role == "user" and m.text().strip()]
        if not users:
            raise ConfigError("messages: no user message with text")
        question = users[-1]
        if len(question) > opts.max_question_chars:
            raise ConfigError(f"The question is longer than {opts.max_question_chars} characters.")
        # a follow-up ("and in children?") is retrieved together with the question before it
        query = question if len(users) == 1 else f"{question} (context: {users[-2]})"
        return question, query

    async def run(question: str, collection: str, on_token: Any = None, **overrides: Any) -> Answer:
        return await aanswer(
            question, collection=collection, settings=settings, chat=chat, on_token=on_token, **overrides
        )

    def failure(exc: Exception) -> JSONResponse:
        if isinstance(exc, CollectionNotFoundError):
            return _error(404, str(exc), code="collection_not_found")
        if isinstance(exc, ConfigError):
            return _error(400, str(exc))
        if isinstance(exc, LLMError):
            return _error(502, str(exc), "upstream_error")
        return _error(500, str(exc), "server_error")

    page = (resources.files("rag") / "web" / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "collections": await asyncio.to_thread(store.list_collections)}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        names = await asyncio.to_thread(store.list_collections)
        return {
            "object": "list",
            "data": [{"id": n, "object": "model", "created": 0, "owned_by": "rag"} for n in names],
        }

    @app.post("/v1/answer", response_model=Answer, responses=ERRORS)
    async def answer_endpoint(body: AnswerRequest) -> Any:
        if len(body.question) > opts.max_question_chars:
            return _error(400, f"The question is longer than {opts.max_question_chars} characters.")
        if gate.locked():
            return _error(429, "Too many answers in progress; retry shortly.", "rate_limit_error")
        async with gate:
            try:
                overrides = {"evidence_k": body.k} if body.k else {}
                return await run(body.question, body.collection or collection_for(None), **overrides)
            except RagError as exc:
                return failure(exc)

    @app.post(
        "/v1/chat/completions",
        responses={
            **ERRORS,
            200: {
                "description": "A chat completion (JSON), or with `stream: true` server-sent events in the "
                "OpenAI chunk format, ending with `data: [DONE]`.",
                "content": {
                    "text/event-stream": {"schema": {"description": "Each event: a chat.completion.chunk object."}}
                },
            },
        },
    )
    async def chat_completions(body: ChatRequest) -> Any:
        try:
            question, query = question_of(body)
        except ConfigError as exc:
            return _error(400, str(exc))
        collection = collection_for(body.model)
        if gate.locked():
            return _error(429, "Too many answers in progress; retry shortly.", "rate_limit_error")
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not body.stream:
            async with gate:
                try:
                    result = await run(question, collection, query=query)
                except RagError as exc:
                    return failure(exc)
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
                "rag": _extra(result),
            }
        await gate.acquire()  # held until the stream ends
        return StreamingResponse(
            _stream(completion_id, created, collection, question, query),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(
        completion_id: str, created: int, collection: str, question: str, query: str
    ) -> AsyncIterator[str]:
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def chunk(delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> str:
            body: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": collection,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if extra is not None:
                body["rag"] = extra
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        async def produce() -> Answer:
            try:
                return await run(question, collection, on_token=queue.put_nowait, query=query)
            finally:
                queue.put_nowait(None)

        try:
            yield chunk({"role": "assistant", "content": ""})
            task = asyncio.create_task(produce())
            while (piece := await queue.get()) is not None:
                yield chunk({"content": piece})
            try:
                result = await task
            except RagError as exc:
                yield f"data: {json.dumps({'error': {'message': str(exc), 'type': type(exc).__name__}})}\n\n"
            else:
                yield chunk({}, finish="stop", extra=_extra(result))
            yield "data: [DONE]\n\n"
        finally:
            gate.release()

    return app


def serve(host: str | None = None, port: int | None = None, settings: Settings | None = None) -> None:
    """Run the server with uvicorn (blocking)."""
    import uvicorn

    settings = settings or Settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level="info",
    )

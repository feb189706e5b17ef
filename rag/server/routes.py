"""The FastAPI app: middleware (auth, body size), error handlers and the routes."""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import RagError
from rag.llm import ChatModel
from rag.pipeline import Pipeline
from rag.server.handlers import Handlers
from rag.server.schemas import ERRORS, AnswerRequest, ChatRequest, error, failure
from rag.settings import ServerSettings, Settings
from rag.types import Answer

_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A chat completion (JSON), or with `stream: true` server-sent events in the "
        "OpenAI chunk format, ending with `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": {"description": "Each event: a chat.completion.chunk object."}}},
    }
}


def create_app(settings: Settings | None = None, chat: ChatModel | None = None) -> FastAPI:
    """The ASGI app for ``settings`` (default: the environment's); ``chat`` replaces the configured model."""
    settings = settings or Settings()
    app = FastAPI(
        title="rag",
        version="0.1.0",
        description="Sectioned, cited, citation-checked answers from a corpus of scientific papers.",
    )
    if settings.server.cors_origins:
        origins = [o.strip() for o in settings.server.cors_origins.split(",") if o.strip()]
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])
    _guard(app, settings.server)
    _error_handlers(app)
    _routes(app, Handlers(settings, Pipeline(settings, chat)))
    return app


def _guard(app: FastAPI, opts: ServerSettings) -> None:
    keys = opts.keys()

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if keys and request.url.path.startswith("/v1/"):
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if token not in keys:
                return error(401, "Missing or invalid bearer token.", "authentication_error", "invalid_api_key")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > opts.max_body_bytes:
            return error(413, f"Request body over {opts.max_body_bytes} bytes.", code="request_too_large")
        return await call_next(request)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        return failure(exc)  # 400 for the caller's input, 404 unknown collection, 503 outages, ...

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return error(exc.status_code, str(exc.detail), kind, headers=dict(exc.headers or {}))  # e.g. Allow on 405

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            message = "Malformed JSON body."
        return error(400, f"{where}: {message}" if where else message)


def _routes(app: FastAPI, handlers: Handlers) -> None:
    page = (resources.files("rag") / "web" / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "collections": await asyncio.to_thread(handlers.store.list_collections)}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return await handlers.models()

    @app.post("/v1/answer", response_model=Answer, responses=ERRORS)
    async def answer_endpoint(body: AnswerRequest) -> Any:
        return await handlers.answer(body)

    @app.post("/v1/chat/completions", responses={**ERRORS, **_STREAM_DOC})
    async def chat_completions(body: ChatRequest) -> Any:
        return await handlers.chat(body)


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

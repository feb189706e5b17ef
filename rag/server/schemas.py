"""The server's request and error bodies (OpenAI's shapes), and the error-to-status mapping."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt

from rag.errors import (
    CollectionNotFoundError,
    InputError,
    LLMError,
    LLMUnavailableError,
    RagError,
    SourceUnavailableError,
    StoreUnavailableError,
)
from rag.types import Answer, Filters, FindRequest


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
    stream: StrictBool = Field(False, description="Answer as server-sent events.")
    find: StrictBool = Field(False, description="rag extension: search the literature services for the question first.")

    model_config = {"extra": "allow"}  # temperature, max_tokens, … are accepted and ignored


class AnswerRequest(BaseModel):
    question: str = Field(min_length=1, description="The research question.")
    collection: str | None = Field(None, description="Collection to answer from.")
    # strict: JSON `true` is not the integer 1 that pydantic's lax mode would make of it (the schema says integer)
    k: StrictInt | None = Field(None, ge=1, le=100, description="Evidence chunks for the drafter.")
    find: FindRequest | StrictBool | None = Field(
        None,
        description="Search PubMed, Europe PMC, OpenAlex, arXiv first and store what they find: `true` searches "
        "for the question; an object sets query, sources, max_results, since, full_text.",
    )
    filters: Filters | None = Field(
        None, description="Only some papers: `doc_ids` (a paper the collection lacks is a 400), `year_min`, `year_max`."
    )


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
        500: "The server is misconfigured",
        502: "The LLM endpoint sent an unusable reply",
        503: "The LLM endpoint or the Chroma server is unavailable",
    }.items()
}


def error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": code}}, status_code=status, headers=headers
    )


def failure(exc: RagError) -> JSONResponse:
    """The HTTP answer to a pipeline error: the caller's fault (4xx), an outage (503), or ours (5xx)."""
    if isinstance(exc, CollectionNotFoundError):
        return error(404, str(exc), code="collection_not_found")
    if isinstance(exc, InputError):
        return error(400, str(exc))
    if isinstance(exc, (LLMUnavailableError, StoreUnavailableError, SourceUnavailableError)):
        return error(503, str(exc), "service_unavailable", "upstream_unavailable")
    if isinstance(exc, LLMError):
        return error(502, str(exc), "upstream_error")
    return error(500, str(exc), "server_error")


def extra(answer: Answer) -> dict[str, Any]:
    """What rides along in the ``rag`` field: sources, citations, grounding, consensus, usage."""
    return {
        "title": answer.title,
        "answerable": answer.answerable,
        "drafter": answer.drafter,
        "sources": [s.model_dump() for s in answer.sources],
        "citations": [c.model_dump() for c in answer.citations],
        "grounding": answer.grounding.model_dump() if answer.grounding else None,
        "consensus": answer.consensus.model_dump() if answer.consensus else None,
        "usage": answer.usage.model_dump(),
        "found": answer.found.model_dump() if answer.found else None,
    }

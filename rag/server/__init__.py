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
OpenAI's shape: ``{"error": {"message", "type", "code"}}`` — 400 for the caller's input, 404 for an
unknown collection, 503 when the LLM endpoint or the Chroma server is down, 502 for an unusable
LLM reply. Layout: :mod:`.schemas` (bodies, error mapping), :mod:`.handlers` (what each route
does), :mod:`.routes` (the app).
"""

from rag.server.routes import create_app, serve

__all__ = ["create_app", "serve"]

"""Typed errors. Every error the library raises on purpose derives from :class:`RagError`.

::

    RagError
    ├── ConfigError              bad or missing settings (e.g. an API key, an unknown preset)
    ├── InputError               one input (file, record, request) cannot be used; names it
    │   ├── UnsupportedFormatError   a file type we do not read
    │   ├── EmptyInputError          an empty file, or one with no text layer
    │   ├── CorruptFileError         a damaged, encrypted or binary file
    │   ├── TextEncodingError        text that is not in the expected encoding
    │   └── RecordError              a malformed JSON/JSONL record
    ├── ModelError               a bundled model or tokenizer file is missing or broken
    ├── StoreError               the vector store cannot do what was asked
    │   ├── StoreUnavailableError    a Chroma server that cannot be reached
    │   ├── CollectionNotFoundError  a collection that does not exist
    │   └── EmbedderMismatchError    a collection built with another embedder
    ├── DatasetError             a public data set could not be fetched or verified
    ├── FindError                a literature service (PubMed, Europe PMC, OpenAlex, arXiv, Crossref) failed
    │   ├── SourceUnavailableError   no network, refused, timing out or rate-limited after every retry
    │   └── SourceResponseError      an answer we cannot use (malformed XML/JSON, an error status)
    └── LLMError                 the chat/embeddings endpoint failed
        ├── LLMUnavailableError      unreachable, timing out or overloaded after every retry
        ├── LLMResponseError         an answer we cannot use (malformed, empty, refused)
        └── LLMBudgetError           an answer's model calls are all spent (RAG_LLM__MAX_CALLS)
"""

from __future__ import annotations

from pathlib import Path


class RagError(Exception):
    """Root of every error this library raises on purpose."""


class ConfigError(RagError):
    """A setting is missing or invalid; the message says which and how to fix it."""


class InputError(RagError):
    """One input cannot be used. ``source`` names it (a path, ``path:line``, or a request field)."""

    def __init__(self, source: str | Path, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str]]:  # sent back by a reading process
        return type(self), (self.source, self.reason)


class UnsupportedFormatError(InputError):
    """A file whose type the ingester does not read."""


class EmptyInputError(InputError):
    """An empty file, or a file/record with no usable text."""


class CorruptFileError(InputError):
    """A damaged, encrypted or binary file."""


class TextEncodingError(InputError):
    """Text that cannot be decoded with the configured encoding."""


class RecordError(InputError):
    """A malformed JSON/JSONL record (invalid JSON, missing fields, wrong types)."""


class ModelError(RagError):
    """A bundled model or tokenizer file is missing or cannot be loaded."""


class StoreError(RagError):
    """The vector store cannot do what was asked."""


class StoreUnavailableError(StoreError):
    """A Chroma server that cannot be reached."""


class CollectionNotFoundError(StoreError):
    """A collection that does not exist."""

    def __init__(self, name: str, available: list[str] | None = None) -> None:
        self.name = name
        self.available = available or []
        hint = f" Available: {', '.join(self.available)}." if self.available else " No collections exist yet."
        super().__init__(
            f"Collection {name!r} does not exist.{hint} Create it with `rag ingest PATH --collection {name}`."
        )


class EmbedderMismatchError(StoreError):
    """A collection was built with a different embedder than the one configured."""


class DatasetError(RagError):
    """A public data set could not be fetched, verified or converted."""


class FindError(RagError):
    """A literature service failed. ``source`` names it (``pubmed``, ``openalex`` …)."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"{source}: {message}")


class SourceUnavailableError(FindError):
    """The service cannot be reached (no network, refused, DNS), times out or keeps answering 429/5xx."""


class SourceResponseError(FindError):
    """The service answered with something we cannot use (malformed body, an unexpected status)."""


class LLMError(RagError):
    """The chat or embeddings endpoint failed."""


class LLMUnavailableError(LLMError):
    """The endpoint cannot be reached, times out, or keeps answering 429/5xx after every retry."""


class LLMResponseError(LLMError):
    """The endpoint answered with something we cannot use (malformed, empty, or an error status)."""


class LLMBudgetError(LLMError):
    """One answer has made all the model calls it may (``RAG_LLM__MAX_CALLS``); the offline fallbacks answer."""

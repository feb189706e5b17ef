"""What every literature connector shares: the :class:`Record` it returns, the small
:class:`Connector` protocol, and the :class:`Fetch` it is given to make requests with.

A connector turns a query (or a list of identifiers) into records; it never ingests. Requests go
through a :class:`Fetch` (in practice :class:`rag.find.http.Fetcher`), which owns rate limits,
retries and the on-disk cache, so connectors only build URLs and parse bodies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel, Field

from rag.settings import FindSettings
from rag.sidecar import normalize_doi
from rag.types import Notice, Paper, PaperSection

Params = Mapping[str, str | int]

SOURCES = ("pubmed", "europepmc", "openalex", "arxiv", "crossref")
"""Every service there is a connector for (Crossref is asked about DOIs, not searched)."""


class Record(BaseModel):
    """One paper as a literature service describes it (identifiers bare: no URL or `PMC`-less forms)."""

    source: str = Field(description="The service: `pubmed`, `europepmc`, `openalex`, `arxiv` or `crossref`.")
    key: str = Field(description="The service's own id, e.g. `pubmed:123`, `openalex:W42`, `arxiv:1605.08386`.")
    title: str = Field("", description="Title, plain text (markup removed).")
    abstract: list[PaperSection] = Field(
        default_factory=list, description="The abstract: one part per label of a structured abstract, else one."
    )
    authors: list[str] = Field(default_factory=list, description="Author names, `Given Family` where known.")
    year: int | None = Field(None, description="Publication year.")
    journal: str | None = Field(None, description="Journal or venue.")
    doi: str | None = Field(None, description="DOI, lower case, without `https://doi.org/`.")
    pmid: str | None = Field(None, description="PubMed id (digits).")
    pmcid: str | None = Field(None, description="PubMed Central id with its prefix, `PMC123`.")
    arxiv_id: str | None = Field(None, description="arXiv id without version, `1605.08386`.")
    openalex_id: str | None = Field(None, description="OpenAlex work id, `W123`.")
    pub_types: list[str] = Field(default_factory=list, description="Publication types as the service names them.")
    mesh: list[str] = Field(default_factory=list, description="MeSH descriptors (PubMed).")
    cited_by: int | None = Field(None, description="Citation count, where the service counts them.")
    retracted: bool = Field(False, description="The service flags the paper retracted or withdrawn.")
    notices: list[Notice] = Field(default_factory=list, description="Retraction, correction … notices it reports.")
    open_access: bool | None = Field(None, description="Free to read, where the service says.")
    pdf_url: str | None = Field(None, description="Where a PDF of the full text is, where known.")
    full_text: Paper | None = Field(None, description="The full text, when it was fetched and read.")


class Fetch(Protocol):
    """Makes a service's requests: rate-limited, retried, cached."""

    def get(self, url: str, params: Params | None = None, missing_ok: bool = False) -> bytes | None:
        """The response body of a GET. ``missing_ok``: a 404 gives None instead of an error."""
        ...


class Connector(Protocol):
    """One literature service."""

    name: str

    def search(self, query: str, limit: int, since: int | None = None) -> list[Record]:
        """Up to ``limit`` records matching ``query``, published in ``since`` or later."""
        ...

    def lookup(self, ids: Sequence[str]) -> list[Record]:
        """Records for the identifiers (``pmid:…``, ``pmcid:…``, ``doi:…``, ``arxiv:…``) this service knows;
        others are ignored."""
        ...

    def full_text(self, record: Record) -> Paper | None:
        """The record's full text read as a :class:`Paper`, when this service has it; else None."""
        ...


class Service:
    """What every connector keeps: the :class:`Fetch` it asks through, the settings and its base URL.
    A service without search, lookup or full text keeps the default that finds nothing."""

    name = ""

    def __init__(self, fetch: Fetch, settings: FindSettings) -> None:
        self.fetch = fetch
        self.settings = settings
        self.base = settings.base_url(self.name)

    def search(self, query: str, limit: int, since: int | None = None) -> list[Record]:
        return []

    def lookup(self, ids: Sequence[str]) -> list[Record]:
        return []

    def full_text(self, record: Record) -> Paper | None:
        return None


_ARXIV_VERSION = re.compile(r"v\d+$")


def bare_doi(value: str | None) -> str | None:
    """``https://doi.org/10.1/X`` → ``10.1/x`` (DOIs are case-insensitive)."""
    doi = normalize_doi(value)
    return doi if doi and doi.startswith("10.") else None


def bare_arxiv(value: str | None) -> str | None:
    """``http://arxiv.org/abs/1605.08386v1`` → ``1605.08386``."""
    if not value:
        return None
    tail = value.strip().rstrip("/").split("/abs/")[-1].removeprefix("arXiv:").removeprefix("arxiv:")
    return _ARXIV_VERSION.sub("", tail) or None


def split_ids(ids: Sequence[str], kind: str) -> list[str]:
    """The values of the identifiers of one kind: ``split_ids(["pmid:1", "doi:10.1/x"], "pmid")`` → ``["1"]``."""
    prefix = f"{kind}:"
    return [i[len(prefix) :].strip() for i in ids if i.lower().startswith(prefix) and i[len(prefix) :].strip()]

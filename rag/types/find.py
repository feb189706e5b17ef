"""What a literature search is asked for, and what it reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.types.papers import InputFailure


class FindRequest(BaseModel):
    """What to look for in the literature services (`rag find`, `answer(find=...)`)."""

    model_config = ConfigDict(strict=True)  # a request body's `"full_text": 0` is a mistake, not `false`

    query: str = Field("", description="Search words; may be empty when `ids` are given.")
    ids: list[str] = Field(
        default_factory=list, description="Identifiers to fetch: `pmid:…`, `pmcid:PMC…`, `doi:…`, `arxiv:…`."
    )
    sources: list[str] | None = Field(None, description="Services to ask; unset: `find.sources` of the settings.")
    max_results: int | None = Field(None, ge=1, le=500, description="Records per service; unset: the settings'.")
    since: int | None = Field(None, ge=1000, le=3000, description="Only papers published in this year or later.")
    full_text: bool = Field(False, description="Also fetch open-access full text (Europe PMC JATS, arXiv PDF).")


class SourceTally(BaseModel):
    """What one service gave."""

    source: str = Field(description="The service.")
    found: int = Field(0, description="Records it returned.")
    requests: int = Field(0, description="Requests sent over the network (retries included).")
    cached: int = Field(0, description="Responses served from the on-disk cache.")
    seconds: float = Field(0.0, description="Wall-clock time.")
    error: str | None = Field(None, description="Why it gave nothing, when it failed.")
    unavailable: bool = Field(False, description="It could not be reached (no network, refused, overloaded).")


class FindReport(BaseModel):
    """What a literature search found and stored."""

    query: str = Field("", description="The query (or the identifiers) searched for.")
    collection: str = Field("", description="Where the papers went.")
    sources: list[SourceTally] = Field(default_factory=list, description="Per service: found, requests, errors.")
    records: int = Field(0, description="Records returned by all services together.")
    papers: int = Field(0, description="Distinct papers among them (one paper found twice counts once).")
    duplicates: int = Field(0, description="Records that were a paper another service had already returned.")
    new: int = Field(0, description="Papers new to the collection.")
    already_stored: int = Field(0, description="Papers the collection already held unchanged.")
    updated: int = Field(0, description="Stored papers whose record changed (e.g. newly retracted), stored anew.")
    no_text: list[str] = Field(
        default_factory=list, description="Papers with neither abstract nor full text (not stored)."
    )
    full_texts: int = Field(0, description="Papers stored with their full text.")
    retracted: list[str] = Field(default_factory=list, description="Papers flagged retracted or withdrawn.")
    doc_ids: list[str] = Field(default_factory=list, description="Every paper found, as stored.")
    failed: list[InputFailure] = Field(default_factory=list, description="What could not be fetched or stored.")
    offline: bool = Field(False, description="No service could be reached: nothing was searched.")
    note: str = Field("", description="One line for people: what happened.")
    seconds: float = Field(0.0, description="Wall-clock time.")


class FindProgress(BaseModel):
    """A progress event of a search: a service answered, or notices / full texts fetched."""

    stage: Literal["search", "notices", "full_text"] = Field(description="What is under way.")
    source: str = Field("", description="The service, for `search`.")
    done: int = Field(description="Steps done.")
    total: int = Field(description="Steps in all.")
    detail: str = Field("", description="E.g. `12 found` or `unreachable`.")

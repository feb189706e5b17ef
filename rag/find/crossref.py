"""Crossref, asked about DOIs: the work's metadata and the editorial notices registered against it.

A publisher (or Retraction Watch, whose data Crossref now carries) registers a retraction, withdrawal,
expression of concern or correction as a separate record that *updates* the paper; Crossref lists those on
the paper as ``updated-by`` and on the notice as ``update-to``. Crossref is not searched: ``search`` is
empty, ``lookup`` takes DOIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from rag.errors import SourceResponseError
from rag.find.base import Record, Service, bare_doi, split_ids
from rag.find.text import as_int, clean, load_json, markup_sections, merge_notices, plain_text
from rag.types import Notice, NoticeKind

NAME = "crossref"
# Crossref's update types (https://www.crossref.org/documentation/crossmark/participating-in-crossmark/),
# with `-`/space read as `_`; anything else is `other`, its label kept.
_KINDS: dict[str, NoticeKind] = {
    "retraction": "retraction",
    "withdrawal": "withdrawal",
    "removal": "withdrawal",
    "expression_of_concern": "expression_of_concern",
    "correction": "correction",
    "erratum": "correction",
    "corrigendum": "correction",
}
_LABELS = {
    "retraction": "Retraction",
    "withdrawal": "Withdrawal",
    "expression_of_concern": "Expression of concern",
    "correction": "Correction",
}
# Relation names are read by the words in them, e.g. `is-retracted-by`, `has-correction`.
_RELATION_WORDS: list[tuple[str, NoticeKind]] = [
    ("retract", "retraction"),
    ("withdr", "withdrawal"),
    ("concern", "expression_of_concern"),
    ("correct", "correction"),
    ("errat", "correction"),
    ("corrigend", "correction"),
]


def _works(data: bytes) -> list[dict[str, Any]]:
    """The work objects of a ``work`` or ``work-list`` response."""
    obj = load_json(NAME, data)
    status = obj.get("status") if isinstance(obj, dict) else None
    if status != "ok" or not isinstance(obj.get("message"), dict):
        raise SourceResponseError(NAME, f"not a Crossref work or work list (status {status!r})")
    message = obj["message"]
    if obj.get("message-type") == "work-list" or isinstance(message.get("items"), list):
        return [w for w in message.get("items") or [] if isinstance(w, dict)]
    return [message]


def parse_works(data: bytes) -> list[Record]:
    """The works of a Crossref response as records."""
    return [r for r in (parse_work(w) for w in _works(data)) if r is not None]


def parse_notices(data: bytes) -> list[Notice]:
    """The notices registered against the work(s) of a response (``updated-by`` and ``relation``)."""
    return merge_notices(*(work_notices(w) for w in _works(data)))


def notice_kind(update_type: str) -> NoticeKind:
    """A Crossref update type as a notice kind: ``expression-of-concern`` → ``expression_of_concern``."""
    return _KINDS.get(clean(update_type).lower().replace("-", "_").replace(" ", "_"), "other")


def _date(value: object) -> str | None:
    """``{"date-parts": [[2015, 5, 4]]}`` → ``2015-05-04`` (as much of it as is given)."""
    parts = value.get("date-parts") if isinstance(value, dict) else None
    first = parts[0] if isinstance(parts, list) and parts and isinstance(parts[0], list) else []
    numbers = [p for p in first if isinstance(p, int)]
    if not numbers:
        return None
    return "-".join([f"{numbers[0]:04d}", *(f"{n:02d}" for n in numbers[1:3])])


def work_notices(w: dict[str, Any]) -> list[Notice]:
    """The notices of one work: its ``updated-by`` entries, then notice relations (``is-retracted-by`` …)."""
    notices = []
    for update in w.get("updated-by") or []:
        if isinstance(update, dict):
            kind = notice_kind(str(update.get("type") or ""))
            label = clean(update.get("label")) or _LABELS.get(kind, clean(update.get("type")))
            date = _date(update.get("updated"))
            notices.append(Notice(kind=kind, label=label, doi=bare_doi(update.get("DOI")), date=date, source=NAME))
    relations = w.get("relation")
    for name, targets in relations.items() if isinstance(relations, dict) else ():
        relation_kind = next((k for word, k in _RELATION_WORDS if word in name), None)
        if relation_kind is None or name.endswith(
            "-of"
        ):  # `is-correction-of`: this work is the notice, not its subject
            continue
        for target in targets if isinstance(targets, list) else []:
            doi = bare_doi(target.get("id")) if isinstance(target, dict) and target.get("id-type") == "doi" else None
            notices.append(Notice(kind=relation_kind, label=_LABELS[relation_kind], doi=doi, source=NAME))
    return merge_notices(notices)


def parse_work(w: dict[str, Any]) -> Record | None:
    """One work as a record (None without a DOI)."""
    doi = bare_doi(w.get("DOI"))
    if not doi:
        return None
    notices = work_notices(w)
    # A work that updates others is itself a notice: its update types join its types ("retraction").
    updates = [notice_kind(str(u.get("type") or "")) for u in w.get("update-to") or [] if isinstance(u, dict)]
    pub_types = [clean(t) for t in (w.get("type"), w.get("subtype"), *updates) if isinstance(t, str) and t]
    return Record(
        source=NAME,
        key=f"{NAME}:{doi}",
        title=plain_text(_first(w.get("title"))),
        abstract=markup_sections(w.get("abstract")),
        authors=_authors(w),
        year=_year(w),
        journal=plain_text(_first(w.get("container-title"))) or None,
        doi=doi,
        pub_types=list(dict.fromkeys(pub_types)),
        cited_by=as_int(w.get("is-referenced-by-count")),
        retracted=any(n.retracts for n in notices),
        notices=notices,
    )


def _first(value: object) -> str:
    """Crossref gives titles as lists; the first one."""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


def _authors(w: dict[str, Any]) -> list[str]:
    names = []
    for a in w.get("author") or []:
        if isinstance(a, dict):
            name = clean(f"{a.get('given') or ''} {a.get('family') or ''}") or clean(a.get("name"))
            if name:
                names.append(name)
    return names


def _year(w: dict[str, Any]) -> int | None:
    for field in ("published", "issued", "published-print", "published-online"):
        date = _date(w.get(field))
        if date:
            return int(date[:4])
    return None


class Crossref(Service):
    """Crossref DOI lookup and notices (not a search service)."""

    name = NAME

    def lookup(self, ids: Sequence[str]) -> list[Record]:
        records = []
        for doi in dict.fromkeys(d for d in (bare_doi(v) for v in split_ids(ids, "doi")) if d):
            body = self._work(doi)
            records += parse_works(body) if body else []
        return records

    def notices(self, doi: str) -> list[Notice]:
        """The retraction, withdrawal, expression-of-concern and correction notices registered against
        ``doi`` (none when Crossref does not know the DOI)."""
        bare = bare_doi(doi)
        body = self._work(bare) if bare else None
        return parse_notices(body) if body else []

    def _work(self, doi: str) -> bytes | None:
        params = {"mailto": self.settings.email} if self.settings.email else {}
        return self.fetch.get(f"{self.base}/works/{quote(doi, safe='')}", params, missing_ok=True)

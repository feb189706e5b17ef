"""Metadata a user already has for their PDFs (a BibTeX file, CSL-JSON, a Zotero library), which wins over
what a PDF reader guesses.

Read the records with :func:`read_bibtex`, :func:`read_csl_json`, :func:`zotero_library` (or
:func:`read_sidecar`, which picks by path), find each paper's record with :func:`match` (DOI, then file,
then normalised title) and merge it with :func:`apply`. A malformed entry is skipped with a logged
warning; a file that cannot be used at all raises an :class:`~rag.errors.InputError` naming it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rag.errors import CorruptFileError, EmptyInputError, InputError, RecordError, TextEncodingError
from rag.types import Paper

log = logging.getLogger(__name__)


class SidecarRecord(BaseModel):
    """One paper's metadata as the user keeps it."""

    title: str = Field("", description="Title, plain Unicode (LaTeX and braces removed); may be empty.")
    authors: list[str] = Field(default_factory=list, description="Author names as `First Last`, in order.")
    year: int | None = Field(None, description="Publication year when known.")
    doi: str | None = Field(None, description="DOI without any `https://doi.org/` prefix.")
    files: list[Path] = Field(default_factory=list, description="The PDFs (or other files) the record points at.")
    source: str = Field(description="Where the record came from: `library.bib:12`, `refs.json#3`, `zotero:ITEMKEY`.")


_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_DOI_PREFIX = re.compile(r"^\s*(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_DOI_IN_URL = re.compile(r"^https?://(?:dx\.)?doi\.org/(10\.\S+)$", re.IGNORECASE)
_DOI_LINE = re.compile(r"^\s*DOI:\s*(10\.\S+)", re.IGNORECASE | re.MULTILINE)


def _doi(doi: object, url: object = None) -> str | None:
    """A DOI without `https://doi.org/` or `doi:` and LaTeX escapes, else one from a doi.org URL; None if none."""
    cleaned = re.sub(r"\\([_%&#])", r"\1", _DOI_PREFIX.sub("", str(doi or "")))
    cleaned = cleaned.replace("{", "").replace("}", "").strip()
    in_url = _DOI_IN_URL.match(str(url or "").strip())
    return cleaned or (in_url.group(1) if in_url else None)


def normalize_doi(doi: str | None) -> str | None:
    """A DOI in the form used for comparison: prefix stripped, case folded; None when empty."""
    cleaned = _doi(doi)
    return cleaned.casefold() if cleaned else None


def normalize_title(title: str) -> str:
    """A title in the form used for comparison: case folded, punctuation and white space collapsed."""
    text = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def _year(value: object) -> int | None:
    found = _YEAR.search(str(value)) if value is not None else None
    return int(found.group(1)) if found else None


def _read_text(path: Path, what: str) -> str:
    """The file's text; a missing, unreadable, undecodable or blank file raises a typed error naming it."""
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(path, f"cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TextEncodingError(path, f"not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8") from exc
    if not text.strip():
        raise EmptyInputError(path, f"empty {what} file")
    return text


_ACCENT_MARKS = {
    '"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304", ".": "\u0307",
    "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328", "r": "\u030a", "d": "\u0323",
    "b": "\u0331",
}  # fmt: skip
_BASE = r"\\[ij](?![A-Za-z])|[A-Za-z]"
_ACCENT = re.compile(rf"""\\(?:([`'^"~=.])|([uvHckrdb])(?![A-Za-z]))\s*(?:\{{\s*({_BASE})\s*\}}|({_BASE}))""")
_SYMBOLS = {
    "ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å", "o": "ø", "O": "Ø",
    "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ", "textendash": "–", "textemdash": "—", "ldots": "…",
}  # fmt: skip
_SYMBOL = re.compile(r"\\(" + "|".join(sorted(_SYMBOLS, key=len, reverse=True)) + r")(?![A-Za-z])(?:\{\})?")


def _accent(m: re.Match[str]) -> str:
    base = m.group(3) or m.group(4)
    base = base[1] if base.startswith("\\") else base
    return unicodedata.normalize("NFC", base + _ACCENT_MARKS[m.group(1) or m.group(2)])


def latex_to_text(value: str) -> str:
    """BibTeX field text as plain Unicode: accents (`{\\"u}`, `\\'e`) composed, commands and braces dropped."""
    text = _ACCENT.sub(_accent, value)
    text = _SYMBOL.sub(lambda m: _SYMBOLS[m.group(1)], text)
    text = re.sub(r"\\\\|\\[ ,;:!]", " ", text)
    text = re.sub(r"\\[A-Za-z]+\*?(?=\s*\{(?!\}))", "", text)  # \emph{x} -> {x}
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)  # \LaTeX -> LaTeX
    text = re.sub(r"(?<!\\)[{}$]", "", text).replace("---", "—").replace("--", "–")
    text = re.sub(r"(?<!\\)~", " ", text)
    text = re.sub(r"\\([&%$#_{}~])", r"\1", text)
    return " ".join(text.split())


_ENTRY_START = re.compile(r"@\s*([A-Za-z][\w-]*)\s*([{(])")
_NEXT_ENTRY = re.compile(r"\n[ \t]*@\s*[A-Za-z][\w-]*\s*[{(]")
_FIELD_NAME = re.compile(r"([A-Za-z][\w:.+/-]*)\s*=\s*")
_BARE = re.compile(r"[^\s,#{}\"=()]+")
_MONTHS = {m: str(i) for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


class _Malformed(ValueError):
    """An entry we cannot read; it is skipped with a warning."""


def _closing(text: str, start: int, stop: int, close: str) -> int | None:
    """Index of the ``close`` (`}`, `)` or `"`) outside braces that ends what opened before ``start``."""
    depth, i = 0, start
    while i < stop:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if depth == 0 and ch == close:
            return i
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return None
            depth -= 1
        i += 1
    return None


def _raw_entries(text: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, entry type, body) for every ``@type{...}``; body None for an unbalanced entry."""
    pos, line, counted = 0, 1, 0
    while found := _ENTRY_START.search(text, pos):
        line += text.count("\n", counted, found.start())
        counted = found.start()
        nxt = _NEXT_ENTRY.search(text, found.end())
        stop = nxt.start() + 1 if nxt else len(text)
        end = _closing(text, found.end(), stop, "}" if found.group(2) == "{" else ")")
        if end is None:  # resynchronise at the next entry rather than swallowing the rest of the file
            yield line, found.group(1).lower(), None
            pos = stop
        else:
            yield line, found.group(1).lower(), text[found.end() : end]
            pos = end + 1


def _skip(s: str, pos: int, also: str = "") -> int:
    while pos < len(s) and (s[pos].isspace() or s[pos] in also):
        pos += 1
    return pos


def _value(s: str, pos: int, macros: dict[str, str]) -> tuple[str, int]:
    """One field value (`{...}`, `"..."` or a number/macro, parts joined by ``#``), and the index after it."""
    parts: list[str] = []
    while True:
        pos = _skip(s, pos)
        if pos < len(s) and s[pos] in '{"':
            end = _closing(s, pos + 1, len(s), "}" if s[pos] == "{" else '"')
            if end is None:
                raise _Malformed("a value is not closed")
            part, pos = s[pos + 1 : end], end + 1
        elif bare := _BARE.match(s, pos):
            part, pos = macros.get(bare.group().lower(), bare.group()), bare.end()
        else:
            raise _Malformed("a field has no value")
        parts.append(part)
        pos = _skip(s, pos)
        if pos >= len(s) or s[pos] != "#":
            return "".join(parts), pos
        pos += 1


def _fields(s: str, macros: dict[str, str]) -> dict[str, str]:
    """``name = value, ...`` as a dict (names lower-cased; the first of duplicate fields wins)."""
    fields: dict[str, str] = {}
    pos = 0
    while True:
        pos = _skip(s, pos, ",")
        if pos >= len(s):
            return fields
        name = _FIELD_NAME.match(s, pos)
        if not name:
            raise _Malformed(f"expected `field = value` at {s[pos : pos + 20].strip()!r}")
        value, pos = _value(s, name.end(), macros)
        fields.setdefault(name.group(1).lower(), value)
        if pos < len(s) and s[pos] != ",":
            raise _Malformed(f"missing comma after field {name.group(1)!r}")


def _split_top(text: str, sep: re.Pattern[str]) -> list[str]:
    """``text`` split on ``sep`` where it is outside braces."""
    out, depth, last = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "{") - (ch == "}")
        if depth == 0 and i >= last and (hit := sep.match(text, i)):
            out.append(text[last:i])
            last = hit.end()
    out.append(text[last:])
    return [part.strip() for part in out]


_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_COMMA = re.compile(r",")


def bibtex_names(value: str) -> list[str]:
    """A BibTeX name list (`A and B`, each `Last, First`, `Last, Jr, First` or `First Last`) as `First Last`."""
    names = []
    for raw in _split_top(" " + value.strip() + " ", _AND):
        parts = [p for p in _split_top(raw, _COMMA) if p]
        if not parts or raw.lower() == "others":
            continue
        ordered = [parts[-1], parts[0], *parts[1:-1]] if len(parts) > 1 else parts
        name = latex_to_text(" ".join(ordered))
        if name:
            names.append(name)
    return names


def _bib_files(value: str, base: Path) -> list[Path]:
    """Paths in a JabRef/Zotero/Mendeley `file` field (`desc:path:type;...` or plain paths)."""
    files = []
    for item in re.split(r"(?<!\\);", value):
        parts = re.split(r"(?<!\\):", item.strip())
        if len(parts) >= 3:
            raw = ":".join(parts[1:-1])
        elif len(parts) == 2 and len(parts[0]) != 1:  # `desc:path`, not a drive letter `C:/...`
            raw = parts[1]
        else:
            raw = ":".join(parts)
        raw = re.sub(r"\\([:;\\])", r"\1", raw).strip()
        if raw:
            path = Path(os.path.expanduser(raw))  # unlike Path.expanduser, never raises
            files.append(path if path.is_absolute() else base / path)
    return files


def _bib_record(fields: dict[str, str], path: Path, line: int) -> SidecarRecord:
    files = [f for name in ("file", "pdf") if name in fields for f in _bib_files(fields[name], path.parent)]
    return SidecarRecord(
        title=latex_to_text(fields.get("title", "")),
        authors=bibtex_names(fields.get("author", "")),
        year=_year(fields.get("year") or fields.get("date")),
        doi=_doi(fields.get("doi"), fields.get("url")),
        files=files,
        source=f"{path.name}:{line}",
    )


def read_bibtex(path: str | Path) -> list[SidecarRecord]:
    """The entries of a `.bib` file. `@string` macros are expanded; `@comment`, `@preamble` ignored.

    A malformed entry is skipped with a warning; a file with no readable entry raises
    :class:`~rag.errors.RecordError`, a missing or unreadable one :class:`~rag.errors.InputError`.
    """
    path = Path(path)
    text = _read_text(path, "BibTeX")
    macros = dict(_MONTHS)
    records: list[SidecarRecord] = []
    for line, kind, body in _raw_entries(text):
        if kind in ("comment", "preamble"):
            continue
        try:
            if body is None:
                raise _Malformed("unbalanced braces")
            if kind == "string":
                macros.update(_fields(body, macros))
                continue
            key, _, rest = body.partition(",")
            if not key.strip() or re.search(r"[\s={}\"]", key.strip()):
                raise _Malformed("no citation key")
            records.append(_bib_record(_fields(rest, macros), path, line))
        except _Malformed as exc:
            log.warning("%s:%d: skipped a malformed BibTeX entry: %s", path, line, exc)
    if not records:
        raise RecordError(path, "no BibTeX entry could be read")
    return records


def _csl_name(person: Any) -> str:
    if not isinstance(person, dict):
        return str(person).strip() if isinstance(person, str) else ""
    if person.get("literal"):
        return str(person["literal"]).strip()
    keys = ("given", "dropping-particle", "non-dropping-particle", "family", "suffix")
    return " ".join(str(person[k]).strip() for k in keys if person.get(k))


def _csl_year(issued: Any) -> int | None:
    if not isinstance(issued, dict):
        return None
    parts = issued.get("date-parts")
    first = parts[0][0] if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0] else None
    return _year(first) or _year(issued.get("raw") or issued.get("literal"))


def _csl_record(item: Any, path: Path, number: int) -> SidecarRecord:
    if not isinstance(item, dict):
        raise _Malformed("an item is not a JSON object")
    title, authors = item.get("title") or "", item.get("author") or []
    if not isinstance(title, str) or not isinstance(authors, list):
        raise _Malformed("`title` is not a string or `author` not a list")
    url = str(item.get("URL") or "").strip()
    return SidecarRecord(
        title=" ".join(re.sub(r"</?[a-z]+[^>]*>", "", title).split()),  # CSL rich text: <i>, <sup>, ...
        authors=[name for name in map(_csl_name, authors) if name],
        year=_csl_year(item.get("issued")),
        doi=_doi(item.get("DOI"), url),
        files=[Path(url.removeprefix("file://"))] if url.startswith("file://") else [],
        source=f"{path.name}#{number}",
    )


def read_csl_json(path: str | Path) -> list[SidecarRecord]:
    """The items of a CSL-JSON file (a list of items, as Zotero and Pandoc write it).

    A malformed item is skipped with a warning; invalid JSON, a non-list or a list with no usable item
    raises :class:`~rag.errors.RecordError`.
    """
    path = Path(path)
    text = _read_text(path, "CSL-JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(path, f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, list):
        raise RecordError(path, "expected a CSL-JSON list of items")
    records = []
    for number, item in enumerate(data, 1):
        try:
            records.append(_csl_record(item, path, number))
        except _Malformed as exc:
            log.warning("%s#%d: skipped a malformed CSL-JSON item: %s", path, number, exc)
    if not records:
        raise RecordError(path, "no CSL-JSON item could be read")
    return records


_Z_ITEMS = """SELECT i.itemID, i.key FROM items i JOIN itemTypes t ON t.itemTypeID = i.itemTypeID
WHERE t.typeName NOT IN ('attachment', 'note', 'annotation')
AND i.itemID NOT IN (SELECT itemID FROM deletedItems) ORDER BY i.itemID"""
_Z_FIELDS = """SELECT d.itemID, f.fieldName, v.value FROM itemData d JOIN fields f ON f.fieldID = d.fieldID
JOIN itemDataValues v ON v.valueID = d.valueID WHERE f.fieldName IN ('title', 'DOI', 'date', 'extra')"""
_Z_CREATORS = """SELECT ic.itemID, c.firstName, c.lastName FROM itemCreators ic
JOIN creators c ON c.creatorID = ic.creatorID ORDER BY ic.itemID, ic.orderIndex"""
_Z_FILES = """SELECT a.parentItemID, a.path, i.key FROM itemAttachments a JOIN items i ON i.itemID = a.itemID
WHERE a.contentType = 'application/pdf' AND a.parentItemID IS NOT NULL AND a.path IS NOT NULL
AND a.itemID NOT IN (SELECT itemID FROM deletedItems) ORDER BY a.itemID"""


def _zotero_path(folder: Path, key: str, raw: str) -> Path:
    """An attachment path: `storage:x.pdf` lives in `storage/<key>/`; linked files keep their own path."""
    if raw.startswith("storage:"):
        return folder / "storage" / key / raw.removeprefix("storage:")
    # `attachments:` paths are relative to a base folder kept in Zotero's preferences: only the name can match
    return Path(raw.removeprefix("attachments:"))


def _zotero_records(conn: sqlite3.Connection, folder: Path) -> list[SidecarRecord]:
    fields: dict[int, dict[str, str]] = {}
    for item_id, name, value in conn.execute(_Z_FIELDS):
        fields.setdefault(item_id, {})[name] = str(value)
    creators: dict[int, list[str]] = {}
    for item_id, first, last in conn.execute(_Z_CREATORS):
        name = " ".join(p.strip() for p in (first, last) if p and p.strip())
        if name:
            creators.setdefault(item_id, []).append(name)
    files: dict[int, list[Path]] = {}
    for parent, raw, key in conn.execute(_Z_FILES):
        files.setdefault(parent, []).append(_zotero_path(folder, key, str(raw)))
    records = []
    for item_id, key in conn.execute(_Z_ITEMS).fetchall():
        data = fields.get(item_id, {})
        extra = _DOI_LINE.search(data.get("extra", ""))
        records.append(
            SidecarRecord(
                title=" ".join(data.get("title", "").split()),
                authors=creators.get(item_id, []),
                year=_year(data.get("date")),
                doi=_doi(data.get("DOI")) or (extra.group(1) if extra else None),
                files=files.get(item_id, []),
                source=f"zotero:{key}",
            )
        )
    return records


def zotero_library(folder: str | Path) -> list[SidecarRecord]:
    """The regular items of a Zotero data folder (the one holding `zotero.sqlite` and `storage/`).

    The database is never opened in place (Zotero locks it while running): it and its `-wal` file are
    copied to a temporary folder and the copy is opened read-only.
    """
    folder = Path(folder)
    db = folder / "zotero.sqlite"
    if not db.is_file():
        raise InputError(
            folder, "no such folder" if not folder.exists() else "no zotero.sqlite: not a Zotero data folder"
        )
    with tempfile.TemporaryDirectory(prefix="rag-zotero-", ignore_cleanup_errors=True) as tmp:
        copy = Path(tmp) / db.name
        try:
            shutil.copyfile(db, copy)
            wal = db.with_name(db.name + "-wal")
            if wal.is_file():
                shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        except OSError as exc:
            raise InputError(db, f"cannot be copied (locked or unreadable?): {exc.strerror or exc}") from exc
        try:
            with contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as conn:
                return _zotero_records(conn, folder)
        except sqlite3.DatabaseError as exc:
            raise _sqlite_error(db, exc) from exc


def _sqlite_error(db: Path, exc: sqlite3.DatabaseError) -> InputError:
    message = str(exc)
    if "locked" in message or "busy" in message:
        return InputError(db, f"the database is locked ({message}); close Zotero and try again")
    if "no such table" in message or "no such column" in message:
        return InputError(db, f"not a Zotero database ({message})")
    return CorruptFileError(db, f"corrupt, or not an SQLite database ({message})")


def read_sidecar(path: str | Path) -> list[SidecarRecord]:
    """Records from a `.bib` file, a CSL-JSON `.json` file, or a Zotero folder (or its `zotero.sqlite`)."""
    path = Path(path)
    if path.is_dir() or path.name == "zotero.sqlite":
        return zotero_library(path if path.is_dir() else path.parent)
    suffix = path.suffix.lower()
    if suffix == ".bib":
        return read_bibtex(path)
    if suffix == ".json":
        return read_csl_json(path)
    if not path.exists():
        raise InputError(path, "no such file")
    raise InputError(path, "not a metadata file: expected .bib, CSL-JSON .json or a Zotero folder")


def match(paper: Paper, records: Sequence[SidecarRecord]) -> SidecarRecord | None:
    """The record for ``paper``: same DOI (case-insensitive), else same file (the same resolved path, else
    the only record with a file of that name), else the same normalised title. None when nothing matches."""
    doi = normalize_doi(paper.doi)
    if doi:
        for record in records:
            if normalize_doi(record.doi) == doi:
                return record
    paths = [Path(paper.source)] if paper.source else []
    if (line := re.fullmatch(r"(.+):\d+", paper.source)) and not paths[0].exists():  # `path:line` of a record
        paths.append(Path(line.group(1)))
    wanted = {p.resolve() for p in paths}
    for record in records:
        if any(f.resolve() in wanted for f in record.files):
            return record
    names = {p.name for p in paths if p.name}
    by_name = [r for r in records if any(f.name in names for f in r.files)]
    if len(by_name) == 1:  # `Full Text.pdf` in many Zotero folders: a shared name proves nothing
        return by_name[0]
    title = normalize_title(paper.title)
    if title:
        for record in records:
            if normalize_title(record.title) == title:
                return record
    return None


def apply(paper: Paper, record: SidecarRecord) -> Paper:
    """A copy of ``paper`` with title, authors, year and DOI from ``record`` where it has them, and
    ``meta["metadata_from"]`` naming the record."""
    taken = {"title": record.title, "authors": list(record.authors), "year": record.year, "doi": record.doi}
    update: dict[str, Any] = {name: value for name, value in taken.items() if value not in (None, "", [])}
    update["meta"] = {**paper.meta, "metadata_from": record.source}
    return paper.model_copy(deep=True, update=update)

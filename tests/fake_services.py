"""A real HTTP server on 127.0.0.1 that answers like the literature services, from real recorded responses.

The recordings live outside the repo, in ``shared/data/api`` beside it (or ``$RAG_DATA_DIR/api``); their
``INDEX.json`` gives, per file, the api, the original request (method + URL), the status and content type.
:class:`FakeServices` serves each api under a path prefix of its name: ``/pubmed/esearch.fcgi?…`` answers
what ``https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi?…`` answered; ``base_urls`` and
``settings()`` point :class:`rag.settings.FindSettings` at it.

**Matching rule.** A request is answered by the recording with

1. the same method (and, for a recorded POST, the same JSON body);
2. the same path, both URL-decoded (``/works/https://doi.org/10.1073%2Fpnas.1414271111`` is
   ``/works/https://doi.org/10.1073/pnas.1414271111``), trailing ``/`` ignored;
3. the same *identifying* query parameters, values URL-decoded and compared exactly. Not identifying:
   parameters with an empty value (``sort=``, ``id_list=``); who-is-asking parameters (``email``,
   ``mailto``, ``tool``, ``api_key``); order and paging (``sort``, ``sortBy``, ``sortOrder``, ``cursorMark``,
   ``start``, ``offset``) and page sizes (``retmax``, ``max_results``, ``pageSize``, ``rows``, ``per_page``,
   ``limit``: a page size asks for *up to* N, so a recording of 10–25 results answers any page size);
   Europe PMC's ``synonym``; ``retmode``/``rettype`` for PubMed ``efetch``; and a parameter at the
   service's default (``retstart=0``, ``retmode=xml``). ``format`` *is* identifying (Europe PMC answers
   XML or JSON by it), so ``format=json`` matches only a recording that asked for JSON.

PubMed ``efetch.fcgi?db=pubmed&id=a,b,c`` with no exact recording is answered with the recorded
``<PubmedArticle>`` elements of those ids, from every efetch recording, in the order asked, inside the
recorded ``<PubmedArticleSet>`` envelope; ids no recording holds are left out, as NCBI does. So any subset
of the recorded PMIDs can be fetched. A request nothing matches gets a 404 whose text body names the
nearest recorded URLs.

Faults for error paths, checked before the recordings (the first matching path prefix wins):
``fail(prefix, [429, 500], retry_after="1")`` queues statuses answered before the real one,
``delay(prefix, seconds)`` holds every answer back (to provoke client timeouts), ``override(prefix, body)``
answers with a given body. ``requests`` logs every request served as ``Served(at, method, path, query)``.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from rag.find.base import SOURCES
from tests.conftest import shared

BASES = {
    "pubmed": "https://eutils.ncbi.nlm.nih.gov/entrez/eutils",
    "europepmc": "https://www.ebi.ac.uk/europepmc/webservices/rest",
    "openalex": "https://api.openalex.org",
    "arxiv": "https://export.arxiv.org/api",
    "crossref": "https://api.crossref.org",
    "semanticscholar": "https://api.semanticscholar.org",
    "unpaywall": "https://api.unpaywall.org",
}
"""Each recorded api's real base URL; the fake serves it under ``/<api>``."""

_WHO = {"email", "mailto", "tool", "api_key"}
_PAGING = {"sort", "sortby", "sortorder", "cursormark", "start", "offset"}
_PAGE_SIZE = {"retmax", "max_results", "pagesize", "rows", "per_page", "limit"}
_IGNORED = _WHO | _PAGING | _PAGE_SIZE | {"synonym"}  # compared lower-cased: services differ in case
_EFETCH_IGNORED = {"retmode", "rettype"}  # the recordings are XML; the connector's choice of view must not matter
_DEFAULTS = {"retstart": "0", "retmode": "xml"}  # what the service assumes when the parameter is absent
_POLL = 0.02  # seconds between the server loop's shutdown checks: closing a fake should not cost half a second
_FAST_RATE = 1000.0  # requests/s: no test waits on a rate limit it is not about

_ARTICLE = re.compile(r"<PubmedArticle\b.*?</PubmedArticle>", re.S)
_PMID = re.compile(r"<PMID[^>]*>\s*(\d+)\s*</PMID>")  # an article's first PMID is its own (later ones cite)


def api_dir() -> Path:
    """The recorded responses, ``$RAG_DATA_DIR/api`` or ``../shared/data/api`` beside the repo; skips if absent."""
    return shared("api", "INDEX.json").parent


class Served(NamedTuple):
    """One request the fake answered: when it arrived (``time.monotonic()``), method, decoded path, query."""

    at: float
    method: str
    path: str
    query: dict[str, str]


@dataclass
class Recording:
    api: str
    file: str
    method: str
    url: str
    path: str  # decoded, with the api prefix: /pubmed/esearch.fcgi
    query: dict[str, str]  # identifying parameters only
    status: int
    content_type: str | None
    body: bytes
    post_body: Any = None


@dataclass
class _Fault:
    status: int
    retry_after: str | None


@dataclass
class _Canned:
    status: int
    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)


def _path(raw: str) -> str:
    decoded = unquote(raw)
    return decoded.rstrip("/") or "/"


def identifying(path: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The query parameters that decide the answer (see the module docstring)."""
    ignored = _IGNORED | (_EFETCH_IGNORED if path.endswith("/efetch.fcgi") else set())
    out = {}
    for key, value in pairs:
        low = key.lower()
        if value == "" or low in ignored or _DEFAULTS.get(low) == value:
            continue
        out[key] = value
    return out


def load_recordings(folder: Path) -> list[Recording]:
    index = json.loads((folder / "INDEX.json").read_text(encoding="utf-8"))
    out = []
    for item in index["files"]:
        api, url = item["api"], item["request"]["url"]
        base = BASES.get(api)
        if base is None or not url.startswith(base):
            continue
        parts = urlsplit(url[len(base) :])
        path = _path(f"/{api}{parts.path}")
        post = item["request"].get("body")
        out.append(
            Recording(
                api=api,
                file=item["file"],
                method=item["request"]["method"].upper(),
                url=url,
                path=path,
                query=identifying(path, parse_qsl(parts.query, keep_blank_values=True)),
                status=int(item["status"]),
                content_type=item.get("content_type"),
                body=(folder / item["file"]).read_bytes(),
                post_body=json.loads(post) if post else None,
            )
        )
    return out


class _Efetch:
    """Every recorded PubMed article by PMID, to answer efetch for any subset of them."""

    def __init__(self, recordings: list[Recording]) -> None:
        self.articles: dict[str, tuple[str, Recording]] = {}
        self.first: Recording | None = None
        for rec in recordings:
            if rec.api != "pubmed" or not rec.path.endswith("/efetch.fcgi") or rec.status != 200:
                continue
            self.first = self.first or rec
            for match in _ARTICLE.finditer(rec.body.decode("utf-8")):
                pmid = _PMID.search(match.group(0))
                if pmid:
                    self.articles.setdefault(pmid.group(1), (match.group(0), rec))

    def answer(self, ids: list[str]) -> _Canned | None:
        if self.first is None:
            return None
        found = [self.articles[i] for i in dict.fromkeys(ids) if i in self.articles]
        rec = found[0][1] if found else self.first
        text = rec.body.decode("utf-8")
        spans = [m.span() for m in _ARTICLE.finditer(text)]
        head, tail = text[: spans[0][0]], text[spans[-1][1] :]
        body = head + "\n".join(article for article, _ in found) + tail
        return _Canned(200, body.encode("utf-8"), rec.content_type)


class FakeServices:
    """The literature services, replayed from recordings on 127.0.0.1 (a context manager)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or api_dir()
        self.recordings = load_recordings(self.folder)
        self.requests: list[Served] = []
        self._efetch = _Efetch(self.recordings)
        self._faults: list[tuple[str, deque[_Fault]]] = []
        self._delays: dict[str, float] = {}
        self._overrides: dict[str, _Canned] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(_POLL,), name="fake-services", daemon=True
        )

    # -- setup -----------------------------------------------------------------------------------------

    @property
    def base_urls(self) -> dict[str, str]:
        return {api: f"http://127.0.0.1:{self.port}/{api}" for api in BASES}

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``FindSettings``: every service's URL on this server, and fast rates."""
        values: dict[str, Any] = {}
        for source in SOURCES:
            values[f"{source}_url"] = self.base_urls[source]
            values[f"{source}_rate"] = _FAST_RATE
        values.update(overrides)
        return values

    def recording(self, file: str) -> bytes:
        """The bytes of a recording, by its INDEX.json name (``pubmed/esearch_pubmed_biopython.xml``)."""
        return (self.folder / file).read_bytes()

    def fail(self, path_prefix: str, statuses: list[int], retry_after: str | None = None) -> None:
        """Answer the next ``len(statuses)`` requests under ``path_prefix`` with these statuses, in order."""
        with self._lock:
            self._faults.append((path_prefix, deque(_Fault(s, retry_after) for s in statuses)))

    def delay(self, path_prefix: str, seconds: float) -> None:
        """Hold back every answer under ``path_prefix`` by ``seconds``."""
        with self._lock:
            self._delays[path_prefix] = seconds

    def override(
        self, path_prefix: str, body: bytes, status: int = 200, content_type: str | None = "application/json"
    ) -> None:
        """Answer every request under ``path_prefix`` with ``body`` instead of the recordings."""
        with self._lock:
            self._overrides[path_prefix] = _Canned(status, body, content_type)

    def reset(self) -> None:
        """Forget faults, delays, overrides and the request log."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._overrides.clear()
            self.requests.clear()

    def served(self, path_prefix: str = "/") -> list[Served]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- answering -------------------------------------------------------------------------------------

    def _log(self, method: str, path: str, query: dict[str, str]) -> float:
        with self._lock:
            self.requests.append(Served(time.monotonic(), method, path, query))
            return next((s for p, s in self._delays.items() if path.startswith(p)), 0.0)

    def _fault(self, path: str) -> _Canned | None:
        with self._lock:
            for prefix, queue in self._faults:
                if queue and path.startswith(prefix):
                    fault = queue.popleft()
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                    text = f"scripted fault: HTTP {fault.status}".encode()
                    return _Canned(fault.status, text, "text/plain", headers)
            return next((c for p, c in self._overrides.items() if path.startswith(p)), None)

    def answer(self, method: str, raw_target: str, post_body: bytes = b"") -> _Canned:
        """What the fake answers to ``method raw_target`` (faults first, then the recordings)."""
        parts = urlsplit(raw_target)
        path = _path(parts.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        delay = self._log(method, path, dict(pairs))
        if delay:
            self._closing.wait(delay)  # wakes early when the server closes, so shutdown never hangs
        canned = self._fault(path)
        if canned is not None:
            return canned
        query = identifying(path, pairs)
        for rec in self.recordings:
            if rec.method == method and rec.path == path and rec.query == query and self._same_body(rec, post_body):
                return _Canned(rec.status, rec.body, rec.content_type)
        if path == "/pubmed/efetch.fcgi" and query.get("db", "pubmed") == "pubmed" and "id" in query:
            union = self._efetch.answer([i.strip() for i in query["id"].split(",") if i.strip()])
            if union is not None:
                return union
        return _Canned(404, self._nearest(method, raw_target), "text/plain; charset=utf-8")

    @staticmethod
    def _same_body(rec: Recording, post_body: bytes) -> bool:
        if rec.post_body is None:
            return True
        try:
            return bool(json.loads(post_body or b"null") == rec.post_body)
        except ValueError:
            return False

    def _nearest(self, method: str, raw_target: str) -> bytes:
        wanted = f"{method} {unquote(raw_target)}"
        known = {f"{r.method} {r.path}?{'&'.join(f'{k}={v}' for k, v in r.query.items())}": r for r in self.recordings}
        close = difflib.get_close_matches(wanted, list(known), n=3, cutoff=0.0)
        lines = [f"fake services: no recording for {wanted}", "nearest recorded requests:"]
        lines += [f"  {known[c].method} {known[c].url}  ({known[c].file})" for c in close]
        return ("\n".join(lines) + "\n").encode()

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> FakeServices:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()  # joins the handler threads (not daemons), so no socket outlives the test
        if self.thread.is_alive():
            self.thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # joined by server_close, so every connection is closed when the fake is
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind: expected, not worth a traceback.
        pass


def _handler(fake: FakeServices) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so no keep-alive connection holds a handler thread open.
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            posted = self.rfile.read(length) if length else b""
            canned = fake.answer(method, self.path, posted)
            try:
                self.send_response(canned.status)
                if canned.content_type:
                    self.send_header("Content-Type", canned.content_type)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

    return Handler

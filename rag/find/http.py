"""The one way literature connectors talk to their services: :class:`Fetcher`, a rate-limited,
retried, disk-cached HTTP GET.

* **Rate limit**: request *starts* to one service are kept at least ``1 / settings.rate(source)``
  seconds apart across every Fetcher and thread of the process (not across processes: two
  ``rag find`` commands at once each keep the limit on their own). Cache hits neither count nor wait.
* **Retries** go through :func:`rag.retry.retrying`, the project's one policy: timeouts, dropped
  connections and HTTP 429/500/502/503/504 are retried (honouring ``Retry-After`` on 429/503); a refused
  connection or a failed DNS look-up is not, so a machine without a network fails at once.
* **Cache**: 200 answers (and 404s asked for with ``missing_ok``) are kept under
  ``cache_dir/<source>/<key[:2]>/<key>.body`` with a JSON description beside them, for ``cache_days``.
  The key leaves out credentials and contact parameters, so changing an API key or e-mail keeps the
  cache, and no secret is ever written to disk.
"""

from __future__ import annotations

import email.utils
import hashlib
import importlib.metadata
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ValidationError

from rag.errors import SourceResponseError, SourceUnavailableError
from rag.find.base import Params
from rag.retry import retrying
from rag.settings import FindSettings

CREDENTIALS = frozenset({"api_key", "email", "mailto", "tool"})
"""Query parameters that say who asks, not what: kept out of cache keys, cache files and error messages."""

_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})  # overload and gateway trouble pass; other errors do not
_RETRY_AFTER_STATUSES = frozenset({429, 503})  # the two statuses whose Retry-After means "come back in N s"
_BODY_EXCERPT = 200  # characters of an error body quoted in the message: enough for a service's one-line reason
_SECONDS_PER_DAY = 86_400
_TAG = re.compile(r"<[^>]*>")


def _excerpt(response: httpx.Response) -> str:
    """The start of an error body; markup is dropped, since services put the reason in the text (arXiv's
    400 says ``incorrect id format for abc`` in an Atom entry)."""
    text = response.text
    if "xml" in response.headers.get("content-type", "") or "html" in response.headers.get("content-type", ""):
        text = _TAG.sub(" ", text)
    text = " ".join(text.split())
    return text[:_BODY_EXCERPT] or "(empty body)"


def _version() -> str:
    try:
        return importlib.metadata.version("rag")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0"


def user_agent(email_address: str | None) -> str:
    """``rag/<version> (mailto:<email>)``: NCBI, OpenAlex and Crossref ask clients to say who to contact."""
    return f"rag/{_version()} (mailto:{email_address})" if email_address else f"rag/{_version()}"


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` (seconds) is read by :mod:`rag.retry`."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _Transient)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (delay in seconds, or an HTTP date) as seconds from now; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _query(url: str, params: Params | None) -> tuple[str, list[tuple[str, str]]]:
    """The URL without its query, and every query parameter (the URL's and ``params``) but credentials, sorted."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    pairs += [(k, str(v)) for k, v in (params or {}).items()]
    kept = sorted((k, v) for k, v in pairs if k.lower() not in CREDENTIALS)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), kept


def safe_url(url: str, params: Params | None = None) -> str:
    """The full request URL with credentials and contact parameters left out (for messages and the cache)."""
    base, pairs = _query(url, params)
    return f"{base}?{urlencode(pairs)}" if pairs else base


class CacheEntry(BaseModel):
    """What is kept beside a cached body."""

    url: str
    status: int
    content_type: str | None = None
    fetched_at: float  # seconds since the epoch (wall clock: it must mean the same to the next process)
    missing: bool = False


@dataclass
class _Hit:
    entry: CacheEntry
    body: bytes


class ResponseCache:
    """Response bodies on disk, one folder per service, written atomically."""

    def __init__(self, root: Path, days: float) -> None:
        self.root = root
        self.max_age = days * _SECONDS_PER_DAY

    @staticmethod
    def key(url: str, params: Params | None) -> str:
        base, pairs = _query(url, params)
        return hashlib.sha256(f"GET\n{base}\n{urlencode(pairs)}".encode()).hexdigest()

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.body", folder / f"{key}.json"

    def read(self, key: str) -> _Hit | None:
        """The fresh entry for ``key``, or None (absent, expired, unreadable)."""
        body_path, meta_path = self._paths(key)
        try:
            entry = CacheEntry.model_validate_json(meta_path.read_bytes())
            if time.time() - entry.fetched_at >= self.max_age:
                return None
            body = b"" if entry.missing else body_path.read_bytes()
        except (OSError, ValidationError):
            return None
        return _Hit(entry, body)

    def write(self, key: str, entry: CacheEntry, body: bytes) -> None:
        """Keep ``body``; the description is written last, so a reader never sees it without its body."""
        body_path, meta_path = self._paths(key)
        try:
            body_path.parent.mkdir(parents=True, exist_ok=True)
            if not entry.missing:
                _write_atomic(body_path, body)
            _write_atomic(meta_path, entry.model_dump_json().encode())
        except OSError:
            pass  # the cache only saves requests: a full or read-only disk must not lose the answer in hand


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over, so readers see all or nothing."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Pace:
    """When the next request to one service may start. One per service in the process, shared by
    every Fetcher for it, so two searches at once (a server's users) still keep the service's limit."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_start = 0.0  # monotonic time before which the next request may not start


_PACES: dict[str, _Pace] = {}
_PACES_LOCK = threading.Lock()


def _pace_for(source: str, base_url: str) -> _Pace:
    with _PACES_LOCK:
        return _PACES.setdefault(f"{source}|{base_url}", _Pace())


class Fetcher:
    """GETs for one literature service (``source``: ``pubmed`` …), implementing :class:`rag.find.base.Fetch`.

    ``sent`` counts requests that went to the network (retries included), ``cached`` answers from disk.
    """

    def __init__(
        self, source: str, settings: FindSettings, cache_dir: Path | None, client: httpx.Client | None = None
    ) -> None:
        self.source = source
        self.settings = settings
        self.cache = ResponseCache(cache_dir / source, settings.cache_days) if settings.cache and cache_dir else None
        self._client = client or httpx.Client()
        self._owns_client = client is None
        self._headers = {"User-Agent": user_agent(settings.email)}
        self._interval = 1.0 / settings.rate(source)
        self._lock = threading.Lock()
        self._pace = _pace_for(source, settings.base_url(source))
        self.sent = 0
        self.cached = 0

    def get(self, url: str, params: Params | None = None, missing_ok: bool = False) -> bytes | None:
        """The body of a GET; None for a 404 when ``missing_ok``."""
        key = ResponseCache.key(url, params) if self.cache else ""
        hit = self.cache.read(key) if self.cache else None
        if hit is not None:
            with self._lock:
                self.cached += 1
            if not hit.entry.missing:
                return hit.body
            if missing_ok:
                return None
            raise SourceResponseError(self.source, f"HTTP 404 (cached) for {hit.entry.url}: not found")
        response = self._request(url, params)
        return self._answer(response, key, safe_url(url, params), missing_ok)

    def _answer(self, response: httpx.Response, key: str, shown: str, missing_ok: bool) -> bytes | None:
        status = response.status_code
        if status == 404 and missing_ok:
            self._keep(key, shown, response, missing=True)
            return None
        if status == 404:
            raise SourceResponseError(self.source, f"HTTP 404 for {shown}: not found")
        if not response.is_success:
            raise SourceResponseError(self.source, f"HTTP {status} for {shown}: {_excerpt(response)}")
        if status == 200:
            self._keep(key, shown, response, missing=False)
        return response.content

    def _keep(self, key: str, shown: str, response: httpx.Response, missing: bool) -> None:
        if self.cache is None:
            return
        entry = CacheEntry(
            url=shown,
            status=response.status_code,
            content_type=response.headers.get("content-type"),
            fetched_at=time.time(),
            missing=missing,
        )
        self.cache.write(key, entry, response.content)

    def _request(self, url: str, params: Params | None) -> httpx.Response:
        """One response, retried through the project's policy; transient failures become unavailability."""
        attempts = 0

        def once() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return self._attempt(url, params)

        policy: Callable[..., Any] = retrying(
            _is_transient, self.settings.max_retries, asynchronous=False, max_wait=self.settings.max_wait
        )
        try:
            response: httpx.Response = policy(once)
        except _Transient as exc:
            host = urlsplit(url).hostname or url
            raise SourceUnavailableError(
                self.source, f"{exc.detail} from {host} after {attempts} attempt(s); the service is busy or down"
            ) from exc
        return response

    def _attempt(self, url: str, params: Params | None) -> httpx.Response:
        """One request; raises :class:`_Transient` for what may pass, unavailability for what will not."""
        slot = self._wait_turn()
        host = urlsplit(url).hostname or url
        try:
            response = self._client.get(
                url,
                params=dict(params) if params else None,
                headers=self._headers,
                timeout=self.settings.timeout,
                follow_redirects=True,
            )
        except httpx.ConnectError as exc:  # refused, DNS, no route: retrying would only delay the same answer
            self._release(slot)  # nothing reached the service, so the next caller need not wait for it
            raise SourceUnavailableError(
                self.source,
                f"cannot reach {host} ({str(exc) or type(exc).__name__}): no network? "
                f"Check the connection, a proxy, or the {self.source}_url setting.",
            ) from exc
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__}, {self.settings.timeout:g} s)") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:  # a dropped connection mid-answer
            raise _Transient(f"connection failed ({str(exc) or type(exc).__name__})") from exc
        except httpx.HTTPError as exc:  # a bad URL, too many redirects …: the same request would fail again
            raise SourceUnavailableError(self.source, f"request to {host} failed: {exc}") from exc
        if response.status_code in _RETRIED_STATUSES:
            wait = None
            if response.status_code in _RETRY_AFTER_STATUSES:
                wait = retry_after_seconds(response.headers.get("retry-after"))
            raise _Transient(f"HTTP {response.status_code}", retry_after=wait)
        return response

    def _wait_turn(self) -> float:
        """Sleep until this request may start; each caller reserves its slot under the lock, then sleeps.
        Returns the slot's start time."""
        with self._pace.lock:
            now = time.monotonic()
            start = max(now, self._pace.next_start)
            self._pace.next_start = start + self._interval
        with self._lock:
            self.sent += 1
        if start > now:
            time.sleep(start - now)
        return start

    def _release(self, start: float) -> None:
        """Give back the slot starting at ``start`` when no later caller has reserved one since."""
        with self._pace.lock:
            if self._pace.next_start == start + self._interval:
                self._pace.next_start = start

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

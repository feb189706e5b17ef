"""rag.find.http.Fetcher against a real HTTP server replaying recorded service responses (tests/fake_services.py):
rate limits, the on-disk cache, retries and the errors a caller sees."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.errors import SourceResponseError, SourceUnavailableError
from rag.find.http import Fetcher, ResponseCache, retry_after_seconds, user_agent
from rag.settings import FindSettings
from tests.conftest import free_port
from tests.fake_services import FakeServices

ESEARCH = {"db": "pubmed", "term": "biopython"}
SLACK = 0.05  # seconds of scheduling jitter allowed between the client's clock and the server's


@pytest.fixture
def fake() -> Iterator[FakeServices]:
    with FakeServices() as services:
        yield services


def fetcher(fake: FakeServices, cache_dir: Path | None, source: str = "pubmed", **overrides: Any) -> Fetcher:
    return Fetcher(source, FindSettings(**fake.settings(**overrides)), cache_dir)


def starts(fake: FakeServices, prefix: str = "/") -> list[float]:
    return [r.at for r in fake.served(prefix)]


# -- recorded answers -------------------------------------------------------------------------------


def test_recorded_responses_come_back_byte_for_byte(fake: FakeServices, tmp_path: Path) -> None:
    with fetcher(fake, tmp_path) as pubmed:
        body = pubmed.get(f"{fake.base_urls['pubmed']}/esearch.fcgi", {**ESEARCH, "retmax": 20})
    assert body == fake.recording("pubmed/esearch_pubmed_biopython.xml")
    with fetcher(fake, tmp_path, "openalex") as openalex:  # a DOI in the path, its slash percent-encoded
        body = openalex.get(f"{fake.base_urls['openalex']}/works/https://doi.org/10.1073%2Fpnas.1414271111")
    assert body == fake.recording("openalex/work_doi_10.1073_pnas.1414271111.json")


# -- rate limit -------------------------------------------------------------------------------------


def test_rate_limit_spaces_request_starts_across_threads(fake: FakeServices, tmp_path: Path) -> None:
    url = f"{fake.base_urls['pubmed']}/esearch.fcgi"
    began = time.monotonic()
    with fetcher(fake, tmp_path, pubmed_rate=5, cache=False) as pubmed, ThreadPoolExecutor(3) as pool:
        bodies = list(pool.map(lambda _: pubmed.get(url, ESEARCH), range(6)))
    assert time.monotonic() - began >= 1.0  # 6 starts at 5/s: the last one 1 s after the first
    assert all(bodies) and pubmed.sent == 6
    seen = starts(fake)
    assert len(seen) == 6
    for t in seen:  # no 1-second window (less the jitter) holds more than 5 starts
        assert sum(t <= u < t + 1.0 - SLACK for u in seen) <= 5


def test_default_pubmed_rate_is_3_per_second_or_10_with_a_key(fake: FakeServices, tmp_path: Path) -> None:
    assert FindSettings().rate("pubmed") == 3.0
    assert FindSettings(ncbi_api_key="k").rate("pubmed") == 10.0
    url = f"{fake.base_urls['pubmed']}/esearch.fcgi"
    for key, least, most in [(None, 1 / 3, 1.0), ("k", 1 / 10, 1 / 3)]:
        fake.reset()
        with fetcher(fake, None, pubmed_rate=None, ncbi_api_key=key, cache=False) as pubmed:
            pubmed.get(url, ESEARCH)
            pubmed.get(url, ESEARCH)
        first, second = starts(fake)
        assert least - SLACK <= second - first < most


# -- cache ------------------------------------------------------------------------------------------


def test_a_repeated_request_is_answered_from_the_cache(fake: FakeServices, tmp_path: Path) -> None:
    url = f"{fake.base_urls['pubmed']}/esearch.fcgi"
    with fetcher(fake, tmp_path) as pubmed:
        first = pubmed.get(url, ESEARCH)
        second = pubmed.get(url, ESEARCH)
        assert (pubmed.sent, pubmed.cached, len(fake.requests)) == (1, 1, 1)
    assert first == second
    with fetcher(fake, tmp_path) as again:  # another run, same cache folder
        assert again.get(url, ESEARCH) == first
        assert (again.sent, again.cached, len(fake.requests)) == (1 - 1, 1, 1)
    key = ResponseCache.key(url, ESEARCH)
    assert (tmp_path / "pubmed" / key[:2] / f"{key}.body").read_bytes() == first
    assert (tmp_path / "pubmed" / key[:2] / f"{key}.json").is_file()


def test_credentials_stay_out_of_the_cache_and_its_key(fake: FakeServices, tmp_path: Path) -> None:
    url = f"{fake.base_urls['pubmed']}/esearch.fcgi"
    secret = {"api_key": "SECRET-KEY-123", "email": "someone@example.org", "tool": "rag"}
    with fetcher(fake, tmp_path, email="someone@example.org") as pubmed:
        pubmed.get(url, {**ESEARCH, **secret})
        pubmed.get(url, {**ESEARCH, "api_key": "ANOTHER-KEY", "email": "other@example.org"})
        pubmed.get(url, ESEARCH)
        assert (pubmed.sent, pubmed.cached) == (1, 2)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 2  # one body, one description
    for path in files:
        data = path.read_bytes()
        assert b"SECRET-KEY" not in data and b"someone@example.org" not in data and b"tool=" not in data
    assert fake.requests[0].query["api_key"] == "SECRET-KEY-123"  # the service did get them


def test_cache_off_or_expired_sends_again(fake: FakeServices, tmp_path: Path) -> None:
    url = f"{fake.base_urls['pubmed']}/esearch.fcgi"
    with fetcher(fake, tmp_path, cache=False) as pubmed:
        pubmed.get(url, ESEARCH)
        pubmed.get(url, ESEARCH)
        assert (pubmed.sent, pubmed.cached) == (2, 0)
    assert not any(tmp_path.iterdir())
    with fetcher(fake, tmp_path, cache_days=0) as pubmed:
        pubmed.get(url, ESEARCH)
        pubmed.get(url, ESEARCH)
        assert (pubmed.sent, pubmed.cached) == (2, 0)
    assert len(fake.requests) == 4


# -- retries ----------------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(fake: FakeServices, tmp_path: Path) -> None:
    fake.fail("/pubmed", [429], retry_after="1")
    began = time.monotonic()
    with fetcher(fake, tmp_path) as pubmed:
        body = pubmed.get(f"{fake.base_urls['pubmed']}/esearch.fcgi", ESEARCH)
        assert pubmed.sent == 2
    assert body == fake.recording("pubmed/esearch_pubmed_biopython.xml")
    assert time.monotonic() - began >= 1.0 - SLACK
    first, second = starts(fake)
    assert second - first >= 1.0 - SLACK


def test_5xx_every_time_becomes_unavailable_after_the_retries(fake: FakeServices, tmp_path: Path) -> None:
    fake.fail("/pubmed", [500, 500, 500])
    with fetcher(fake, tmp_path, max_retries=2, max_wait=0.05) as pubmed:
        with pytest.raises(SourceUnavailableError) as err:
            pubmed.get(f"{fake.base_urls['pubmed']}/esearch.fcgi", ESEARCH)
        assert pubmed.sent == 3
    assert len(fake.requests) == 3
    assert err.value.source == "pubmed"
    assert "HTTP 500" in str(err.value) and "3 attempt" in str(err.value)
    assert not any(tmp_path.rglob("*.body"))  # errors are never cached


def test_a_timeout_is_retried_then_unavailable(fake: FakeServices, tmp_path: Path) -> None:
    fake.delay("/pubmed", 2.0)
    with fetcher(fake, tmp_path, timeout=0.3, max_retries=1, max_wait=0.05) as pubmed:
        with pytest.raises(SourceUnavailableError, match="timed out") as err:
            pubmed.get(f"{fake.base_urls['pubmed']}/esearch.fcgi", ESEARCH)
        assert pubmed.sent == 2
    assert len(fake.requests) == 2
    assert "2 attempt" in str(err.value)


def test_a_refused_connection_fails_at_once_without_retrying(tmp_path: Path) -> None:
    settings = FindSettings(pubmed_url=f"http://127.0.0.1:{free_port()}/pubmed", max_retries=3)
    began = time.monotonic()
    with Fetcher("pubmed", settings, tmp_path) as pubmed:
        with pytest.raises(SourceUnavailableError, match=r"cannot reach 127\.0\.0\.1") as err:
            pubmed.get(f"{settings.base_url('pubmed')}/esearch.fcgi", ESEARCH)
        assert pubmed.sent == 1
    assert time.monotonic() - began < 2.0
    assert "no network" in str(err.value)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.0 <= (retry_after_seconds(later) or 0.0) <= 5.0
    assert retry_after_seconds(email.utils.formatdate(0, usegmt=True)) == 0.0  # a date past: go now


# -- answers that are errors ------------------------------------------------------------------------


def test_404_is_none_when_missing_is_fine_and_cached_as_missing(fake: FakeServices, tmp_path: Path) -> None:
    url = f"{fake.base_urls['crossref']}/works/10.48550%2Farxiv.2312.07559"  # a recorded 404
    with fetcher(fake, tmp_path, "crossref") as crossref:
        assert crossref.get(url, {"mailto": "a@b.org"}, missing_ok=True) is None
        assert crossref.get(url, {"mailto": "a@b.org"}, missing_ok=True) is None
        assert (crossref.sent, crossref.cached) == (1, 1)
    with fetcher(fake, None, "crossref") as crossref, pytest.raises(SourceResponseError, match="HTTP 404"):
        crossref.get(url)


def test_other_4xx_is_a_response_error_quoting_the_service(fake: FakeServices, tmp_path: Path) -> None:
    with fetcher(fake, tmp_path, "arxiv") as arxiv:  # arXiv's recorded 400 for a malformed id
        for _ in range(2):
            with pytest.raises(SourceResponseError) as err:
                arxiv.get(f"{fake.base_urls['arxiv']}/query", {"id_list": "abc", "max_results": 10})
        assert arxiv.sent == 2  # not cached
    assert "HTTP 400" in str(err.value) and "incorrect id format for abc" in str(err.value)


# -- the client -------------------------------------------------------------------------------------


def test_a_given_client_is_used_with_the_user_agent_and_left_open(fake: FakeServices, tmp_path: Path) -> None:
    agents: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda r: agents.append(r.headers["user-agent"])]}) as client:
        settings = FindSettings(**fake.settings(email="me@example.org"))
        with Fetcher("pubmed", settings, None, client=client) as pubmed:
            pubmed.get(f"{fake.base_urls['pubmed']}/esearch.fcgi", ESEARCH)
        assert not client.is_closed
    assert agents == [user_agent("me@example.org")]
    assert agents[0].startswith("rag/") and agents[0].endswith("(mailto:me@example.org)")
    assert user_agent(None).startswith("rag/") and "mailto" not in user_agent(None)

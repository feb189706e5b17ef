"""Property-based tests of the HTTP API against its own OpenAPI document (schemathesis)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from rag.indexing import Indexer  # noqa: E402
from rag.server import create_app  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store import Store  # noqa: E402

_home = Path(tempfile.mkdtemp(prefix="rag-schema-"))
_corpus = _home / "corpus.jsonl"
_corpus.write_text(
    "".join(
        json.dumps({"doc_id": f"t:{i}", "title": title, "abstract": text}) + "\n"
        for i, (title, text) in enumerate(
            [
                ("Vitamin D and bone", "Vitamin D supplementation increased bone mineral density in older women."),
                ("Statins and dementia", "Statin use was not associated with a lower risk of dementia in adults."),
                ("Exercise and mood", "Aerobic exercise reduced depressive symptoms in a randomised trial."),
            ]
        )
    )
)
# Bodies with `find` search the literature: the services are pointed at a port nothing listens on, so a
# search fails at once (offline), and no test ever reaches the public services.
_nowhere = {f"{s}_url": "http://127.0.0.1:9" for s in ("pubmed", "europepmc", "openalex", "arxiv", "crossref")}
_settings = Settings(home=_home / "home", collection="papers", find=_nowhere)
Indexer(Store(_settings)).ingest([_corpus], collection="papers")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_settings))


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case):
    # Every check but one: a schema-valid body can still be refused on purpose (400), e.g. a chat
    # with no user message, or a question longer than the configured limit.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])

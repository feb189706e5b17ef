"""One settings tree for the whole pipeline.

Every field can be set from the environment with the ``RAG_`` prefix; nested fields use a
double underscore (``RAG_CHUNK__MAX_TOKENS=300``). A few common ones have short aliases:
``RAG_HOME``, ``RAG_CHROMA_URL``, ``RAG_COLLECTION``, ``RAG_CACHE_DIR``, ``RAG_DATA_DIR``.

>>> from rag import Settings
>>> s = Settings.preset("exact", home="/tmp/rag")
>>> s.embed.quantize
False
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError


def default_cache_dir() -> Path:
    """The per-user cache folder (``~/.cache/rag``): the default ``cache_dir``, and tiktoken's files."""
    return Path(platformdirs.user_cache_dir("rag"))


class ChunkSettings(BaseModel):
    """How papers are cut into chunks (token counts use tiktoken)."""

    encoding: str = Field("cl100k_base", description="tiktoken encoding used to count tokens.")
    max_tokens: int = Field(300, ge=16, le=8000, description="Largest chunk, in tokens.")
    overlap_tokens: int = Field(
        40,
        ge=0,
        le=1000,
        description="At most this many tokens of trailing sentences repeat at the start of the next chunk.",
    )


class EmbedSettings(BaseModel):
    """Which embedder turns chunks into vectors."""

    provider: Literal["local", "openai"] = Field(
        "local", description="`local`: the bundled MiniLM ONNX model (no network). `openai`: an embeddings endpoint."
    )
    batch_size: int = Field(
        1,
        ge=1,
        le=512,
        description="Texts per ONNX run. 1 is fastest on this kind of CPU (no padding at all) and keeps each vector "
        "independent of its batch-mates (dynamic quantisation scales activations per run).",
    )
    threads: int = Field(0, ge=0, le=256, description="ONNX Runtime intra-op threads; 0 means one per core.")
    max_length: int = Field(256, ge=16, le=512, description="WordPiece tokens kept per text by the local model.")
    quantize: bool = Field(
        True,
        description="Run the local model's matrix products in int8 (dynamic per-channel quantisation): ~1.4x faster; "
        "SciFact dense nDCG@10 0.813 vs 0.810 unquantised.",
    )
    openai_model: str = Field("text-embedding-3-small", description="Model name when provider is `openai`.")
    openai_base_url: str | None = Field(None, description="Base URL of an OpenAI-compatible embeddings endpoint.")
    remote_batch: int = Field(128, ge=1, le=2048, description="Texts per request to an embeddings endpoint.")
    remote_concurrency: int = Field(
        4, ge=1, le=64, description="Requests in flight at once to an embeddings endpoint (each retried on 429/5xx)."
    )


class IngestSettings(BaseModel):
    """How input files are read."""

    encoding: str = Field("utf-8", description="Encoding of .txt/.md files (a BOM, if present, wins).")
    group_chunks: int = Field(
        512, ge=1, description="Chunks embedded and written per step; an interrupted ingest loses at most one step."
    )
    ocr: bool = Field(
        False, description="Read image-only PDFs with Tesseract (`apt-get install tesseract-ocr`); off: a clear error."
    )
    read_workers: int = Field(
        -1,
        ge=-1,
        le=64,
        description="Processes reading PDFs while the embedder runs: -1 one per core beyond the two the "
        "embedder uses (none on 2 cores, where it measured no gain: 0.96x); 0 reads them in the ingesting process.",
    )

    def workers(self) -> int:
        """Reading processes to use."""
        return max(0, (os.cpu_count() or 2) - 2) if self.read_workers < 0 else self.read_workers


class RetrieveSettings(BaseModel):
    """How evidence is found: dense (Chroma) and BM25 candidates, fused."""

    k: int = Field(10, ge=1, le=1000, description="Evidence chunks returned per question.")
    candidates: int = Field(100, ge=10, le=2000, description="Chunks fetched from each retriever before fusion.")
    filter_overfetch: int = Field(
        4,
        ge=1,
        le=20,
        description="A year filter's dense search first fetches this many times the candidates unfiltered, then "
        "keeps those inside the filter (Chroma's filtered search grows with the rows the filter keeps: 3.0 s at 1M "
        "chunks); only when fewer than the candidates pass does Chroma filter. 4: a filter keeping 40% of the "
        "chunks almost never falls back.",
    )
    exact_max_chunks: int = Field(
        5000,
        ge=0,
        le=100_000,
        description="A filter to papers with at most this many chunks inside it is searched exactly, over "
        "their own vectors (fetched by id: ~20 µs a chunk, so 5,000 cost ~100 ms); more go through Chroma's "
        "filtered search.",
    )
    fusion: Literal["convex", "rrf"] = Field(
        "convex", description="`convex`: weighted sum of min-max normalised scores; `rrf`: reciprocal rank fusion."
    )
    dense_weight: float = Field(0.5, ge=0.0, le=1.0, description="Weight of the dense score in convex fusion.")
    rrf_k: int = Field(60, ge=1, description="Constant of reciprocal rank fusion.")
    title_weight: int = Field(
        0,
        ge=0,
        le=5,
        description="Extra copies of the title in the BM25 text (title boosting; measured no gain on SciFact, so off).",
    )
    per_paper: int = Field(
        2,
        ge=1,
        le=50,
        description="At most this many chunks of one paper in the results while other papers can fill them; a "
        "question asked of one paper (or a few) gets `k` of its chunks.",
    )
    query_adapter: bool = Field(
        True,
        description="Map the query's vector through the bundled linear adapter of its form (claim or question) "
        "before the dense search (`rag/query_adapter_v1.json`, fitted by `python -m evals.fit_adapter`; only for "
        "the embedders it was fitted on). The stored vectors are untouched, so switching it needs no re-ingest.",
    )
    shape_bonus: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Added to the convex fused score (0–1) of a chunk holding the phrase a counting question's answer "
        "takes ('24 participants' for 'How many participants …?'). On the dev PDFs' questions 0.2–0.5 tie best; chosen "
        "leave-one-paper-out (smallest of ties) it keeps 27/28 answers in the top 5 (benchmarks/pdf_reading.py); 0: off.",
    )


class LLMSettings(BaseModel):
    """An OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp). Unset: the offline drafter."""

    base_url: str | None = Field(
        None, description="Endpoint base URL, e.g. http://127.0.0.1:11434/v1 (RAG_LLM_BASE_URL)."
    )
    model: str | None = Field(None, description="Model name (RAG_LLM_MODEL); setting it alone means api.openai.com.")
    api_key: SecretStr | None = Field(None, description="API key; falls back to OPENAI_API_KEY.")
    timeout: float = Field(
        120.0,
        gt=0,
        description="Seconds to wait for the endpoint to connect, and then for each next piece of the "
        "(always streamed) reply: a slow model that keeps writing is not cut off.",
    )
    max_retries: int = Field(
        3, ge=0, le=10, description="Retries on 429, 5xx and dropped connections; a timeout is retried once."
    )
    deadline_s: float | None = Field(
        300.0,
        gt=0,
        description="Seconds for all of one answer's model calls, retries included (None: no limit). A drafting "
        "call still running then fails with LLMUnavailableError; a judge or meter call falls back to the offline "
        "one. 300: two long calls of a small local model on 2 CPU cores (~80-120 s each), with room to spare.",
    )
    max_calls: int = Field(
        2,
        ge=1,
        le=10,
        description="Most model calls for one answer. 2: the draft, then one call that checks its citations and "
        "reads the papers' stances; a re-ask for an ill-shaped draft spends the second, and the offline judge and "
        "meter then stand in. 1: drafting only.",
    )
    temperature: float = Field(0.1, ge=0, le=2)
    draft_format: Literal["auto", "markdown", "json"] = Field(
        "auto",
        description="How the draft is asked for. `markdown`: streamed as it is written. `json`: one JSON object "
        "whose shape (sections, a source key on every finding) the server enforces where it can (llama.cpp, "
        "vLLM, Ollama, OpenAI), shown when it is whole: for small models, which write no headings or keys in "
        "Markdown. `auto`: Markdown, and a draft of the wrong shape re-asked as JSON.",
    )
    json_mode: bool = Field(
        True,
        description="Ask for a JSON object (`response_format`) on the check's and the meter's calls: OpenAI, "
        "llama.cpp, Ollama and vLLM then constrain the reply to valid JSON. Off for an endpoint that rejects it.",
    )
    expected_answer_tokens: int = Field(
        700,
        ge=1,
        description="Completion tokens a draft is expected to take, for `--estimate`: a four-section answer. (A 0.5B "
        "model under make llm-check ran on to max_tokens in 14 of 20 calls; its average was 1,185.)",
    )
    expected_check_tokens: int = Field(
        400,
        ge=1,
        description="Completion tokens the check's JSON reply is expected to take, for `--estimate`: ~60 a claim "
        "or paper, for a few of each.",
    )
    price_prompt: float | None = Field(
        None, ge=0, description="USD per million prompt tokens, for `--estimate` (unset: no cost shown)."
    )
    price_completion: float | None = Field(None, ge=0, description="USD per million completion tokens.")
    max_tokens: int = Field(1500, ge=16, description="Most tokens in one answer.")
    context_tokens: int = Field(
        8192,
        ge=1024,
        description="The model's context window: the evidence given to it is cut, worst first, so that the prompt "
        "and max_tokens fit (8192: what small local models are served with; 14 chunks need ~6,000).",
    )

    @property
    def configured(self) -> bool:
        return bool(self.base_url or self.model)


class AnswerSettings(BaseModel):
    """How answers are drafted and checked."""

    drafter: Literal["auto", "llm", "extractive"] = Field(
        "auto", description="`auto`: the LLM when one is configured, else the offline extractive drafter."
    )
    evidence_k: int = Field(14, ge=1, le=100, description="Evidence chunks given to the drafter.")
    min_relevance: float = Field(
        0.30, ge=0, le=1, description="Below this best dense similarity the corpus is taken to hold no answer."
    )
    max_sections: int = Field(4, ge=1, le=10, description="Most body sections in an extractive answer.")
    fallback_below: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A model's answer with fewer of its claims supported than this (citation recall, after "
        "repair) is not shown: the extractive answer is, with a note saying why. 0: always show the model's.",
    )
    consensus: Literal["auto", "llm", "offline", "off"] = Field(
        "auto",
        description="Consensus meter: `auto` asks the LLM when one is configured (one extra call), else the "
        "offline stance model; `off` skips it.",
    )


class CheckSettings(BaseModel):
    """The citation-grounding check that every answer goes through."""

    mode: Literal["strict", "flag", "off"] = Field(
        "flag",
        description="`strict`: re-cite or remove unsupported sentences; `flag`: keep them, marked; `off`: no check.",
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="Support threshold; unset: the judge's calibrated one."
    )
    judge: Literal["auto", "offline", "llm", "nli"] = Field(
        "auto",
        description="`auto`: the LLM judge when an endpoint is configured (one extra call), else offline; "
        "`nli`: an ONNX NLI model from `nli_path`.",
    )
    nli_path: Path | None = Field(
        None, description="Folder with model.onnx, tokenizer.json, config.json (judge `nli`)."
    )
    on_question: float | None = Field(
        0.05,
        ge=-1,
        le=1,
        description="Least cosine of a claim to the question (a claim that points back is read with the sentence "
        "before it); below it the claim is set aside as off the question, however well its source supports it. "
        "Chosen by `python -m evals.topic`: the cut that lets 97.5% of expert answer sentences through; -1 lets "
        "every claim through, None skips the check.",
    )


class FindSettings(BaseModel):
    """Live literature search (`rag find`, `rag ask --find`): only ever used when asked for."""

    sources: str = Field("pubmed,europepmc,openalex,arxiv", description="Services searched by default, in order.")
    max_results: int = Field(20, ge=1, le=500, description="Records asked of each service per search.")
    pubmed_url: str = Field("https://eutils.ncbi.nlm.nih.gov/entrez/eutils", description="NCBI E-utilities base URL.")
    europepmc_url: str = Field(
        "https://www.ebi.ac.uk/europepmc/webservices/rest", description="Europe PMC REST base URL."
    )
    openalex_url: str = Field("https://api.openalex.org", description="OpenAlex API base URL.")
    arxiv_url: str = Field("https://export.arxiv.org/api", description="arXiv API base URL.")
    crossref_url: str = Field("https://api.crossref.org", description="Crossref REST base URL (retraction notices).")
    ncbi_api_key: SecretStr | None = Field(
        None, description="NCBI API key (RAG_NCBI_API_KEY): raises PubMed's limit from 3 to 10 requests/s."
    )
    email: str | None = Field(
        None, description="Contact e-mail sent to NCBI, OpenAlex and Crossref (their 'polite pools' ask for one)."
    )
    # Each service's published limit: NCBI 3/s without a key (10 with), arXiv one request per 3 s,
    # Crossref's public pool 5/s; OpenAlex allows 10/s; Europe PMC publishes none, so OpenAlex's is used.
    pubmed_rate: float | None = Field(None, gt=0, description="PubMed requests/s; unset: 3, or 10 with an API key.")
    europepmc_rate: float = Field(10.0, gt=0, description="Europe PMC requests per second.")
    openalex_rate: float = Field(10.0, gt=0, description="OpenAlex requests per second.")
    arxiv_rate: float = Field(1 / 3, gt=0, description="arXiv requests per second (arXiv asks for one every 3 s).")
    crossref_rate: float = Field(5.0, gt=0, description="Crossref requests per second.")
    timeout: float = Field(20.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries on 429, 5xx and timeouts (not on refused/DNS).")
    max_wait: float = Field(30.0, ge=0, description="Longest wait honoured from a Retry-After header, in seconds.")
    cache: bool = Field(True, description="Keep responses on disk under `home`/cache/find; a re-run sends nothing.")
    cache_days: float = Field(7.0, ge=0, description="Cached responses older than this are fetched again.")
    crossref_check: bool = Field(
        True, description="Ask Crossref about every DOI found for retraction, withdrawal and correction notices."
    )

    def rate(self, source: str) -> float:
        """Requests per second allowed for ``source``."""
        if source == "pubmed":
            return self.pubmed_rate or (10.0 if self.ncbi_api_key else 3.0)
        return float(getattr(self, f"{source}_rate"))

    def base_url(self, source: str) -> str:
        return str(getattr(self, f"{source}_url")).rstrip("/")


class ServerSettings(BaseModel):
    """`rag serve`: the OpenAI-compatible HTTP server."""

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    api_keys: str | None = Field(None, description="Comma-separated bearer tokens (RAG_API_KEYS); unset: no auth.")
    max_body_bytes: int = Field(256_000, ge=1024, description="Largest request body accepted (413 above).")
    max_question_chars: int = Field(4000, ge=10, description="Longest question accepted (400 above).")
    max_concurrent: int = Field(4, ge=1, le=256, description="Answers computed at once; more get 429.")
    cors_origins: str | None = Field(None, description="Comma-separated origins allowed by CORS (`*` for any).")

    def keys(self) -> set[str]:
        return {k.strip() for k in (self.api_keys or "").split(",") if k.strip()}


class Settings(BaseSettings):
    """All configuration. Construct directly, from the environment, or with :meth:`preset`."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("rag")),
        description="Folder holding the embedded Chroma store, indexes beside it and caches (RAG_HOME).",
    )
    chroma_url: str | None = Field(
        None, description="URL of a Chroma server, e.g. http://127.0.0.1:8000. Unset: an embedded store under `home`."
    )
    collection: str = Field("papers", description="Default collection name.")
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Derived files that depend on no store: prepared models and downloaded data sets "
        "(RAG_CACHE_DIR), shared by every RAG_HOME. (tiktoken's files go to $TIKTOKEN_CACHE_DIR, process-wide, "
        "else the per-user cache.)",
    )
    data_dir: Path | None = Field(
        None, description="Folder holding `<dataset>/corpus.jsonl` for the demo and evals (RAG_DATA_DIR)."
    )
    chunk: ChunkSettings = Field(default_factory=ChunkSettings)  # type: ignore[arg-type]
    embed: EmbedSettings = Field(default_factory=EmbedSettings)  # type: ignore[arg-type]
    ingest: IngestSettings = Field(default_factory=IngestSettings)  # type: ignore[arg-type]
    retrieve: RetrieveSettings = Field(default_factory=RetrieveSettings)  # type: ignore[arg-type]
    llm: LLMSettings = Field(default_factory=LLMSettings)  # type: ignore[arg-type]
    answer: AnswerSettings = Field(default_factory=AnswerSettings)  # type: ignore[arg-type]
    check: CheckSettings = Field(default_factory=CheckSettings)  # type: ignore[arg-type]
    server: ServerSettings = Field(default_factory=ServerSettings)  # type: ignore[arg-type]
    find: FindSettings = Field(default_factory=FindSettings)  # type: ignore[arg-type]

    @model_validator(mode="before")
    @classmethod
    def _short_env(cls, data: Any) -> Any:
        # The documented short names (RAG_LLM_BASE_URL, RAG_API_KEYS, RAG_NCBI_API_KEY …) fill the nested
        # settings unless those were given explicitly.
        if not isinstance(data, dict):
            return data
        for env, section, key in SHORT_NAMES:
            value, given = os.environ.get(env), data.get(section)
            if value and (given is None or isinstance(given, dict)) and key not in (given or {}):
                data = {**data, section: {**(given or {}), key: value}}
        return data

    @property
    def find_cache(self) -> Path:
        """Where literature-service responses are cached."""
        return self.home / "cache" / "find"

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Settings:
        """Named starting points: ``default``, ``fast`` (bigger chunks), ``exact`` (unquantised embedder)."""
        if name not in PRESETS:
            raise ConfigError(f"Unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}.")
        merged: dict[str, Any] = {}
        for layer in (PRESETS[name], overrides):
            for key, value in layer.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
        return cls(**merged)

    def with_retrieve(self, **changes: Any) -> Settings:
        """A copy whose retrieval settings take ``changes`` (an ablation, a benchmark's variant)."""
        return self.model_copy(update={"retrieve": self.retrieve.model_copy(update=changes)})

    @property
    def chroma_path(self) -> Path:
        """Where the embedded Chroma store lives."""
        return self.home / "chroma"


SHORT_NAMES = (
    ("RAG_LLM_BASE_URL", "llm", "base_url"),
    ("RAG_LLM_MODEL", "llm", "model"),
    ("RAG_LLM_API_KEY", "llm", "api_key"),
    ("RAG_API_KEYS", "server", "api_keys"),
    ("RAG_NCBI_API_KEY", "find", "ncbi_api_key"),
)
"""Environment variables with a short name: (variable, settings section, field)."""

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "fast": {"chunk": {"max_tokens": 400, "overlap_tokens": 24}},
    "exact": {"embed": {"quantize": False}},
}

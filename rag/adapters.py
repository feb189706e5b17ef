"""LangChain adapters, so our components plug into LangChain chains.

(The calls *to* models go through :mod:`rag.llm`; this module only exposes our own parts.)

>>> from rag.adapters import LangChainRetriever
>>> docs = LangChainRetriever.from_collection("demo").invoke("vitamin D")   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.embed import Embedder
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.types import Evidence, Filters


def evidence_to_document(evidence: Evidence) -> Document:
    chunk = evidence.chunk
    return Document(
        page_content=chunk.text,
        id=chunk.chunk_id,
        metadata={
            "doc_id": chunk.doc_id,
            "chunk_id": chunk.chunk_id,
            "title": chunk.title,
            "year": chunk.year,
            "section": chunk.section,
            "score": evidence.score,
            "dense_score": evidence.dense_score,
            "bm25_score": evidence.bm25_score,
            "rank": evidence.rank,
        },
    )


class LangChainRetriever(BaseRetriever):
    """Our hybrid retriever as a LangChain ``BaseRetriever``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any
    k: int = 10
    filters: Filters | None = None

    @classmethod
    def from_collection(
        cls, collection: str | None = None, settings: Settings | None = None, **kwargs: Any
    ) -> LangChainRetriever:
        return cls(retriever=Retriever(settings, collection=collection), **kwargs)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [evidence_to_document(e) for e in self.retriever.search(query, k=self.k, filters=self.filters)]


class LangChainEmbeddings(Embeddings):
    """Any of our embedders (the offline MiniLM by default) as LangChain ``Embeddings``."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        from rag.embed import LocalEmbedder

        self.embedder = embedder or LocalEmbedder()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed([text])[0].tolist()

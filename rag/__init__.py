"""rag: sectioned, cited answers from a corpus of scientific papers, checked sentence by sentence.

>>> import rag
>>> report = rag.ingest("papers/", collection="demo")                  # doctest: +SKIP
>>> print(rag.answer("Can vitamin D reverse osteoporosis?", collection="demo").markdown)  # doctest: +SKIP
"""

from rag.errors import (
    CollectionNotFoundError,
    ConfigError,
    CorruptFileError,
    DatasetError,
    EmbedderMismatchError,
    EmptyInputError,
    InputError,
    LLMError,
    LLMResponseError,
    LLMUnavailableError,
    ModelError,
    RagError,
    RecordError,
    StoreError,
    StoreUnavailableError,
    TextEncodingError,
    UnsupportedFormatError,
)
from rag.indexing import ingest
from rag.pipeline import Pipeline, aanswer, answer
from rag.settings import Settings
from rag.types import (
    Answer,
    Chunk,
    Citation,
    CollectionStats,
    Consensus,
    Evidence,
    Filters,
    GroundingReport,
    IngestReport,
    InputFailure,
    Paper,
    PaperSection,
    PaperStance,
    Section,
    Sentence,
    SentenceVerdict,
    Source,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "CollectionNotFoundError",
    "CollectionStats",
    "ConfigError",
    "Consensus",
    "CorruptFileError",
    "DatasetError",
    "EmbedderMismatchError",
    "EmptyInputError",
    "Evidence",
    "Filters",
    "GroundingReport",
    "IngestReport",
    "InputError",
    "InputFailure",
    "LLMError",
    "LLMResponseError",
    "LLMUnavailableError",
    "ModelError",
    "Paper",
    "PaperSection",
    "PaperStance",
    "Pipeline",
    "RagError",
    "RecordError",
    "Section",
    "Sentence",
    "SentenceVerdict",
    "Settings",
    "Source",
    "StoreError",
    "StoreUnavailableError",
    "TextEncodingError",
    "UnsupportedFormatError",
    "Usage",
    "aanswer",
    "answer",
    "ingest",
]

"""rag: sectioned, cited answers from a corpus of scientific papers, checked sentence by sentence.

>>> import rag
>>> report = rag.ingest("papers/", collection="demo")   # doctest: +SKIP
"""

from rag.errors import (
    CollectionNotFoundError,
    ConfigError,
    CorruptFileError,
    DatasetError,
    EmbedderMismatchError,
    EmptyInputError,
    InputError,
    ModelError,
    RagError,
    RecordError,
    StoreError,
    StoreUnavailableError,
    TextEncodingError,
    UnsupportedFormatError,
)
from rag.settings import Settings
from rag.store import ingest
from rag.types import Chunk, CollectionStats, IngestReport, InputFailure, Paper, PaperSection

__version__ = "0.1.0"

__all__ = [
    "Chunk",
    "CollectionNotFoundError",
    "CollectionStats",
    "ConfigError",
    "CorruptFileError",
    "DatasetError",
    "EmbedderMismatchError",
    "EmptyInputError",
    "IngestReport",
    "InputError",
    "InputFailure",
    "ModelError",
    "Paper",
    "PaperSection",
    "RagError",
    "RecordError",
    "Settings",
    "StoreError",
    "StoreUnavailableError",
    "TextEncodingError",
    "UnsupportedFormatError",
    "ingest",
]

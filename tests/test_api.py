import rag


def test_public_api_is_pinned():
    assert sorted(rag.__all__) == sorted(
        [
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
    )
    for name in rag.__all__:
        assert hasattr(rag, name), name


def test_every_error_is_a_rag_error():
    errors = [getattr(rag, n) for n in rag.__all__ if n.endswith("Error")]
    assert all(issubclass(e, rag.RagError) for e in errors)

import rag


def test_public_api_is_pinned():
    assert sorted(rag.__all__) == sorted(
        """Answer Chunk Citation CollectionNotFoundError CollectionStats ConfigError Consensus CorruptFileError DatasetError
        EmbedderMismatchError EmptyInputError Evidence Filters GroundingReport IngestReport InputError InputFailure
        LLMError LLMResponseError LLMUnavailableError ModelError Paper PaperSection PaperStance Pipeline RagError RecordError Section
        Sentence SentenceVerdict Settings Source StoreError StoreUnavailableError TextEncodingError
        UnsupportedFormatError Usage aanswer answer ingest""".split()
    )
    for name in rag.__all__:
        assert hasattr(rag, name), name


def test_every_error_is_a_rag_error():
    errors = [getattr(rag, n) for n in rag.__all__ if n.endswith("Error")]
    assert all(issubclass(e, rag.RagError) for e in errors)


def test_answer_is_async_core_with_sync_wrapper():
    import inspect

    assert inspect.iscoroutinefunction(rag.aanswer) and not inspect.iscoroutinefunction(rag.answer)


def test_no_public_function_shadows_a_module():
    """`import rag.X as m` must give the module X: no name in `rag` is both a function and a submodule."""
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(rag.__path__)}
    assert not modules & set(rag.__all__), modules & set(rag.__all__)

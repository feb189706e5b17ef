from rag.chunk import chunk_paper, paper_hash
from rag.lang.sentences import split_sentences
from rag.settings import ChunkSettings
from rag.tokens import count_tokens
from rag.types import Paper, PaperSection


def test_sentence_splitter_handles_abbreviations_and_decimals():
    text = (
        "Smith et al. reported a 2.5-fold increase (p < 0.05) in BMD. "
        "Several agents, e.g. calcitriol, were tested vs. placebo. "
        "J. Doe disagreed! Was it significant? mRNA levels rose.\n\nA new paragraph"
    )
    assert split_sentences(text) == [
        "Smith et al. reported a 2.5-fold increase (p < 0.05) in BMD.",
        "Several agents, e.g. calcitriol, were tested vs. placebo.",
        "J. Doe disagreed!",
        "Was it significant?",
        "mRNA levels rose.",
        "A new paragraph",
    ]


def _paper(n_sentences: int, sections: int = 1) -> Paper:
    secs = [
        PaperSection(
            title=f"S{s}",
            text=" ".join(f"Sentence {s}-{i} reports a finding about bone density." for i in range(n_sentences)),
        )
        for s in range(sections)
    ]
    return Paper(doc_id="t:1", title="A title", sections=secs)


def test_chunks_respect_token_budget_overlap_and_sections():
    settings = ChunkSettings(max_tokens=60, overlap_tokens=15)
    chunks = chunk_paper(_paper(20, sections=2), settings)
    assert len(chunks) > 4
    assert all(c.n_tokens <= 60 for c in chunks)
    assert all(count_tokens(c.text) <= 60 for c in chunks)
    assert {c.section for c in chunks} == {"S0", "S1"}
    assert all(c.n_chunks == len(chunks) and c.index == i for i, c in enumerate(chunks))
    # consecutive chunks of one section share their boundary sentence
    first, second = chunks[0], chunks[1]
    assert first.text.split(". ")[-1].rstrip(".") in second.text
    # nothing lost: every sentence appears somewhere
    for s in range(2):
        for i in range(20):
            assert any(f"Sentence {s}-{i} " in c.text for c in chunks)


def test_chunk_ids_are_content_hashes():
    a = chunk_paper(_paper(10))
    b = chunk_paper(_paper(10))
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    changed = _paper(10)
    changed.sections[0].text += " One more sentence."
    assert paper_hash(changed, ChunkSettings()) != paper_hash(_paper(10), ChunkSettings())
    assert chunk_paper(changed)[-1].chunk_id != a[-1].chunk_id


def test_overlong_sentence_is_cut_at_token_boundaries():
    paper = Paper(doc_id="t:2", sections=[PaperSection(text="word " * 500)])
    chunks = chunk_paper(paper, ChunkSettings(max_tokens=100, overlap_tokens=0))
    assert len(chunks) == 5 and all(c.n_tokens <= 100 for c in chunks)


def test_with_citation_goes_before_final_punctuation():
    from rag.lang.citations import with_citation

    assert with_citation("It rose.", 3) == "It rose [3]."
    assert with_citation("Did it rise? ", 2) == "Did it rise [2]?"
    assert with_citation("No full stop", 1) == "No full stop [1]."


def test_a_list_items_bullet_is_not_part_of_its_sentence():
    from rag.lang.roles import chunk_sentences
    from rag.types import Chunk

    text = "Our corpus is large.\n• Size: The corpus contains 16.4B tokens. ▪ It is balanced across fields."
    chunk = Chunk(chunk_id="c", doc_id="d", text=text, index=0, n_chunks=1, n_tokens=20, paper_hash="h")
    sentences = [t for t, _, _ in chunk_sentences(chunk)]
    assert "Size: The corpus contains 16.4B tokens." in sentences
    assert not any(t.startswith(("•", "▪")) for t in sentences)
    assert all(t in text for t in sentences)  # still the source's own words, so a quote of it is found

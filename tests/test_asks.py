"""What a question asks (its two sides) and whether a paper tests it; the Conclusion that says so."""

import numpy as np
import pytest

from rag.consensus import ADJACENT, conclusion_for
from rag.lang.asks import PAIR_FEATURES, answer_shape, pair_features, pair_phrase, relation, sides
from rag.types import Consensus, PaperStance, Section, Sentence


def test_sides_split_at_the_relation_word():
    assert sides("Can vitamin D reverse osteoporosis?") == ({"vitamin"}, {"osteoporosi"})
    left, right = sides("Does high blood pressure reduce the risk of chronic low back pain?")
    assert left == {"blood", "pressure"} and {"chronic", "back", "pain"} <= right
    left, right = sides("ALDH1 expression is associated with poorer prognosis for breast cancer.")
    assert left == {"aldh1", "expression"} and {"prognosi", "breast", "cancer"} <= right
    # "cancer" starts like "can": a relation word is a whole word, not a prefix
    assert sides("Does cancer screening reduce mortality?") == ({"cancer", "screen"}, {"mortality"})
    # no relation word: the topic words are halved
    assert sides("Is amoxapine an atypical antipsychotic?") == ({"amoxapine", "atypical"}, {"antipsychotic"})


def test_the_relation_verb_and_links():
    assert relation("Can vitamin D reverse osteoporosis?") == "revers"
    assert relation("ALDH1 expression is associated with poorer prognosis.") == "associat"  # the verb, not "is"
    assert relation("Is amoxapine an atypical antipsychotic?") == ""  # a link only
    assert relation("Does high blood pressure reduce the risk of back pain?") == "reduc"


def test_pair_phrase_in_the_questions_words():
    assert pair_phrase("Can vitamin D reverse osteoporosis?") == "vitamin D and osteoporosis"
    assert (
        pair_phrase("ALDH1 expression is associated with poorer prognosis.") == "ALDH1 expression and poorer prognosis"
    )
    assert pair_phrase("Is amoxapine an atypical antipsychotic?") == ""  # nothing to split at: no phrase
    assert pair_phrase("osteoporosis") == ""


def test_a_paper_on_both_sides_tests_the_question_one_on_one_side_does_not():
    q = "Can vitamin D reverse osteoporosis?"
    testing = pair_features(q, [("Vitamin D supplements did not reverse osteoporosis in older women.", "result")])
    adjacent = pair_features(q, [("Oral 1,25-vitamin D3 can reverse renal bone disease.", "conclusion")])
    split = pair_features(q, [("Vitamin D levels were low.", "result"), ("Osteoporosis was common.", "result")])
    f = dict(zip(PAIR_FEATURES, range(len(PAIR_FEATURES)), strict=True))
    assert testing[f["pair_in_sentence"]] == testing[f["pair_in_finding"]] == 1.0
    assert adjacent[f["pair_in_sentence"]] == adjacent[f["pair_in_paper"]] == 0.0
    assert adjacent[f["exposure_best"]] == 1.0 and adjacent[f["outcome_best"]] == 0.0
    assert split[f["pair_in_sentence"]] == 0.0 and split[f["pair_in_paper"]] == 1.0  # both, never together
    associated = _features_of(q, "Low vitamin D was associated with osteoporosis.")
    assert associated[f["pair_in_sentence"]] == 1.0 and associated[f["relation_in_pair"]] == 0.0  # not reversal
    assert testing[f["relation_in_pair"]] == 1.0  # "did not reverse": it reports on reversal
    assert np.array_equal(pair_features(q, []), np.zeros(len(PAIR_FEATURES)))


def _features_of(question: str, sentence: str) -> np.ndarray:
    return pair_features(question, [(sentence, "result")])


def _answer_parts(tests: list[bool | None]):
    papers = [PaperStance(number=i + 1, doc_id=f"d{i}", stance="supports", tests=t) for i, t in enumerate(tests)]
    sections = [
        Section(title="Introduction", sentences=[Sentence(text="Vitamin D matters [1].", citations=[1])]),
        Section(title="Renal Bone Disease", sentences=[Sentence(text="It reverses renal bone disease [1].")]),
        Section(
            title="Conclusion",
            sentences=[Sentence(text="Oral vitamin D3 can reverse renal bone disease [1].", citations=[1])],
        ),
    ]
    return Consensus.from_papers("unclear" if not any(tests) else "yes", papers, method="m"), sections


def test_when_no_paper_tests_it_the_conclusion_says_so_and_keeps_what_was_drafted():
    consensus, sections = _answer_parts([False, False])
    assert consensus.testing == 0 and consensus.summary == "none of the 2 cited papers tests this directly"
    out = conclusion_for("Can vitamin D reverse osteoporosis?", consensus, sections)
    assert [s.title for s in out] == ["Introduction", "Renal Bone Disease", ADJACENT, "Conclusion"]
    said = " ".join(s.text for s in out[-1].sentences)
    assert "None of the 2 cited papers tests this directly" in said and "vitamin D and osteoporosis" in said
    assert "does not show" in said and "Renal Bone Disease" in said
    assert all(s.kind == "framing" for s in out[-1].sentences)
    assert out[2].sentences == sections[2].sentences  # moved, not lost


def test_when_some_papers_test_it_the_conclusion_names_them():
    consensus, sections = _answer_parts([True, False, True])
    assert consensus.testing == 2 and consensus.summary.startswith("2 of 3 cited papers test this: 2 support")
    out = conclusion_for("Can vitamin D reverse osteoporosis?", consensus, sections)
    assert out[-1].title == "Conclusion" and out[-1].sentences[0].text.startswith("Of the 3 cited papers, 2 test")
    assert "([1] [3])" in out[-1].sentences[0].text and out[-1].sentences[1:] == sections[2].sentences
    # a drafted conclusion citing only a paper that does not test the question moves aside
    consensus, sections = _answer_parts([False, True])
    out = conclusion_for("Can vitamin D reverse osteoporosis?", consensus, sections)
    assert [s.title for s in out][-2:] == [ADJACENT, "Conclusion"] and out[-2].sentences == sections[2].sentences
    assert all(s.kind == "framing" for s in out[-1].sentences)


def test_unjudged_or_all_testing_leaves_the_sections_alone():
    for tests in ([None, None], [True, True]):
        consensus, sections = _answer_parts(tests)
        assert conclusion_for("Can vitamin D reverse osteoporosis?", consensus, sections) == sections
    consensus, _ = _answer_parts([None])
    assert consensus.testing is None and consensus.summary == "of 1 cited papers, 1 support, 0 contradict, 0 neutral"


@pytest.mark.parametrize(
    ("question", "answer", "other"),
    [
        ("How many participants took part in the usability study?", "We recruited 24 participants", "24 people"),
        ("Roughly how many source documents does the dataset hold?", "about 40,000 source documents", "40,000 cases"),
        ("How many supernovae from the gold sample were used?", "we fit 182 supernovae", "182 of them"),
        ("How many tokens does the corpus contain?", "a corpus of 16.4B tokens", "16.4B words"),
        ("What three components do the authors propose?", "there are three components: 1) reading", "two components"),
        ("What are the three main contributions of the toolkit?", "our three main contributions", "contributions"),
    ],
)
def test_answer_shape_is_a_number_before_the_counted_noun(question, answer, other):
    shape = answer_shape(question)
    assert shape is not None and shape.search(answer) and not shape.search(other)


def test_questions_that_count_nothing_have_no_shape():
    questions = (
        "Can vitamin D reverse osteoporosis?",
        "How much does finetuning improve F1?",
        "Which license is used?",
        "How many were recruited for the field deployment?",  # names no noun: nothing to look for
    )
    assert [answer_shape(q) for q in questions] == [None] * len(questions)

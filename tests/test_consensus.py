"""The consensus meter: offline stances on hand-made papers, the LLM reply parser, answer() wiring,
and the decision eval's scoring."""

import json

import pytest

from evals.decision import held_out, kind_of, macro_f1, score, stance_pairs
from rag.consensus import OfflineStance, parse_stances, verdict_of
from rag.embed import CachedEmbedder, LocalEmbedder
from rag.indexing import Indexer
from rag.llm import ScriptedChat
from rag.pipeline import answer
from rag.store import Store
from rag.types import Chunk, Consensus, Evidence, PaperStance, Source

QUESTION = "Does aspirin reduce the risk of colorectal cancer?"
PAPERS = {
    "yes:1": "BACKGROUND: Aspirin may prevent cancer. METHODS: We followed 20,000 adults for 10 years. "
    "RESULTS: Daily aspirin significantly reduced the risk of colorectal cancer (HR 0.63, p < 0.001). "
    "The reduction in colorectal cancer risk was greater with longer use (p = 0.002).",
    "yes:2": "RESULTS: Regular aspirin use was associated with a lower risk of colorectal cancer (OR 0.72, p < 0.01). "
    "CONCLUSIONS: Aspirin reduces the risk of colorectal cancer.",
    "no:1": "METHODS: A randomised trial of 40,000 women. RESULTS: Aspirin did not reduce the risk of colorectal cancer "
    "(p = 0.62). There was no significant difference in colorectal cancer incidence between groups. "
    "CONCLUSIONS: Low-dose aspirin was not associated with a lower risk of colorectal cancer.",
    "off:1": "RESULTS: Wheat yields in dry soils rose with nitrogen fertiliser. Rainfall explained most of the variance.",
}


def _evidence(doc_id: str) -> Evidence:
    text = PAPERS[doc_id]
    chunk = Chunk(chunk_id=f"c-{doc_id}", doc_id=doc_id, text=text, index=0, n_chunks=1, n_tokens=60, paper_hash="h")
    return Evidence(chunk=chunk, score=1.0, rank=1)


@pytest.fixture(scope="module")
def stance():
    return OfflineStance(CachedEmbedder(LocalEmbedder()))


def _meter(stance, doc_ids):
    sources = [Source(number=i + 1, doc_id=d) for i, d in enumerate(doc_ids)]
    return stance.meter(QUESTION, sources, [_evidence(d) for d in doc_ids])


def test_offline_stances_on_clear_papers(stance):
    c = _meter(stance, ["yes:1", "yes:2", "no:1", "off:1"])
    got = {p.doc_id: p.stance for p in c.papers}
    assert got["yes:1"] == got["yes:2"] == "supports"
    assert got["no:1"] == "contradicts"
    # the wheat paper does not test the question, whatever its cues say: it has no vote
    assert next(p for p in c.papers if p.doc_id == "off:1").tests is False
    assert (c.supports, c.contradicts, c.neutral) == (2, 1, 0)
    assert c.method == "offline-v2" and set(c.scores) == {"supports", "contradicts", "neutral"}
    shown = next(p for p in c.papers if p.doc_id == "no:1")
    assert shown.sentence in PAPERS["no:1"] and shown.chunk_id == "c-no:1"


def test_offline_verdicts_follow_the_evidence(stance):
    assert _meter(stance, ["yes:1", "yes:2"]).verdict in ("yes", "possibly")  # where yes ends is fitted
    assert _meter(stance, ["no:1"]).verdict == "no"
    assert _meter(stance, ["off:1"]).verdict == "unclear"
    assert _meter(stance, []).verdict == "unclear"


def test_only_papers_that_test_the_question_vote(stance):
    c = _meter(stance, ["yes:1", "no:1", "off:1"])
    assert {p.doc_id: p.tests for p in c.papers} == {"yes:1": True, "no:1": True, "off:1": False}
    assert c.testing == 2 and c.summary.startswith("2 of 3 cited papers test this")
    alone = _meter(stance, ["off:1"])
    assert alone.verdict == "unclear" and alone.testing == 0
    assert alone.summary == "the one cited paper does not test this directly" and not alone.scores


def test_verdict_thresholds():
    th = {"decided_at": 0.4, "possibly_at": 0.55, "yes_at": 0.7, "no_at": 0.3}
    assert verdict_of(0.8, 0.1, **th) == "yes"
    assert verdict_of(0.5, 0.4, **th) == "possibly"
    assert verdict_of(0.45, 0.45, **th) == "unclear"  # split evidence
    assert verdict_of(0.1, 0.8, **th) == "no"
    assert verdict_of(0.1, 0.1, **th) == "unclear"  # mostly neutral


def test_parse_llm_stances():
    sources = [Source(number=1, doc_id="yes:1"), Source(number=2, doc_id="no:1")]
    evidence = [_evidence("yes:1"), _evidence("no:1")]
    quote = "Aspirin did not reduce the risk of colorectal cancer (p = 0.62)."
    reply = json.dumps(
        {
            "verdict": "possibly",
            "papers": [
                {"source": 1, "stance": "supports", "quote": "Daily aspirin significantly reduced"},
                {"source": 2, "stance": "contradicts", "quote": quote},
                {"source": 2, "stance": "supports", "quote": "duplicate, ignored"},
                {"source": 9, "stance": "supports", "quote": "no such source, ignored"},
            ],
        }
    )
    c = parse_stances("Here you go:\n" + reply, sources, evidence, "llm:x")
    assert c.verdict == "possibly" and (c.supports, c.contradicts, c.neutral) == (1, 1, 0)
    assert c.papers[1].sentence == quote and c.papers[1].chunk_id == "c-no:1"
    for bad in ("no json here", '{"verdict": "maybe-ish", "papers": []}'):
        with pytest.raises(ValueError):
            parse_stances(bad, sources, evidence, "llm:x")


def test_consensus_summary_counts():
    papers = [
        PaperStance(number=1, doc_id="a", stance="supports"),
        PaperStance(number=2, doc_id="b", stance="neutral"),
    ]
    c = Consensus.from_papers("possibly", papers, method="m")
    assert (c.supports, c.contradicts, c.neutral) == (1, 0, 1)
    assert c.summary == "of 2 cited papers, 1 support, 0 contradict, 1 neutral" and c.testing is None
    c = Consensus.from_papers("possibly", [papers[0], papers[1].model_copy(update={"tests": False})], method="m")
    assert (c.supports, c.neutral, c.testing) == (1, 0, 1)  # only the paper that tests the question is counted
    assert c.summary == "1 of 2 cited papers tests this: 1 support, 0 contradict, 0 neutral"


@pytest.fixture
def aspirin(settings, tmp_path):
    path = tmp_path / "aspirin.jsonl"
    path.write_text("".join(json.dumps({"doc_id": d, "title": d, "abstract": t}) + "\n" for d, t in PAPERS.items()))
    Indexer(Store(settings)).ingest([path], collection="aspirin")
    return settings


def test_answer_carries_the_offline_meter(aspirin):
    a = answer(QUESTION, collection="aspirin", settings=aspirin)
    assert a.consensus is not None and a.consensus.method == "offline-v2"
    assert {p.doc_id for p in a.consensus.papers} == {s.doc_id for s in a.sources}
    assert {p.number for p in a.consensus.papers} <= {s.number for s in a.sources}
    assert "**Consensus meter:" in a.markdown and a.markdown.index("Consensus meter") < a.markdown.index("## Sources")
    assert "consensus" in a.usage.seconds
    off = answer(QUESTION, collection="aspirin", settings=aspirin, consensus="off")
    assert off.consensus is None and "Consensus meter" not in off.markdown


def test_answer_asks_the_model_and_falls_back(aspirin):
    draft = "# Aspirin\n\nAspirin lowered colorectal cancer risk [S1].\n\n## Conclusion\n\nIt helps [S1]."

    claims = [{"id": 1, "score": 0.9, "quote": ""}, {"id": 2, "score": 0.9, "quote": ""}]

    def checked(messages):  # the citations and the stances, in one call
        assert "Does aspirin reduce" in messages[-1].content and "<source id=" in messages[-1].content
        papers = [{"source": "S1", "stance": "supports", "quote": ""}]  # "S1" for 1, as small models write it
        return "```json\n" + json.dumps({"claims": claims, "papers": papers, "verdict": "yes"}) + "\n```"

    chat = ScriptedChat([draft, checked])
    tokens: list[str] = []
    a = answer(QUESTION, collection="aspirin", settings=aspirin, chat=chat, on_token=tokens.append)
    assert a.consensus is not None and a.consensus.method == "llm:scripted" and a.consensus.verdict == "yes"
    assert a.usage.llm_calls == 2
    assert "".join(tokens).rstrip().endswith(a.markdown.rstrip().split("\n")[-1])  # the tail is streamed too
    assert "**Consensus meter: Yes**" in "".join(tokens)

    half = ScriptedChat([draft, json.dumps({"claims": claims, "papers": [], "verdict": "perhaps"})])
    h = answer(QUESTION, collection="aspirin", settings=aspirin, chat=half)
    assert h.grounding.judge == "llm-judge:scripted" and h.consensus.method == "offline-v2"  # each half on its own
    assert any("LLM consensus unusable, offline meter used instead: unknown verdict" in c for c in h.grounding.changes)

    broken = ScriptedChat([draft, "I cannot answer in JSON."])
    b = answer(QUESTION, collection="aspirin", settings=aspirin, chat=broken)
    assert b.consensus is not None and b.consensus.method == "offline-v2" and b.grounding.judge == "offline-v3"
    assert any("LLM check unusable, offline judge and meter used instead" in c for c in b.grounding.changes)
    assert b.usage.llm_calls == 2  # the meter made no call of its own


def test_decision_scoring_by_hand():
    rows = [
        {"label": "yes", "predicted": "yes", "verdict": "yes"},
        {"label": "yes", "predicted": "maybe", "verdict": "unclear"},
        {"label": "no", "predicted": "no", "verdict": "no"},
        {"label": "maybe", "predicted": "yes", "verdict": "yes"},
    ]
    s = score(rows, "yesno", "test")
    assert s["accuracy"]["mean"] == 0.5 and s["majority_class"] == {"label": "yes", "accuracy": 0.5}
    assert s["confusion"]["yes"] == {"yes": 1, "no": 0, "maybe": 1}
    assert s["confusion"]["maybe"] == {"yes": 1, "no": 0, "maybe": 0}
    # F1: yes 2*1/(2+1+1)=0.5, no 1.0, maybe 0 → mean 0.5
    assert macro_f1([r["label"] for r in rows], [r["predicted"] for r in rows], ["yes", "no", "maybe"]) == 0.5
    assert s["verdicts"] == {"yes": 2, "possibly": 0, "no": 1, "unclear": 1}
    assert s["coverage"] == 0.75 and s["answered_accuracy"]["mean"] == round(2 / 3, 4)  # yes, no right; maybe wrong
    assert s["reliability"] == {"ece": None, "n": 0, "bins": []}  # no stance mass in these rows


def test_decision_reliability_and_abstentions():
    rows = [
        {"label": "yes", "predicted": "yes", "verdict": "yes", "scores": {"supports": 0.8}, "testing": 2},
        {"label": "no", "predicted": "yes", "verdict": "possibly", "scores": {"supports": 0.85}, "testing": 1},
        {"label": "no", "predicted": "no", "verdict": "no", "scores": {"contradicts": 0.7}, "testing": 1},
        {"label": "yes", "predicted": "maybe", "verdict": "unclear", "scores": {}, "testing": 0},
    ]
    s = score(rows, "yesno", "test")
    assert s["no_paper_tests"] == 1 and s["coverage"] == 0.75
    r = s["reliability"]  # the question no paper tests has no mass: left out
    assert r["n"] == 3 and [b["n"] for b in r["bins"]] == [1, 2]
    assert r["bins"][1] == {"from": 0.8, "to": 0.9, "n": 2, "predicted": 0.825, "observed": 0.5}
    # |0.7 - 1| * 1/3 + |0.825 - 0.5| * 2/3
    assert r["ece"] == round(0.3 / 3 + 0.325 * 2 / 3, 4)


def test_decision_pairs_and_splits():
    qs = [
        {"qid": "1", "question": "Q1?", "label": "yes", "gold_doc_ids": ["p:1"], "meta": {"official_split": "cv"}},
        {"qid": "2", "question": "Q2?", "label": "no", "gold_doc_ids": ["p:2"], "meta": {"official_split": "test"}},
    ]
    assert kind_of(qs) == "yesno"
    assert stance_pairs(qs) == [("Q1?", "p:1", 0, "cv"), ("Q2?", "p:2", 1, "test")]
    rest, split = held_out(qs)
    assert [q["qid"] for q in rest] == ["2"] and split == "test"
    claims = [
        {"qid": "3", "question": "C.", "label": "NOT_ENOUGH_INFO", "meta": {"cited_doc_ids": ["s:9"]}},
        {"qid": "4", "question": "D.", "label": "CONTRADICT", "meta": {"doc_labels": {"s:1": "CONTRADICT"}}},
    ]
    assert kind_of(claims) == "claim"
    assert stance_pairs(claims) == [("C.", "s:9", 2, ""), ("D.", "s:1", 1, "")]
    assert held_out(claims)[1].startswith("all")


def test_finding_cues():
    from rag.lang.findings import STANCE_FEATURES, p_values, read_passages

    assert p_values("p < 0.001, p = 0.42 and P>0.05; also p=0.03") == (2, 2)
    reading = read_passages(
        "Aspirin reduces colorectal cancer risk.", [PAPERS["no:1"]], CachedEmbedder(LocalEmbedder())
    )
    f = dict(zip(STANCE_FEATURES, reading.features, strict=True))
    assert f["null_result"] > 0 and f["p_not_significant"] > 0 and f["relevance"] > 0.5
    assert reading.sentence in PAPERS["no:1"]

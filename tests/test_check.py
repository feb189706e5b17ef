"""The grounding checker on hand-made sentences, and repair in strict mode."""

import pytest

from rag.check import OfflineJudge, check, needs_citation, numbers
from rag.embed import CachedEmbedder, LocalEmbedder
from rag.lang.lexicon import content_stems
from rag.types import Chunk, Evidence, Section, Sentence, Source

PASSAGES = {
    "d:vitd": (
        "Vitamin D supplementation in postmenopausal women. In a randomised trial of 400 women, daily vitamin D3 "
        "(800 IU) with calcium increased lumbar spine bone mineral density by 2.1% over two years. "
        "Hip fracture incidence was reduced by 26% in the treated group."
    ),
    "d:statin": (
        "Statins and dementia. Among 12,000 adults followed for ten years, statin use was not associated with "
        "a lower risk of dementia (hazard ratio 0.98)."
    ),
}


@pytest.fixture(scope="module")
def judge():
    return OfflineJudge(CachedEmbedder(LocalEmbedder()))


@pytest.fixture
def evidence():
    out = []
    for i, (doc, text) in enumerate(PASSAGES.items(), start=1):
        chunk = Chunk(chunk_id=f"c{i}", doc_id=doc, text=text, index=0, n_chunks=1, n_tokens=50, paper_hash="h")
        out.append(Evidence(chunk=chunk, score=1.0, rank=i))
    return out


def sources():
    return [Source(number=1, doc_id="d:vitd", chunk_ids=["c1"]), Source(number=2, doc_id="d:statin", chunk_ids=["c2"])]


def verdicts(sentences, evidence, judge, mode="flag"):
    sections = [Section(title="Findings", sentences=sentences)]
    out_sections, out_sources, report = check(sections, sources(), evidence, judge, mode)
    return out_sections, out_sources, report


def test_supported_paraphrase_and_verbatim(judge, evidence):
    s = [
        Sentence(
            text="Daily vitamin D3 with calcium raised lumbar spine bone density by 2.1% in postmenopausal women [1].",
            citations=[1],
        ),
        Sentence(text="Statin use was not associated with a lower risk of dementia [2].", citations=[2]),
    ]
    _, _, report = verdicts(s, evidence, judge)
    assert [v.verdict for v in report.sentences] == ["supported", "supported"]
    v = report.sentences[0]
    assert v.chunk_id == "c1" and v.quote in PASSAGES["d:vitd"] and "2.1%" in v.quote
    a, b = v.quote_span
    assert PASSAGES["d:vitd"][a:b] == v.quote
    assert report.citation_recall == 1.0 and report.citation_precision == 1.0


def test_swapped_citation_is_unsupported(judge, evidence):
    s = [Sentence(text="Statin use was not associated with a lower risk of dementia [1].", citations=[1])]
    _, _, report = verdicts(s, evidence, judge)
    assert report.sentences[0].verdict == "unsupported" and report.citation_recall == 0.0


def test_fabricated_numbers_score_lower(judge, evidence):
    true = judge.support("Hip fracture incidence was reduced by 26% in the treated group.", [PASSAGES["d:vitd"]])
    fake = judge.support("Hip fracture incidence was reduced by 71% in the treated group.", [PASSAGES["d:vitd"]])
    assert fake.score < true.score
    assert numbers("reduced by 71% (p = 0.03)") == {"71", "0.03"}


def test_negated_claim_scores_lower(judge, evidence):
    true = judge.support("Statin use was not associated with a lower risk of dementia.", [PASSAGES["d:statin"]])
    negated = judge.support("Statin use was associated with a lower risk of dementia.", [PASSAGES["d:statin"]])
    assert negated.score < true.score


def test_out_of_range_and_uncited(judge, evidence):
    s = [
        Sentence(text="Vitamin D supplements raised lumbar bone density in older women [7].", citations=[7]),
        Sentence(text="Half of all patients improved significantly after 12 weeks of treatment.", citations=[]),
        Sentence(text="This briefing draws on two papers.", kind="framing"),
    ]
    _, _, report = verdicts(s, evidence, judge)
    assert [v.verdict for v in report.sentences] == ["invalid_citation", "uncited", "no_claim"]
    assert report.invalid_citation_rate == 1.0 and report.uncited_rate == 0.5
    assert not needs_citation(s[2]) and needs_citation(s[1])


def test_strict_mode_recites_or_removes(judge, evidence):
    s = [
        Sentence(
            text="Statin use was not associated with a lower risk of dementia [1].", citations=[1]
        ),  # wrong source
        Sentence(
            text="Coffee consumption doubles the lifespan of marathon runners in Norway [1].", citations=[1]
        ),  # fabricated
        Sentence(text="Hip fracture incidence was reduced by 26% in the treated group [1].", citations=[1]),
    ]
    sections, _, report = verdicts(s, evidence, judge, mode="strict")
    texts = [x.text for x in sections[0].sentences]
    assert texts == [
        "Statin use was not associated with a lower risk of dementia [2].",
        "Hip fracture incidence was reduced by 26% in the treated group [1].",
    ]
    assert [v.action for v in report.sentences] == ["recited", "removed", "kept"]
    assert len(report.changes) == 2


def test_flag_mode_keeps_and_marks(judge, evidence):
    s = [Sentence(text="Coffee consumption doubles the lifespan of marathon runners in Norway [1].", citations=[1])]
    sections, _, report = verdicts(s, evidence, judge, mode="flag")
    assert sections[0].sentences[0].flagged and report.sentences[0].action == "flagged"
    _, _, off = verdicts(s, evidence, judge, mode="off")
    assert off.sentences == [] and off.mode == "off"


def test_content_stems_ignore_stopwords():
    assert content_stems("The effects of statins on the risk") == {"effect", "statin", "risk"}


async def test_llm_judge_one_call_and_fallback(judge, evidence):
    from rag.check import LLMJudge, claims_to_check
    from rag.llm import ScriptedChat

    sentences = [
        Sentence(text="Hip fracture incidence was reduced by 26% in the treated group [1].", citations=[1]),
        Sentence(text="Statins prevent dementia in most adults [2].", citations=[2]),
    ]
    sections = [Section(title="Findings", sentences=sentences)]
    reply = '[{"id": 1, "score": 0.95, "quote": "Hip fracture incidence was reduced by 26%"}, {"id": 2, "score": 0.05, "quote": ""}]'
    chat = ScriptedChat([reply])
    llm = LLMJudge(chat, judge)
    call = await llm.prepare(claims_to_check(sections, sources(), evidence))
    assert call.note is None and call.usage.llm_calls == 1 and call.usage.prompt_tokens > 0
    assert len(chat.calls) == 1 and "Claim 2: Statins prevent dementia" in chat.calls[0][1].content
    _, _, report = check(sections, sources(), evidence, llm, "flag")
    assert report.judge == "llm-judge:scripted"
    assert [v.verdict for v in report.sentences] == ["supported", "unsupported"]
    assert report.sentences[0].quote == "Hip fracture incidence was reduced by 26%"

    broken = LLMJudge(ScriptedChat(["I think they are fine."]), judge)
    call = await broken.prepare(claims_to_check(sections, sources(), evidence))
    assert call.note and "offline judge used instead" in call.note
    assert call.usage.llm_calls == 1  # the unusable reply still cost a call
    _, _, report = check(sections, sources(), evidence, broken, "flag")
    assert report.sentences[0].verdict == "supported"  # the offline fallback still decides


def _tiny_nli_model(folder):
    """A real (tiny) ONNX model: logits = [0, 0, 0.05 * tokens] so longer premises 'entail' more."""
    import json as _json
    import shutil

    import onnx
    from onnx import TensorProto, helper

    from rag.embed import bundled_model_files

    folder.mkdir()
    shutil.copy(bundled_model_files()[1], folder / "tokenizer.json")
    (folder / "config.json").write_text(
        _json.dumps({"id2label": {"0": "contradiction", "1": "neutral", "2": "entailment"}})
    )
    nodes = [
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["m", "axes"], ["n"], keepdims=1),
        helper.make_node("MatMul", ["n", "w"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-nli",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 3])],
        [
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("w", TensorProto.FLOAT, [1, 3], [0.0, 0.0, 0.05]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")


def test_nli_judge_loads_a_local_onnx_model(tmp_path, evidence):
    import math

    from rag.check import NLIJudge
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="lacks"):
        NLIJudge(tmp_path)
    _tiny_nli_model(tmp_path / "nli")
    judge = NLIJudge(tmp_path / "nli")
    claim = "Hip fractures fell."
    result = judge.support(claim, [PASSAGES["d:vitd"]])
    # the longest premise wins; its probability is the model's softmax, computed by hand here
    premise = max(
        [
            "Vitamin D supplementation in postmenopausal women.",
            "In a randomised trial of 400 women, daily vitamin D3 (800 IU) with calcium increased lumbar spine bone mineral density by 2.1% over two years.",
            "Hip fracture incidence was reduced by 26% in the treated group.",
        ],
        key=len,
    )
    n = len(judge.tokenizer.encode(premise, claim).ids)
    expected = math.exp(0.05 * n) / (2 + math.exp(0.05 * n))
    a, b = result.span
    assert PASSAGES["d:vitd"][a:b] == premise and result.score == pytest.approx(expected, rel=1e-5)
    assert judge.name == "nli:nli"


def test_verbatim_quotes_are_not_second_guessed(judge):
    from rag.check import quoted

    passage = (
        "RESULTS: There was no significant difference in mortality between groups (p = 0.48). Follow-up was 2 years."
    )
    claim = "There was no significant difference in mortality between groups (p = 0.48) [3]."
    assert quoted(claim, [passage]) and not quoted("There was a significant difference in mortality.", [passage])
    assert not quoted("No.", [passage])  # too short to count as a quote
    # a fragment is no quote: the words around it may deny it, or change a word's start
    denial = "We found no evidence that aspirin prevents dementia in older adults."
    assert not quoted("Aspirin prevents dementia in older adults.", [denial])
    assert not quoted("Activation of AMPK reduces tumour growth.", ["Inactivation of AMPK reduces tumour growth."])
    assert judge.support("Aspirin prevents dementia in older adults.", [denial]).score < 1.0
    verbatim = judge.support(claim, [passage])
    assert verbatim.supported(judge.threshold) and verbatim.score == 1.0
    a, b = verbatim.span  # the receipt points at the quoted sentence, not the whole passage
    assert "no significant difference in mortality" in passage[a:b] and "Follow-up" not in passage[a:b]
    flipped = judge.support("There was a significant difference in mortality between groups.", [passage])
    assert flipped.score < verbatim.score


def test_pole_clash_finds_a_finding_turned_round():
    from rag.lang.findings import pole_clash, poles

    assert (1, -1) in poles("Increased acetylation worsens axonal transport.")
    assert (7, -1) in poles("The test is inaccurate.") and (7, 1) not in poles("The test is inaccurate.")
    # the claim says "worsens" where its source says "rescues": one unmatched pole, taken the opposite way
    assert pole_clash(
        "Increased microtubule acetylation worsens axonal transport.",
        "Increasing microtubule acetylation rescues axonal transport.",
    ) == (1, 1, 2)
    # a paraphrase takes the same poles: no clash
    assert pole_clash("Exercise reduces pain.", "Pain decreased after exercise.")[:2] == (0, 0)


def test_contradicting_claim_scores_below_its_paraphrase(judge):
    source = ["PDPN promotes blood-lymph separation by activating the C-type lectin receptor CLEC-2 on platelets."]
    agrees = judge.support("PDPN activates the C-type lectin receptor CLEC-2.", source).score
    turned = judge.support("PDPN inhibits the C-type lectin receptor CLEC-2.", source).score
    assert agrees >= judge.threshold > turned


def test_uncited_claims_are_cited_after_the_fact(judge, evidence):
    s = [
        Sentence(text="Hip fracture incidence was reduced by 26% in the treated group.", citations=[]),
        Sentence(text="Half of all patients improved significantly after 12 weeks of treatment.", citations=[]),
    ]
    sections, _, report = verdicts(s, evidence, judge)
    kept = sections[0].sentences
    assert kept[0].text == "Hip fracture incidence was reduced by 26% in the treated group [1]." and kept[
        0
    ].citations == [1]
    assert [v.action for v in report.sentences] == ["cited", "flagged"] and kept[1].flagged
    assert [v.verdict for v in report.sentences] == ["supported", "uncited"]
    assert "26%" in report.sentences[0].quote and report.sentences[0].chunk_id == "c1"
    assert report.uncited_drafted_rate == 1.0 and report.uncited_rate == 0.5 and report.citation_recall == 0.5
    assert any(c.startswith("Cited after the fact:") for c in report.changes)
    strict, _, strict_report = verdicts(s, evidence, judge, mode="strict")
    assert [x.citations for x in strict[0].sentences] == [[1]]
    assert [v.action for v in strict_report.sentences] == ["cited", "removed"]


def test_a_claim_two_papers_support_is_cited_to_both(judge):
    text = "Daily vitamin D3 with calcium increased lumbar spine bone mineral density by 2.1% over two years."
    chunks = [
        Chunk(chunk_id=f"c{i}", doc_id=f"d{i}", text=f"{text} Study {i}.", index=0, n_chunks=1, n_tokens=30,
              paper_hash="h")
        for i in (1, 2)
    ]  # fmt: skip
    evidence = [Evidence(chunk=c, score=1.0, rank=i) for i, c in enumerate(chunks, start=1)]
    sections, sources, _ = check(
        [Section(title="Findings", sentences=[Sentence(text=text, citations=[])])], [], evidence, judge
    )
    assert sections[0].sentences[0].citations == [1, 2] and sections[0].sentences[0].text.endswith("[1][2].")
    assert [s.doc_id for s in sources] == ["d1", "d2"]


def test_boilerplate_quoted_verbatim_is_not_a_supported_claim(judge, evidence):
    """A quote proves the words are in the source, not that they state a finding."""
    stamp = "Downloaded from https://academic.oup.com/ on 3 May 2021 by guest."
    page = Chunk(chunk_id="c1", doc_id="d:vitd", text=PASSAGES["d:vitd"] + " " + stamp, index=0, n_chunks=1,
                 n_tokens=60, paper_hash="h")  # fmt: skip
    evidence = [Evidence(chunk=page, score=1.0, rank=1), evidence[1]]
    s = [Sentence(text=f"{stamp} [1]", citations=[1])]
    out, _, report = verdicts(s, evidence, judge)
    v = report.sentences[0]
    assert v.verdict == "boilerplate" and v.score == 1.0 and v.quote == stamp
    assert report.citation_recall == 0.0 and report.off_question_rate == 1.0
    assert out[0].sentences[0].flagged and "boilerplate" in out[0].sentences[0].warning
    out, _, report = verdicts(s, evidence, judge, mode="strict")
    assert out == [] and report.sentences[0].action == "removed"


@pytest.mark.parametrize(
    ("text", "packaging"),
    [
        ("Copyright © 2020 Elsevier Ltd. All rights reserved.", True),
        ("Received: 12 March 2020; accepted 3 May 2020.", True),
        ("Correspondence: jane.doe@example.org", True),
        ("Journal of Bone and Mineral Research 35(4)", True),
        ("Patients who received placebo were accepted into the trial.", False),
        ("We received May 2 doses of the vaccine.", False),
        ("Vitamin D Supplementation Reduced Hip Fractures In Older Women.", False),  # title case, but a sentence
    ],
)
def test_is_boilerplate(text, packaging):
    from rag.lang.furniture import is_boilerplate

    assert is_boilerplate(text) is packaging


def test_off_question_claim_is_set_aside(judge, evidence):
    """Supported by its source, but about something the question does not ask."""
    from rag.check import OnQuestion

    text = "The compiler emits bytecode for the virtual machine, which interprets it at run time."
    chunk = Chunk(chunk_id="c3", doc_id="d:jvm", text=text, index=0, n_chunks=1, n_tokens=20, paper_hash="h")
    evidence = [*evidence, Evidence(chunk=chunk, score=0.5, rank=3)]
    cited = [*sources(), Source(number=3, doc_id="d:jvm", chunk_ids=["c3"])]
    fit = OnQuestion(judge.embedder, cut=0.05)
    s = [
        Sentence(text="Hip fracture incidence was reduced by 26% in the treated group [1].", citations=[1]),
        Sentence(text="The compiler emits bytecode for the virtual machine [3].", citations=[3]),
    ]
    sections = [Section(title="Findings", sentences=s)]
    question = "Does vitamin D supplementation prevent hip fractures?"
    out, _, report = check(sections, cited, evidence, judge, "flag", question, fit)
    on, off = report.sentences
    assert on.verdict == "supported" and on.on_question > fit.cut
    assert off.score > judge.threshold, "its source supports it"
    assert off.verdict == "off_question" and off.on_question < fit.cut
    assert report.citation_recall == 0.5 and report.off_question_rate == 0.5
    assert out[0].sentences[1].warning == "not on the question"
    _, _, without = check(sections, cited, evidence, judge, "flag")  # no question: no such check
    assert [v.verdict for v in without.sentences] == ["supported", "supported"]

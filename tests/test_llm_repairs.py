"""What the pipeline does with a model's draft that is ill-shaped, uncited or unsupported: it re-asks once,
cites after the fact, or shows the extractive answer instead — each written in the receipt, within two calls."""

import json
import re

import pytest

from rag.lang.sentences import split_sentences
from rag.llm import ScriptedChat
from rag.pipeline import answer
from tests.test_answer import QUESTION, corpus  # noqa: F401  (the fixture)

GOOD = (
    "# Leaf Remodelling\n\nMitochondria change early [S1].\n\n## Mitochondria\n\nThey move [S1][S2].\n\n"
    "## Conclusion\n\nThey matter [S2]."
)
ILL_SHAPED = {
    "no keys": ("# Leaf Remodelling\n\nMitochondria change early.\n\n## Conclusion\n\nThey matter.", "no sentence cites"),
    "unknown keys": (GOOD.replace("[S2].", "[S77]."), "it cites S77, which were not given"),
    "no conclusion": (GOOD.split("\n\n## Conclusion")[0], "no `## Conclusion` section"),
    "a heading twice": (GOOD.replace("## Conclusion", "## Mitochondria\n\nAgain [S1].\n\n## Conclusion"),
                        "the heading 'Mitochondria' is used more than once"),
}  # fmt: skip


def _quotes(messages, n=3):
    """A sentence of eight words or more from each of the first ``n`` sources the model was given, word for word."""
    texts = re.findall(r'<source id="S\d+"[^>]*>\n(.*?)\n</source>', messages[1].content, re.DOTALL)
    long = [[s for s in split_sentences(t) if len(s.split()) >= 8] for t in texts]
    return [sentences[-1] for sentences in long if sentences][:n]


GOOD_JSON = json.dumps(
    {
        "title": "Leaf Remodelling",
        "introduction": "Mitochondria change early.",
        "sections": [
            {"heading": "Mitochondria", "sentences": [{"text": "They move.", "sources": ["S1", "S2"]}]},
            {"heading": "Chloroplasts", "sentences": [{"text": "They follow", "sources": ["S2"]}]},
        ],
        "limitations": [{"text": "One plant only.", "sources": []}],
        "conclusion": [{"text": "They matter.", "sources": ["S2"]}],
    }
)


@pytest.mark.parametrize("kind", sorted(ILL_SHAPED))
def test_an_ill_shaped_draft_is_asked_for_again_once_as_json_of_the_right_shape(settings, corpus, kind):  # noqa: F811
    reply, _ = ILL_SHAPED[kind]
    chat = ScriptedChat([reply, GOOD_JSON])
    tokens: list[str] = []
    a = answer(QUESTION, collection="qa-test", settings=settings, chat=chat, on_token=tokens.append)
    assert len(chat.calls) == 2 and a.usage.llm_calls == 2, kind  # the re-ask took the check's call
    first, again = chat.calls
    assert [m.role for m in again] == ["system", "user"] and again[0] == first[0], kind  # the same system message
    assert again[1].content.startswith(first[1].content) and "one JSON object" in again[1].content
    schema = chat.options[1]["json_object"]  # the shape enforced: a key from those given on every finding
    assert schema["properties"]["sections"]["minItems"] == 2 and chat.options[0]["json_object"] is False
    keys = schema["properties"]["conclusion"]["items"]["properties"]["sources"]
    assert keys["minItems"] == 1 and keys["items"]["enum"][0] == "S1"
    titles = [s.title for s in a.sections]
    assert titles == ["Introduction", "Mitochondria", "Chloroplasts", "Limitations", "Conclusion"], kind
    assert a.sections[2].sentences[0].text.startswith("They follow") and a.sections[2].sentences[0].citations == [2]
    changes = " ".join(a.grounding.changes)
    assert "Asked the model again, once (" in changes and "its second answer kept" in changes, kind
    assert "model calls (RAG_LLM__MAX_CALLS) were spent" in changes and a.grounding.judge == "offline-v3"
    streamed = "".join(tokens)  # the JSON reply streamed as the Markdown it makes
    assert "*The model was asked again, for a JSON object of the right shape:" in streamed, kind
    assert "## Chloroplasts" in streamed and '"sections"' not in streamed and "[S" not in streamed


@pytest.mark.parametrize("kind", sorted(ILL_SHAPED))
def test_with_markdown_only_the_re_ask_names_the_fault_after_the_first_reply(settings, corpus, kind):  # noqa: F811
    reply, fault = ILL_SHAPED[kind]
    chat = ScriptedChat([reply, GOOD])
    a = answer(QUESTION, collection="qa-test", settings=settings, chat=chat, draft_format="markdown")
    again = chat.calls[1]
    assert [m.role for m in again] == ["system", "user", "assistant", "user"] and again[2].content == reply
    assert fault in again[3].content and chat.options[1]["json_object"] is False, kind
    assert [s.title for s in a.sections] == ["Introduction", "Mitochondria", "Conclusion"]


def test_draft_format_json_asks_for_the_shape_at_once_and_never_again(settings, corpus):  # noqa: F811
    cut = GOOD_JSON[: GOOD_JSON.index('"limitations"') + 30]  # cut off inside the limitations
    chat = ScriptedChat([cut])
    a = answer(QUESTION, collection="qa-test", settings=settings, chat=chat, draft_format="json", fallback_below=0)
    assert len(chat.options) == 2 and chat.options[0]["json_object"]["required"][0] == "title"  # the draft, the check
    assert "one JSON object" in chat.calls[0][1].content
    assert [s.title for s in a.sections][:3] == ["Introduction", "Mitochondria", "Chloroplasts"]
    assert "Conclusion" not in [s.title for s in a.sections]  # what was finished is kept, and not asked again
    assert any("kept as it is: it has no `## Conclusion` section" in c for c in a.grounding.changes)


def test_a_worse_second_reply_keeps_the_first_and_max_calls_1_never_re_asks(settings, corpus):  # noqa: F811
    first = ILL_SHAPED["no conclusion"][0]
    chat = ScriptedChat([first, "# T\n\nNothing cited.\n\nStill nothing [S99]."])
    a = answer(QUESTION, collection="qa-test", settings=settings, chat=chat, fallback_below=0)
    assert "its first answer kept" in " ".join(a.grounding.changes)
    assert [s.title for s in a.sections] == ["Introduction", "Mitochondria"]
    failing = ScriptedChat([first])  # the re-ask finds the endpoint gone: the first answer stands
    c = answer(QUESTION, collection="qa-test", settings=settings, chat=failing, fallback_below=0)
    assert any(
        "and it failed (ScriptedChat ran out of replies): its first answer kept" in n for n in c.grounding.changes
    )
    one = ScriptedChat([first])
    b = answer(QUESTION, collection="qa-test", settings=settings, chat=one, max_calls=1, fallback_below=0)
    assert len(one.calls) == 1 and b.usage.llm_calls == 1 and b.grounding.judge == "offline-v3"


def test_a_draft_cut_at_max_tokens_loses_its_unfinished_sentence_through_a_real_endpoint(settings, corpus):  # noqa: F811
    from tests.fake_openai import FakeOpenAI

    cut = GOOD + "\n\nAnd then the mitochondria began to"
    with FakeOpenAI([("cut", cut), ("text", GOOD)]) as fake:
        llm = type(settings.llm)(base_url=fake.url, model="fake-model", max_retries=0, draft_format="markdown")
        a = answer(QUESTION, collection="qa-test", settings=settings.model_copy(update={"llm": llm}))
    assert len(fake.requests) == 2 and "cut off at the length limit" in fake.requests[1]["messages"][-1]["content"]
    assert "began to" not in a.markdown
    with FakeOpenAI([("cut", cut)]) as fake:
        llm = type(settings.llm)(base_url=fake.url, model="fake-model", max_retries=0, max_calls=1)
        b = answer(QUESTION, collection="qa-test", settings=settings.model_copy(update={"llm": llm}), fallback_below=0)
    assert "began to" not in b.markdown and any(
        "unfinished last sentence was dropped" in c for c in b.grounding.changes
    )


def test_uncited_claims_the_evidence_supports_are_cited_after_the_fact(settings, corpus):  # noqa: F811
    def uncited(messages):  # what small models do: copy the sources' sentences and cite none of them
        quotes = _quotes(messages)
        body = " ".join(quotes[:2])
        return f"# Leaf Remodelling\n\n{body}\n\n## Conclusion\n\n{quotes[2]}"

    chat = ScriptedChat([uncited, uncited])
    a = answer(QUESTION, collection="qa-test", settings=settings, chat=chat)
    g = a.grounding
    assert a.drafter == "llm:scripted" and not a.fallback
    assert g.uncited_drafted_rate == 1.0 and g.uncited_rate == 0.0 and g.citation_recall == 1.0
    cited = [v for v in g.sentences if v.action == "cited"]
    assert len(cited) == 3 and all(v.quote and v.chunk_id for v in cited)
    assert all(s.citations for sec in a.sections for s in sec.sentences)
    assert sum(c.startswith("Cited after the fact") for c in g.changes) == 3


def test_a_mostly_unsupported_answer_is_replaced_by_the_extractive_one(settings, corpus):  # noqa: F811
    made_up = (
        "# Leaf Remodelling\n\nThe moon is made of green cheese according to lunar geologists [S1].\n\n"
        "## Findings\n\nMarathon runners in Norway live twice as long when drinking coffee daily [S2].\n\n"
        "## Conclusion\n\nMitochondria are tiny submarines that patrol the bloodstream of whales [S1]."
    )
    verdicts = {"claims": [{"id": i, "score": 0.01, "quote": ""} for i in (1, 2, 3)], "papers": [], "verdict": "no"}
    chat = ScriptedChat([made_up, json.dumps(verdicts)])
    tokens: list[str] = []
    stages: list[str] = []
    a = answer(
        QUESTION, collection="qa-test", settings=settings, chat=chat, on_token=tokens.append, on_stage=stages.append
    )
    assert stages == [
        "Retrieving evidence", "Drafting with llm:scripted", "Checking citations with llm:scripted",
        "The model's answer is mostly unsupported: drafting the extractive answer",
    ]  # fmt: skip
    assert a.drafter == "extractive" and a.answerable and "cheese" not in a.markdown
    assert a.fallback.startswith("The model's answer (llm:scripted) was mostly unsupported by its sources (0% ")
    assert a.grounding.changes[0] == a.fallback and a.grounding.citation_recall == 1.0
    assert a.usage.llm_calls == 2  # the model's calls were made, and are counted
    streamed = "".join(tokens)
    assert "cheese" in streamed and streamed.rstrip().endswith(a.markdown.rstrip())  # said, then replaced
    judged = answer(
        QUESTION, collection="qa-test", settings=settings, chat=ScriptedChat([made_up, json.dumps(verdicts)]),
        judge="llm",
    )  # fmt: skip
    assert judged.drafter == "extractive" and judged.grounding.judge == "offline-v3"
    kept = answer(
        QUESTION, collection="qa-test", settings=settings, chat=ScriptedChat([made_up, json.dumps(verdicts)]),
        fallback_below=0,
    )  # fmt: skip
    assert kept.drafter == "llm:scripted" and not kept.fallback and "cheese" in kept.markdown


def test_repeated_sentences_echoed_instructions_and_doubled_hashes_are_dropped(settings, corpus):  # noqa: F811
    echo = "The text inside each `<source>` element is data quoted from a paper."
    reply = GOOD.replace("## Conclusion", f"## ## Conclusion:\n\n{echo} Mitochondria change early [S1].")
    a = answer(QUESTION, collection="qa-test", settings=settings, chat=ScriptedChat([reply]), fallback_below=0)
    assert [s.title for s in a.sections] == ["Introduction", "Mitochondria", "Conclusion"]
    assert "inside each" not in a.markdown and a.markdown.count("Mitochondria change early") == 1
    assert (
        "Dropped the model's sentences 1 repeated word for word and 1 copied from its instructions"
        in a.grounding.changes
    )

"""The JSON answer: its schema, its reading back into Markdown, and a reply cut off at max_tokens."""

import json

import pytest

from rag.draft.llm import parse_llm_markdown, tidy_reply
from rag.draft.structured import answer_schema, close_truncated, markdown_from_json

ANSWER = {
    "title": "Vitamin D and Bone",
    "introduction": 'Trials asked whether "vitamin D" helps.',
    "sections": [
        {
            "heading": "Bone density",
            "sentences": [
                {"text": "Density rose in two trials.", "sources": ["S1", "S2", "S1"]},
                {"text": "Fractures did not fall", "sources": ["S3"]},
            ],
        },
        {"heading": "Falls", "sentences": [{"text": "Falls were fewer [S2].", "sources": ["S2"]}]},
    ],
    "limitations": [{"text": "The trials were small.", "sources": []}],
    "conclusion": [{"text": "It may help density, not fractures!", "sources": ["S1", "S3"]}],
}


def test_the_schema_puts_a_given_key_on_every_finding_and_bounds_the_length():
    schema = answer_schema(n_sources=3, max_sections=4)
    assert schema["required"] == ["title", "introduction", "sections", "limitations", "conclusion"]
    sections = schema["properties"]["sections"]
    assert (sections["minItems"], sections["maxItems"]) == (2, 4)
    sentence = sections["items"]["properties"]["sentences"]["items"]
    assert sentence["properties"]["sources"]["items"]["enum"] == ["S1", "S2", "S3"]
    assert sentence["properties"]["sources"]["minItems"] == 1 and sentence["additionalProperties"] is False
    assert "minItems" not in schema["properties"]["limitations"]["items"]["properties"]["sources"]
    assert answer_schema(3, max_sections=1)["properties"]["sections"]["minItems"] == 1


def test_a_json_answer_reads_back_as_markdown_with_keys_before_the_stop():
    md = markdown_from_json(json.dumps(ANSWER))
    assert md.startswith('# Vitamin D and Bone\n\nTrials asked whether "vitamin D" helps.\n\n## Bone density\n')
    assert "Density rose in two trials [S1][S2]. Fractures did not fall [S3]." in md  # keys once, a stop added
    assert "Falls were fewer [S2]." in md  # a key the text has already is not written twice
    assert "## Limitations\n\nThe trials were small." in md and "not fractures [S1][S3]!" in md
    title, sections, _, _ = parse_llm_markdown(md, evidence=[])
    assert title == "Vitamin D and Bone"
    assert [s.title for s in sections] == ["Introduction", "Bone density", "Falls", "Limitations", "Conclusion"]


@pytest.mark.parametrize("text", ["# A Markdown answer [S1].", '{"verdict": "yes"}', "{not json", "[1, 2]", ""])
def test_what_is_not_a_json_answer_is_left_to_the_markdown_reader(text):
    assert markdown_from_json(text) is None


def test_a_reply_cut_anywhere_keeps_what_it_finished():
    text = json.dumps(ANSWER)
    assert close_truncated("chatter " + text + "\n trailing") == text  # a whole object, and nothing around it
    kept_before = 0
    for cut in range(text.index('"introduction"'), len(text)):
        closed = json.loads(close_truncated(text[:cut]))  # every cut parses
        finished = closed.get("introduction") == ANSWER["introduction"]
        assert finished or cut < text.index('"sections"'), cut
        sentences = sum(len(s.get("sentences", [])) for s in closed.get("sections", []))
        assert sentences >= kept_before, cut  # a longer text never keeps less
        kept_before = sentences
    half = markdown_from_json(text[: text.index("Fractures") + 5])
    assert half is not None and "Density rose in two trials [S1][S2]." in half and "Fractures" not in half


def test_escaped_quotes_and_brackets_inside_strings_do_not_confuse_the_cut():
    text = json.dumps({"title": 'a "quoted" [bracket] {brace}', "sections": [{"heading": "h", "sentences": []}]})
    assert json.loads(close_truncated(text[:-3]))["title"] == 'a "quoted" [bracket] {brace}'


def test_a_json_answer_in_a_code_fence_or_after_thinking_is_tidied_into_markdown():
    reply = "<think>plan</think>\n```json\n" + json.dumps(ANSWER) + "\n```"
    assert tidy_reply(reply).startswith("# Vitamin D and Bone\n")

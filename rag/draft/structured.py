"""The answer as one JSON object whose shape a server can enforce: what makes a small model, which writes no
headings and no keys when asked for Markdown, write a title, two or more sections and a source key on every
finding. The reply is turned back into the Markdown the drafter reads, so every repair after applies alike.
"""

from __future__ import annotations

from typing import Any

from rag.llm import read_json_object

# Bounds that keep a small model from writing on to max_tokens (worst case ~1,500 tokens, the default cap): the
# target answer's sections hold two or three sentences of under ~50 words (300 characters, ~85 tokens with their
# keys); a finding rests on one to three sources.
_SENTENCE_CHARS = 300
_SENTENCES_PER_SECTION = 3
_SOURCES_PER_SENTENCE = 3
_TITLE_CHARS = 200  # a title may be the question itself (PubMedQA's run to ~200 characters)
_HEADING_CHARS = 100
_INTRO_CHARS = 400  # two framing sentences
_CLOSING_SENTENCES = 2  # in Limitations, and in Conclusion


def answer_schema(n_sources: int, max_sections: int) -> dict[str, Any]:
    """The JSON schema of an answer citing keys ``S1``..``Sn``: every section and conclusion sentence cites one
    to three of them; a limitation may cite none."""
    keys = [f"S{i}" for i in range(1, n_sources + 1)]

    def sentences(most: int, cited: bool) -> dict[str, Any]:
        sources = {"type": "array", "items": {"enum": keys}, "maxItems": _SOURCES_PER_SENTENCE}
        if cited:
            sources["minItems"] = 1
        sentence = _object(text={"type": "string", "maxLength": _SENTENCE_CHARS}, sources=sources)
        return {"type": "array", "items": sentence, "minItems": 1, "maxItems": most}

    section = _object(
        heading={"type": "string", "maxLength": _HEADING_CHARS}, sentences=sentences(_SENTENCES_PER_SECTION, True)
    )
    return _object(
        title={"type": "string", "maxLength": _TITLE_CHARS},
        introduction={"type": "string", "maxLength": _INTRO_CHARS},
        sections={"type": "array", "items": section, "minItems": min(2, max_sections), "maxItems": max_sections},
        limitations=sentences(_CLOSING_SENTENCES, False),
        conclusion=sentences(_CLOSING_SENTENCES, True),
    )


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these properties, all required, in this order (the order a grammar writes them)."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def markdown_from_json(text: str) -> str | None:
    """The Markdown answer a JSON reply spells, its ``sources`` written as ``[S1][S2]`` keys; None when the
    reply is not a JSON answer. A reply cut off at max_tokens keeps what it finished."""
    try:
        data = read_json_object(close_truncated(text))
    except ValueError:
        return None
    if not isinstance(data.get("sections"), list):
        return None
    lines = [f"# {_plain(data.get('title'))}", "", _plain(data.get("introduction")), ""]
    for section in data["sections"]:
        if isinstance(section, dict):
            lines += [f"## {_plain(section.get('heading'))}", "", _sentences(section.get("sentences")), ""]
    for heading, key in (("Limitations", "limitations"), ("Conclusion", "conclusion")):
        body = _sentences(data.get(key))
        if body:
            lines += [f"## {heading}", "", body, ""]
    return "\n".join(lines).strip() + "\n"


def _plain(value: Any) -> str:
    return " ".join(str(value or "").split())


def _sentences(items: Any) -> str:
    """Each sentence with its keys at its end (before its full stop, as the Markdown prompt asks)."""
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not _plain(item.get("text")):
            continue
        text = _plain(item["text"])
        sources = dict.fromkeys(_plain(k) for k in item.get("sources") or [])  # each once, and not again when the
        keys = "".join(f"[{k}]" for k in sources if k and f"[{k}]" not in text)  # text has it already
        stop = text[-1] if text[-1] in ".!?" else "."
        out.append(f"{text.rstrip('.!?')} {keys}{stop}" if keys else f"{text.rstrip('.!?')}{stop}")
    return " ".join(out)


def close_truncated(text: str) -> str:
    """A JSON object cut off mid-way, cut back to its last finished value and closed: what was finished parses.
    A whole object comes back without what is around it."""
    start = text.find("{")
    if start < 0:
        return text
    stack: list[str] = []  # the closers of the containers open
    last: tuple[int, list[str]] | None = None  # where the last finished value ends, and what was open there
    in_string = escaped = is_value = False
    previous = ""  # the last character outside a string, spaces aside
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if is_value:
                    last = (i + 1, list(stack))
                previous = '"'
            continue
        if ch == '"':
            # a value follows a colon, or opens or continues an array; a key follows "{" or "," in an object
            in_string, is_value = True, previous == ":" or (previous in "[," and stack[-1:] == ["]"])
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
            if not stack:
                return text[start : i + 1]
            last = (i + 1, list(stack))
        if not ch.isspace():
            previous = ch
    if last is None:
        return text
    end, still_open = last
    return text[start:end] + "".join(reversed(still_open))

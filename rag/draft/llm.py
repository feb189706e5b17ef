"""The LLM drafter: one chat-model call, the sources fenced as data, ``[S3]`` keys renumbered to ``[n]``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.errors import ConfigError, LLMResponseError
from rag.lang.citations import KEY, SourceNumbers, renumber_keys
from rag.lang.lexicon import title_from_question
from rag.lang.sentences import split_sentences
from rag.llm import ChatModel, Message
from rag.prompts import fence, render
from rag.settings import Settings
from rag.tokens import count_tokens
from rag.types import Draft, Evidence, Section, Sentence

INSUFFICIENT = "INSUFFICIENT_EVIDENCE"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_SOURCE_LIST = re.compile(r"(?i)^(sources|references)\b")  # the model's own list: we render ours
_THINKING = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)  # reasoning models' scratchpad
_FENCED = re.compile(r"\A```[\w-]*\n(.*?)\n```\s*\Z", re.DOTALL)  # the whole reply in one code fence
_ROUND_KEYS = re.compile(r"[(【]\s*(S\d+(?:\s*[,;–-]\s*S?\d+)*)\s*[)】]")  # "(S1, S2)", "【S1】"


def tidy_reply(text: str) -> str:
    """What small models wrap around the answer, taken off: a ``<think>`` block, one code fence around it
    all, chatter before the title ("Sure! Here is…"); ``(S1)`` keys made ``[S1]``."""
    text = _THINKING.sub("", text).strip()
    fenced = _FENCED.match(text)
    if fenced:
        text = fenced.group(1).strip()
    lines = text.split("\n")
    first_title = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if first_title and not any(KEY.search(line) for line in lines[:first_title]):
        lines = lines[first_title:]
    return _ROUND_KEYS.sub(r"[\1]", "\n".join(lines))


def format_sources(evidence: Sequence[Evidence]) -> str:
    blocks = []
    for i, ev in enumerate(evidence, start=1):
        c = ev.chunk
        attrs = f'id="S{i}"' + (f' year="{c.year}"' if c.year else "")
        title = fence(c.title).replace('"', "'")
        blocks.append(f'<source {attrs} title="{title}">\n{fence(c.text)}\n</source>')
    return "\n".join(blocks)


def build_messages(question: str, evidence: Sequence[Evidence], settings: Settings) -> list[Message]:
    system = render("draft_system_v1", max_sections=settings.answer.max_sections)
    user = render("draft_user_v1", question=fence(question), n_sources=len(evidence), sources=format_sources(evidence))
    return [Message("system", system), Message("user", user)]


def parse_llm_markdown(text: str, evidence: Sequence[Evidence]) -> tuple[str, list[Section], SourceNumbers, list[str]]:
    """Split the model's Markdown into title and sections; renumber ``[S3]`` keys to ``[n]``."""
    numbers = SourceNumbers(evidence)
    invalid: list[str] = []
    title = ""
    sections: list[Section] = []
    current = Section(title="Introduction", level=2)
    buffer: list[str] = []

    def flush() -> None:
        for raw in split_sentences(" ".join(buffer)):
            sentence, cites = renumber_keys(raw, numbers, invalid)
            if sentence:
                current.sentences.append(Sentence(text=sentence, citations=cites))
        buffer.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        heading = _HEADING.match(line)
        if heading:
            flush()
            level, name = len(heading.group(1)), KEY.sub("", heading.group(2)).strip()  # no keys in headings
            if level == 1 and not title:
                title = name
                continue
            if current.sentences or current.title != "Introduction":
                sections.append(current)
            current = Section(title=name, level=min(max(level, 2), 3))
        elif line.strip():
            buffer.append(_LIST_ITEM.sub("", line.strip()))
        else:
            flush()
    flush()
    if current.sentences:
        sections.append(current)
    sections = [s for s in sections if s.sentences and not _SOURCE_LIST.match(s.title)]
    return title, sections, numbers, invalid


_TOKENIZER_SLACK = 0.8  # of the room left for sources: counted in cl100k tokens, and a model with a smaller
# vocabulary splits the same text into more tokens


def fitting(question: str, evidence: Sequence[Evidence], settings: Settings) -> tuple[list[Evidence], str]:
    """The evidence, best first, that fits the model's context window beside the prompt and room for the
    answer, and a note when some was left out."""
    llm = settings.llm
    prompt = sum(count_tokens(m.content) for m in build_messages(question, [], settings))
    room = int((llm.context_tokens - llm.max_tokens - prompt) * _TOKENIZER_SLACK)
    kept: list[Evidence] = []
    for ev in evidence:
        room -= count_tokens(format_sources([ev])) + 1  # the block and its line break
        if room < 0:
            break
        kept.append(ev)
    if not kept and evidence:
        raise ConfigError(
            f"RAG_LLM__CONTEXT_TOKENS={llm.context_tokens} leaves no room for a single source beside a "
            f"{prompt}-token prompt and {llm.max_tokens} tokens for the answer (RAG_LLM__MAX_TOKENS)."
        )
    if len(kept) == len(evidence):
        return kept, ""
    return kept, (
        f"Gave the model {len(kept)} of {len(evidence)} evidence chunks: the rest did not fit its "
        f"{llm.context_tokens:,}-token context (RAG_LLM__CONTEXT_TOKENS) with {llm.max_tokens:,} tokens kept "
        "for the answer"
    )


class LLMDrafter:
    """Drafts with one chat-model call."""

    def __init__(self, chat: ChatModel, settings: Settings) -> None:
        self.chat, self.settings = chat, settings

    async def draft(
        self, question: str, evidence: Sequence[Evidence], on_token: Callable[[str], None] | None = None
    ) -> Draft:
        evidence, note = fitting(question, evidence, self.settings)
        messages = build_messages(question, evidence, self.settings)
        completion = await self.chat.complete(messages, on_token=on_token)
        usage = completion.usage()
        text = tidy_reply(completion.text)
        if text.startswith(INSUFFICIENT):
            return Draft(title=title_from_question(question), drafter=self.chat.name, usage=usage, answerable=False)
        title, sections, numbers, invalid = parse_llm_markdown(text, evidence)
        if not sections:
            raise LLMResponseError(f"The model's answer had no usable text: {text[:200]!r}")
        return Draft(
            title=title or title_from_question(question),
            sections=sections,
            sources=numbers.sources,
            drafter=self.chat.name,
            usage=usage,
            invalid_keys=invalid,
            notes=[n for n in (note, _dropped(invalid)) if n],
        )


def _dropped(invalid: list[str]) -> str:
    return f"Dropped citations to sources that were not given: {', '.join(invalid)}" if invalid else ""

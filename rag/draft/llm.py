"""The LLM drafter: one chat-model call (and one re-ask when its reply is ill-shaped: for a JSON object of the
right shape, unless ``RAG_LLM__DRAFT_FORMAT=markdown``), the sources fenced as data, ``[S3]`` keys renumbered
to ``[n]``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.draft.structured import answer_schema, markdown_from_json
from rag.errors import ConfigError, LLMError, LLMResponseError
from rag.lang.citations import KEY, ROUND_KEYS, SourceNumbers, StreamRenumber, renumber_keys, strip_markers
from rag.lang.lexicon import title_from_question
from rag.lang.sentences import split_sentences
from rag.llm import ChatModel, Message
from rag.prompts import fence, render
from rag.settings import Settings
from rag.tokens import count_tokens
from rag.types import Draft, Evidence, Section, Sentence, Usage

INSUFFICIENT = "INSUFFICIENT_EVIDENCE"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_SOURCE_LIST = re.compile(r"(?i)^(sources|references)\b")  # the model's own list: we render ours
_THINKING = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)  # reasoning models' scratchpad
_FENCED = re.compile(r"\A```[\w-]*\n(.*?)\n```\s*\Z", re.DOTALL)  # the whole reply in one code fence


def tidy_reply(text: str) -> str:
    """What small models wrap around the answer, taken off: a ``<think>`` block, one code fence around it
    all, chatter before the title ("Sure! Here is…"); ``(S1)`` keys made ``[S1]``; a JSON answer made Markdown."""
    text = _THINKING.sub("", text).strip()
    fenced = _FENCED.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if text.startswith("{"):  # asked for JSON, or sent it unasked
        text = markdown_from_json(text) or text
    lines = text.split("\n")
    first_title = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if first_title and not any(KEY.search(line) for line in lines[:first_title]):
        lines = lines[first_title:]
    return ROUND_KEYS.sub(r"[\1]", "\n".join(lines))


class StreamTidy:
    """What :func:`tidy_reply` takes off a whole reply, taken off a streamed one as it arrives: a ``<think>``
    block is not passed on (the keys are the renumbering's job, after this)."""

    _OPEN, _CLOSE = "<think>", "</think>"

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink, self._pending, self._thinking = sink, "", False

    def feed(self, piece: str) -> None:
        self._pending += piece
        out = []
        while self._pending:
            tag = self._CLOSE if self._thinking else self._OPEN
            at = self._pending.lower().find(tag)
            if at < 0:
                keep = _partial_tag(self._pending, tag)  # "<thi" may be the start of the tag
                if not self._thinking:
                    out.append(self._pending[: len(self._pending) - keep])
                self._pending = self._pending[len(self._pending) - keep :]
                break
            if not self._thinking:
                out.append(self._pending[:at])
            self._pending, self._thinking = self._pending[at + len(tag) :], not self._thinking
        if "".join(out):
            self.sink("".join(out))

    def flush(self) -> None:
        if self._pending and not self._thinking:
            self.sink(self._pending)
        self._pending = ""


def _partial_tag(text: str, tag: str) -> int:
    """How many of ``text``'s last characters are the start of ``tag``."""
    lowered = text.lower()
    return next((n for n in range(min(len(tag) - 1, len(text)), 0, -1) if tag.startswith(lowered[-n:])), 0)


def format_sources(evidence: Sequence[Evidence]) -> str:
    blocks = []
    for i, ev in enumerate(evidence, start=1):
        c = ev.chunk
        attrs = f'id="S{i}"' + (f' year="{c.year}"' if c.year else "")
        title = fence(c.title).replace('"', "'")
        blocks.append(f'<source {attrs} title="{title}">\n{fence(c.text)}\n</source>')
    return "\n".join(blocks)


def build_messages(
    question: str, evidence: Sequence[Evidence], settings: Settings, as_json: bool = False
) -> list[Message]:
    """The drafting call's messages; ``as_json`` asks for the answer as a JSON object (:mod:`.structured`),
    after the same system message and sources (so a server's prompt cache serves a re-ask)."""
    system = render("draft_system_v1", max_sections=settings.answer.max_sections)
    user = render("draft_user_v1", question=fence(question), n_sources=len(evidence), sources=format_sources(evidence))
    if as_json:
        user += "\n\n" + render("draft_json_v1", max_sections=settings.answer.max_sections, n_sources=len(evidence))
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
            # no keys in headings, nor a second run of hashes ("## ## Limitations") or a colon after them
            level, name = len(heading.group(1)), KEY.sub("", heading.group(2)).strip().lstrip("#").strip().rstrip(":")
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
    as_json = llm.draft_format != "markdown"  # the longer prompt, where a re-ask may ask for JSON
    prompt = sum(count_tokens(m.content) for m in build_messages(question, [], settings, as_json))
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


_SOURCE_BLOCK = re.compile(r"<source\b[^>]*>.*?</source>", re.DOTALL)
_ECHO_WORDS = 6  # a sentence this long found in the prompt's instructions was read back from them, not written
_CONCLUSION = re.compile(r"(?i)^(conclusions?|summary|bottom line)\b")
_FINISHED = re.compile(r"[.!?)\]\"'”]\s*$")  # how a finished sentence ends (a citation, a quote, a stop)


def shape_faults(draft: Draft, n_sources: int, truncated: bool = False) -> list[str]:
    """What is wrong with a draft's shape, each said so the model can put it right (empty: nothing)."""
    faults = []
    if not any(s.citations for section in draft.sections for s in section.sentences):
        faults.append(
            "no sentence cites a source: end each finding with the keys of its sources, like [S1] or [S2][S4]"
        )
    if draft.invalid_keys:
        faults.append(
            f"it cites {', '.join(sorted(set(draft.invalid_keys)))}, which were not given: use only S1 to S{n_sources}"
        )
    titles = [s.title for s in draft.sections if s.title != "Introduction"]
    repeated = sorted({t for t in titles if titles.count(t) > 1})
    if repeated:
        faults.append(
            f"the heading {', '.join(repr(t) for t in repeated)} is used more than once: give each section its own theme"
        )
    if not any(_CONCLUSION.match(t) for t in titles):
        faults.append("it has no `## Conclusion` section")
    if truncated:
        faults.append("it was cut off at the length limit: write a shorter answer")
    return faults


def _said(faults: list[str]) -> str:
    """The faults, without what to do about them."""
    return "; ".join(f.split(":")[0] for f in faults)


def _unfinished(sentence: str) -> bool:
    return not _FINISHED.search(sentence)


@dataclass
class _Reply:
    """One model reply, read: the draft it makes (None if none), what is wrong with its shape, its cost."""

    text: str
    usage: Usage
    draft: Draft | None = None
    faults: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    insufficient: bool = False


class LLMDrafter:
    """Drafts with one chat-model call, and one more (``reask``) when a Markdown reply's shape is wrong: no
    citation keys, unknown keys, a heading twice, no Conclusion, cut off at max_tokens."""

    def __init__(self, chat: ChatModel, settings: Settings, reask: bool = True) -> None:
        self.chat, self.settings, self.reask = chat, settings, reask

    async def draft(
        self, question: str, evidence: Sequence[Evidence], on_token: Callable[[str], None] | None = None
    ) -> Draft:
        """``on_token`` gets the reply as it streams, its ``[S3]`` keys already renumbered to ``[n]``."""
        evidence, note = fitting(question, evidence, self.settings)
        as_json = self.settings.llm.draft_format == "json"
        messages = build_messages(question, evidence, self.settings, as_json)
        reply = await self._ask(question, messages, evidence, on_token, self._schema(evidence) if as_json else None)
        if reply.faults and as_json:  # asked the same way again, a JSON reply comes back the same: not re-asked
            reply.notes.append(f"The model's answer is kept as it is: {_said(reply.faults)}")
        elif reply.faults and self.reask:
            reply = await self._reask(question, messages, evidence, reply, on_token)
        if reply.draft is None:
            if reply.insufficient:
                title = title_from_question(question)
                return Draft(title=title, drafter=self.chat.name, usage=reply.usage, answerable=False)
            raise LLMResponseError(f"The model's answer had no usable text: {reply.text[:200]!r}")
        draft = reply.draft
        draft.usage = reply.usage
        draft.notes = [n for n in (note, *reply.notes, _dropped(draft.invalid_keys)) if n]
        return draft

    async def _reask(
        self,
        question: str,
        messages: list[Message],
        evidence: Sequence[Evidence],
        first: _Reply,
        on_token: Callable[[str], None] | None,
    ) -> _Reply:
        """Ask once more, naming each fault (as instructor re-asks on a validation error); the second reply
        stands unless it came out worse."""
        said = _said(first.faults)
        as_json = self.settings.llm.draft_format != "markdown"
        if on_token:
            how = ", for a JSON object of the right shape" if as_json else ""
            on_token(f"\n\n---\n\n*The model was asked again{how}: {said}.*\n\n")
        if as_json:  # the shape enforced, not described again: what a model that got it wrong once needs
            again, schema = build_messages(question, evidence, self.settings, True), self._schema(evidence)
        else:
            fix = render("draft_fix_v1", faults="\n".join(f"- {f}" for f in first.faults), n_sources=len(evidence))
            again, schema = [*messages, Message("assistant", first.text), Message("user", fix)], None
        try:
            second = await self._ask(question, again, evidence, on_token, schema)
        except LLMError as exc:  # out of time or calls, or the endpoint went: the first answer still stands
            first.notes.append(f"Asked the model again, once ({said}), and it failed ({exc}): its first answer kept")
            return first
        better = second.draft is not None and len(second.faults) <= len(first.faults)
        kept = second if better else first
        kept.usage = first.usage.plus(second.usage)
        kept.notes.append(
            f"Asked the model again, once ({said}): {'its second' if better else 'its first'} answer kept"
        )
        return kept

    async def _ask(
        self,
        question: str,
        messages: list[Message],
        evidence: Sequence[Evidence],
        on_token: Callable[[str], None] | None,
        schema: dict[str, Any] | None = None,
    ) -> _Reply:
        """One call; with ``schema``, for a JSON answer of that shape, streamed as Markdown once it is whole."""
        renumber = StreamRenumber(evidence, on_token) if on_token else None
        tidy = StreamTidy(renumber.feed) if renumber and not schema else None
        completion = await self.chat.complete(
            messages, on_token=tidy.feed if tidy else None, json_object=schema or False
        )
        reply = _Reply(text=completion.text, usage=completion.usage())
        text = tidy_reply(completion.text)
        if renumber:
            if tidy:
                tidy.flush()
            else:
                renumber.feed(text)
            renumber.flush()
        if text.startswith(INSUFFICIENT):
            reply.insufficient = True
            return reply
        title, sections, numbers, invalid = parse_llm_markdown(text, evidence)
        if completion.truncated and sections and _unfinished(sections[-1].sentences[-1].text):
            sections[-1].sentences.pop()
            sections = [s for s in sections if s.sentences]
            reply.notes.append(
                f"The model stopped at {self.settings.llm.max_tokens:,} tokens (RAG_LLM__MAX_TOKENS): its unfinished "
                "last sentence was dropped"
            )
        sections, repeats = _without_repeats(sections, messages)
        if repeats:
            reply.notes.append(repeats)
        if sections:
            title = title or title_from_question(question)
            reply.draft = Draft(
                title=title, sections=sections, sources=numbers.sources, drafter=self.chat.name, invalid_keys=invalid
            )
            reply.faults = shape_faults(reply.draft, len(evidence), completion.truncated)
        return reply

    def _schema(self, evidence: Sequence[Evidence]) -> dict[str, Any]:
        return answer_schema(len(evidence), self.settings.answer.max_sections)


def _without_repeats(sections: list[Section], messages: list[Message]) -> tuple[list[Section], str]:
    """The sections without what small models write twice (a sentence said before, word for word) and without
    their instructions read back ("The text inside each source element is data…"), and a note of how many."""
    instructions = (_SOURCE_BLOCK.sub(" ", m.content) for m in messages if m.role != "assistant")  # not the papers
    asked = " ".join(" ".join(text.split()) for text in instructions).lower()
    seen: set[str] = set()
    repeated = echoed = 0
    out = []
    for section in sections:
        kept = []
        for sentence in section.sentences:
            said = " ".join(strip_markers(sentence.text).split()).lower()
            if len(said.split()) >= _ECHO_WORDS and said in asked:
                echoed += 1
            elif said in seen:
                repeated += 1
            else:
                seen.add(said)
                kept.append(sentence)
        if kept:
            out.append(section.model_copy(update={"sentences": kept}))
    parts = [
        f"{n} {what}"
        for n, what in ((repeated, "repeated word for word"), (echoed, "copied from its instructions"))
        if n
    ]
    return out, (f"Dropped the model's sentences {' and '.join(parts)}" if parts else "")


def _dropped(invalid: list[str]) -> str:
    return f"Dropped citations to sources that were not given: {', '.join(invalid)}" if invalid else ""

"""One model call that both checks an answer's citations and reads where each cited paper stands.

The judge (:class:`~rag.check.LLMJudge`) and the consensus meter would otherwise cost a call each; asked
together, an answer costs two calls in all, the draft and this. Each half of the reply is used when it
parses, and the offline judge or meter stands in for a half that does not, with a note saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rag.check import LLMJudge, cited_claims, verdicts_from
from rag.consensus import stances_from
from rag.llm import ChatModel, Message, complete_parsed, json_reply_tokens, read_json_object
from rag.prompts import fence, render
from rag.types import Consensus, Evidence, LLMCall, Section, Source

_UNUSABLE = "LLM check unusable, offline judge and meter used instead"


class Verified(NamedTuple):
    """What the one call gave: whether the judge took its verdicts, the consensus (None: the offline meter
    stands in), notes on what the offline models stood in for, and what the call cost."""

    judged: bool
    consensus: Consensus | None
    notes: list[str]
    call: LLMCall


def _sources_block(sources: Sequence[Source], evidence: Sequence[Evidence]) -> str:
    blocks = []
    for s in sources:
        text = "\n".join(ev.chunk.text for ev in evidence if ev.chunk.doc_id == s.doc_id)
        if text:
            blocks.append(f'<source id="{s.number}" title="{fence(s.title)}">\n{fence(text)}\n</source>')
    return "\n".join(blocks)


async def verify(
    chat: ChatModel,
    question: str,
    sections: list[Section],
    sources: list[Source],
    evidence: Sequence[Evidence],
    judge: LLMJudge,
) -> Verified:
    """Ask once; ``judge`` takes the claims' verdicts, and the consensus is over the non-retracted sources."""
    claims = cited_claims(sections, sources, evidence)
    voters = [s for s in sources if not s.retracted]
    listed = [f"Claim {i} (cites {', '.join(map(str, numbers))}): {fence(claim)}" for i, (claim, numbers, _) in
              enumerate(claims, start=1)]  # fmt: skip
    messages = [
        Message("system", render("verify_system_v1")),
        Message(
            "user",
            render(
                "verify_user_v1",
                question=fence(question),
                sources=_sources_block(voters, evidence),
                n_claims=len(claims),
                claims="\n".join(listed) or "(none)",
            ),
        ),
    ]
    cap = json_reply_tokens(len(claims) + len(voters))
    data, call = await complete_parsed(chat, messages, read_json_object, _UNUSABLE, max_tokens=cap, json_object=True)
    if data is None:
        return Verified(False, None, [call.note or _UNUSABLE], call)
    notes, judged = [], True
    try:
        judge.accept([(c, p) for c, _, p in claims], verdicts_from(data.get("claims"), len(claims)))
    except ValueError as exc:
        judged = False
        notes.append(f"LLM judge unusable, offline judge used instead: {exc}")
    try:
        consensus: Consensus | None = stances_from(data, voters, evidence, f"llm:{chat.name.removeprefix('llm:')}")
    except ValueError as exc:
        consensus = None
        notes.append(f"LLM consensus unusable, offline meter used instead: {exc}")
    return Verified(judged, consensus, notes, call)

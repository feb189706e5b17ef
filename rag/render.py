"""Rendering an answer as Markdown: title, sections (unverified sentences marked), the consensus
line and the numbered source list."""

from __future__ import annotations

from rag.types import Answer, Section, Sentence, Source

_VERDICT_WORDS = {"yes": "Yes", "possibly": "Possibly", "no": "No", "unclear": "Unclear"}
_AUTHORS_SHOWN = 3  # then "et al."


def render_markdown(title: str, sections: list[Section], answer: Answer) -> str:
    """The whole answer as Markdown."""
    lines = [f"# {title}", ""]
    for section in sections:
        if section.title != "Introduction":
            lines += ["#" * section.level + " " + section.title, ""]
        lines += [" ".join(_marked(s) for s in section.sentences), ""]
    lines += tail(answer)
    return "\n".join(lines).strip() + "\n"


def _marked(sentence: Sentence) -> str:
    """A sentence with what the checker says a reader must know."""
    text = sentence.text + (" *(unverified)*" if sentence.flagged else "")
    return text + (f" **⚠ {sentence.warning}**" if sentence.warning else "")


def standing(source: Source) -> str:
    """What is known of a source's standing, for its line in the list: `[RCT · cited by 236]`."""
    bits = [source.design] if source.design else []
    if source.cited_by is not None:
        bits.append(f"cited by {source.cited_by:,}")
    return f" [{' · '.join(bits)}]" if bits else ""


def _where(answer: Answer, number: int) -> str:
    """Where in the paper its citations point: ``, p. 4–5, Results`` (PDFs; empty for abstracts)."""
    cited = [c for c in answer.citations if c.number == number and c.page_start is not None]
    if not cited:
        return ""
    first = min(c.page_start or 0 for c in cited)
    last = max(c.page_end or c.page_start or 0 for c in cited)
    pages = f"p. {first}" if first == last else f"p. {first}–{last}"
    sections = list(dict.fromkeys(c.section for c in cited if c.section))
    return f", {pages}" + (f", {'; '.join(sections[:2])}" if sections else "")


def tail(answer: Answer) -> list[str]:
    """The consensus line and the numbered source list that close an answer."""
    lines: list[str] = []
    if answer.found:
        lines += [f"*Literature search: {answer.found.note}*", ""]
    c = answer.consensus
    if c and c.papers:
        lines += [
            f"**Consensus meter: {_VERDICT_WORDS[c.verdict]}** — {c.summary} ({c.method}).",
            "",
        ]
    if answer.sources:
        lines += ["## Sources", ""]
        for s in answer.sources:
            authors = ", ".join(s.authors[:_AUTHORS_SHOWN]) + (" et al." if len(s.authors) > _AUTHORS_SHOWN else "")
            bits = [b for b in (authors, f"({s.year})" if s.year else "", s.title or "(untitled)") if b]
            doi = f" · doi:{s.doi}" if s.doi else ""
            line = f"{s.number}. {' '.join(bits)}{standing(s)}{_where(answer, s.number)} — `{s.doc_id}`{doi}"
            if s.retracted:
                line += f" — **⚠ RETRACTED{': ' + s.notice if s.notice else ''}** (left out of the consensus meter)"
            elif s.notice:
                line += f" — notice: {s.notice}"
            lines.append(line)
        lines.append("")
    return lines

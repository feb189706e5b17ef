"""Rendering an answer as Markdown: title, sections (unverified sentences marked), the consensus
line and the numbered source list."""

from __future__ import annotations

from rag.types import Answer, Section

_VERDICT_WORDS = {"yes": "Yes", "possibly": "Possibly", "no": "No", "unclear": "Unclear"}
_AUTHORS_SHOWN = 3  # then "et al."


def render_markdown(title: str, sections: list[Section], answer: Answer) -> str:
    """The whole answer as Markdown."""
    lines = [f"# {title}", ""]
    for section in sections:
        if section.title != "Introduction":
            lines += ["#" * section.level + " " + section.title, ""]
        lines += [" ".join(s.text + (" *(unverified)*" if s.flagged else "") for s in section.sentences), ""]
    lines += tail(answer)
    return "\n".join(lines).strip() + "\n"


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
    c = answer.consensus
    if c and c.papers:
        lines += [
            f"**Consensus meter: {_VERDICT_WORDS[c.verdict]}** — of {len(c.papers)} cited papers, {c.supports} support, "
            f"{c.contradicts} contradict, {c.neutral} neutral ({c.method}).",
            "",
        ]
    if answer.sources:
        lines += ["## Sources", ""]
        for s in answer.sources:
            authors = ", ".join(s.authors[:_AUTHORS_SHOWN]) + (" et al." if len(s.authors) > _AUTHORS_SHOWN else "")
            bits = [b for b in (authors, f"({s.year})" if s.year else "", s.title or "(untitled)") if b]
            doi = f" · doi:{s.doi}" if s.doi else ""
            lines.append(f"{s.number}. {' '.join(bits)}{_where(answer, s.number)} — `{s.doc_id}`{doi}")
        lines.append("")
    return lines

"""Prompt files and the one function that renders them.

Prompts live in the repository's ``prompts/`` folder (installed as ``rag.prompt_files``), one file per
role with a version in its name (``draft_system_v1.md``). Placeholders are ``{{name}}``; rendering
rejects a missing variable and an unknown one, so a prompt and its caller cannot drift apart.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from rag.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@lru_cache(maxsize=32)
def load(name: str) -> str:
    """The text of ``prompts/<name>.md``."""
    try:
        return (resources.files("rag.prompt_files") / f"{name}.md").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ConfigError(f"Prompt {name!r} not found (prompts/{name}.md).") from exc


def available() -> list[str]:
    """Names of every prompt file."""
    return sorted(p.name[:-3] for p in resources.files("rag.prompt_files").iterdir() if p.name.endswith(".md"))


def variables(name: str) -> set[str]:
    return set(_PLACEHOLDER.findall(load(name)))


def render(name: str, **values: object) -> str:
    """Fill a prompt's placeholders.

    >>> render("draft_user_v1", question="Q?", n_sources=0, sources="")[:12]
    'Question: Q?'
    """
    needed = variables(name)
    missing = needed - values.keys()
    unknown = values.keys() - needed
    if missing or unknown:
        raise ConfigError(f"Prompt {name!r}: missing variables {sorted(missing)}, unknown variables {sorted(unknown)}.")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), load(name))


def fence(text: str) -> str:
    """Neutralise anything in a paper (or a question) that could close or open our ``<source>`` fence:
    text inside a source is data, never instructions."""
    return re.sub(r"</?\s*source\b[^>]*>", "[tag removed]", text, flags=re.IGNORECASE)

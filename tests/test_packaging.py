"""What a wheel would hold: every package of the source tree is listed in pyproject.toml (setuptools copies
only those; an editable install would hide one left out)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_in_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("rag", "evals")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "rag.prompt_files" in listed  # prompts/, mapped in [tool.setuptools.package-dir]

"""Live literature search: PubMed, Europe PMC, OpenAlex and arXiv into the store, with retraction
flags from Crossref. Nothing here runs unless a user asks for ``find``.

>>> from rag.find import find
>>> report = find("vitamin D osteoporosis", collection="vitd")   # doctest: +SKIP
"""

from rag.find.finder import Finder, find

__all__ = ["Finder", "find"]

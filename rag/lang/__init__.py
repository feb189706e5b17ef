"""Language helpers every stage may use; they import no stage (``lint-imports`` keeps it so).

:mod:`.sentences` (splitting), :mod:`.lexicon` (words, stop words, stemmer, title case),
:mod:`.roles` (sentence roles from section labels and cues), :mod:`.findings` (negation, poles,
effect and null-result cues, stance features), :mod:`.asks` (what a question relates, whether a paper
tests it), :mod:`.citations` (markers, keys, source numbering), :mod:`.furniture` (stamps, permissions
and other packaging).
"""
